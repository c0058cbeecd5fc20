// Package notify sends an execution's notifications to the targets its
// program declares (issue 15 item 4): Slack incoming webhooks in Slack's
// message format, and generic webhooks as JSON signed with HMAC-SHA256 in
// GitHub's header style. It sends from an outbox, on its own time, so the
// pipeline never waits for a receiver; a failed attempt is retried with
// exponential backoff, up to a bound, and counted.
package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// Message is what one notification says, whatever its target's format.
type Message struct {
	Delivery  string          // X-Stagehand-Delivery: the same on every attempt
	Event     bot.NotifyEvent // X-Stagehand-Event
	At        time.Time       // when the event happened
	Program   bot.Program
	Execution bot.Execution
	URL       string // the execution on the dashboard (bot.ExecutionURL)
	Detail    string // e.g. the override's reason; may be empty
}

// webhookBody is the generic webhook's JSON.
type webhookBody struct {
	Event     string           `json:"event"`
	Delivery  string           `json:"delivery"`
	At        time.Time        `json:"at"`
	Program   string           `json:"program"`
	Execution webhookExecution `json:"execution"`
	Detail    string           `json:"detail,omitempty"`
	Approve   string           `json:"approve,omitempty"`
}

type webhookExecution struct {
	Number      int    `json:"number"`
	Pipeline    string `json:"pipeline"`
	State       string `json:"state"`
	Commit      string `json:"commit"`
	Branch      string `json:"branch"`
	TriggeredBy string `json:"triggered_by"`
	Message     string `json:"message,omitempty"`
	URL         string `json:"url"`
}

// approveHint is the comment that approves an execution waiting for it.
func approveHint(m Message) string {
	if m.Event != bot.NotifyWaitingForApproval {
		return ""
	}
	return fmt.Sprintf("/stagehand approve %d", m.Execution.Number)
}

// WebhookJSON is the body a generic webhook receives.
func WebhookJSON(m Message) ([]byte, error) {
	ex := m.Execution
	return json.Marshal(webhookBody{
		Event: string(m.Event), Delivery: m.Delivery, At: m.At.UTC(), Program: m.Program.FullName(),
		Execution: webhookExecution{Number: ex.Number, Pipeline: string(ex.Pipeline), State: string(ex.State),
			Commit: ex.Commit, Branch: ex.Branch, TriggeredBy: ex.TriggeredBy, Message: ex.Message, URL: m.URL},
		Detail: m.Detail, Approve: approveHint(m),
	})
}

// The words each event puts in a Slack message.
var eventWords = map[bot.NotifyEvent]string{
	bot.NotifyStarted:            "started",
	bot.NotifyWaitingForApproval: "is waiting for approval",
	bot.NotifySucceeded:          "succeeded",
	bot.NotifyFailed:             "failed",
	bot.NotifyOverridden:         "was let through by a break-glass override",
	bot.NotifyRestored:           "restores an earlier build",
}

// slackMessage is Slack's incoming-webhook message: text (the fallback
// shown in notifications) and blocks.
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// slackSectionMax is the longest text a section block may hold.
const slackSectionMax = 3000

// slackEscape escapes what Slack reads as markup (&, <, >), so text from a
// commit or a login cannot become a link or a mention.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// SlackJSON is the body a Slack incoming webhook receives: a section with
// the execution and a link to it on the dashboard, then a context line
// (the approve hint while it waits for approval).
func SlackJSON(m Message) ([]byte, error) {
	ex := m.Execution
	title := fmt.Sprintf("%s #%d (%s) %s", m.Program.FullName(), ex.Number, ex.Pipeline, eventWords[m.Event])
	section := fmt.Sprintf("*<%s|%s>*\n%s at `%s` by %s", m.URL, slackEscape(title),
		slackEscape(ex.Branch), bot.ShortSHA(ex.Commit), slackEscape(ex.TriggeredBy))
	if ex.Message != "" {
		section += "\n" + slackEscape(ex.Message)
	}
	if m.Detail != "" {
		section += "\n> " + slackEscape(m.Detail)
	}
	if r := []rune(section); len(r) > slackSectionMax {
		section = string(r[:slackSectionMax-1]) + "…"
	}
	msg := slackMessage{Text: title, Blocks: []slackBlock{{Type: "section", Text: &slackText{Type: "mrkdwn", Text: section}}}}
	if hint := approveHint(m); hint != "" {
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "context", Elements: []slackText{{Type: "mrkdwn",
			Text: fmt.Sprintf("Approve with a comment `%s` on the commit's pull request or check run, or on the dashboard.", hint)}}})
	}
	return json.Marshal(msg)
}
