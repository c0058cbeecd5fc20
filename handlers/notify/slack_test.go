package notify

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stagehand-dev/stagehand/bot"
)

// checkSlackMessage checks a body against the structure Slack documents
// for incoming webhooks and Block Kit (api.slack.com/messaging/webhooks,
// api.slack.com/reference/block-kit/blocks and …/composition-objects):
// a message has text (the notification fallback) and at most 50 blocks;
// a section has a text object; a context 1 to 10 elements; a text object
// is plain_text or mrkdwn with 1 to 3000 characters; a mrkdwn link is
// <url|label> with an absolute URL. Only the keys Stagehand sends are
// accepted, so a typo is caught too.
func checkSlackMessage(body []byte) error {
	var msg map[string]json.RawMessage
	if err := json.Unmarshal(body, &msg); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	if err := onlyKeys(msg, "text", "blocks"); err != nil {
		return err
	}
	var text string
	if err := json.Unmarshal(msg["text"], &text); err != nil || strings.TrimSpace(text) == "" {
		return fmt.Errorf("text: a non-empty string is required (the notification's fallback)")
	}
	var blocks []map[string]json.RawMessage
	if err := json.Unmarshal(msg["blocks"], &blocks); err != nil {
		return fmt.Errorf("blocks: %w", err)
	}
	if len(blocks) == 0 || len(blocks) > 50 {
		return fmt.Errorf("blocks: %d blocks; a message holds 1 to 50", len(blocks))
	}
	for i, b := range blocks {
		var typ string
		_ = json.Unmarshal(b["type"], &typ)
		switch typ {
		case "section":
			if err := onlyKeys(b, "type", "text"); err != nil {
				return fmt.Errorf("blocks[%d]: %w", i, err)
			}
			if err := checkTextObject(b["text"], 3000); err != nil {
				return fmt.Errorf("blocks[%d].text: %w", i, err)
			}
		case "context":
			if err := onlyKeys(b, "type", "elements"); err != nil {
				return fmt.Errorf("blocks[%d]: %w", i, err)
			}
			var elems []json.RawMessage
			if err := json.Unmarshal(b["elements"], &elems); err != nil || len(elems) == 0 || len(elems) > 10 {
				return fmt.Errorf("blocks[%d].elements: 1 to 10 elements", i)
			}
			for j, e := range elems {
				if err := checkTextObject(e, 3000); err != nil {
					return fmt.Errorf("blocks[%d].elements[%d]: %w", i, j, err)
				}
			}
		default:
			return fmt.Errorf("blocks[%d]: type %q is not one Stagehand sends", i, typ)
		}
	}
	return nil
}

var mrkdwnLink = regexp.MustCompile(`<([^|>]*)\|[^>]*>`)

func checkTextObject(raw json.RawMessage, max int) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return fmt.Errorf("a text object is required: %w", err)
	}
	if err := onlyKeys(obj, "type", "text"); err != nil {
		return err
	}
	var typ, text string
	_ = json.Unmarshal(obj["type"], &typ)
	_ = json.Unmarshal(obj["text"], &text)
	if typ != "mrkdwn" && typ != "plain_text" {
		return fmt.Errorf("type %q: plain_text or mrkdwn", typ)
	}
	if n := utf8.RuneCountInString(text); n == 0 || n > max {
		return fmt.Errorf("text of %d characters: 1 to %d", n, max)
	}
	for _, m := range mrkdwnLink.FindAllStringSubmatch(text, -1) {
		if u, err := url.Parse(m[1]); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("link %q: an absolute URL", m[1])
		}
	}
	return nil
}

func onlyKeys(obj map[string]json.RawMessage, keys ...string) error {
	for k := range obj {
		if !strings.Contains(" "+strings.Join(keys, " ")+" ", " "+k+" ") {
			return fmt.Errorf("unexpected key %q", k)
		}
	}
	for _, k := range keys[:1] {
		if _, ok := obj[k]; !ok {
			return fmt.Errorf("%s is required", k)
		}
	}
	return nil
}

// TestSlackPayload: every event's message passes the structural check; it
// links the execution on the dashboard; the approve hint is there only
// while waiting for approval; markup from a commit or a login is escaped;
// a long message is cut to Slack's limit.
func TestSlackPayload(t *testing.T) {
	for _, ev := range bot.NotifyEvents {
		m := message(ev)
		body, err := SlackJSON(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkSlackMessage(body); err != nil {
			t.Errorf("%s: %v\n%s", ev, err, body)
		}
		s := unescapeJSON(body)
		if !strings.Contains(s, "<https://stagehand.example.com/programs/acme/shop/executions/12|acme/shop #12 (prod-only)") {
			t.Errorf("%s: no link to the execution:\n%s", ev, s)
		}
		if hint := strings.Contains(s, "/stagehand approve 12"); hint != (ev == bot.NotifyWaitingForApproval) {
			t.Errorf("%s: approve hint shown = %v:\n%s", ev, hint, s)
		}
	}
	m := message(bot.NotifyFailed)
	m.Execution.TriggeredBy = "<!channel>"
	m.Execution.Message = strings.Repeat("é", 5000)
	body, err := SlackJSON(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkSlackMessage(body); err != nil {
		t.Errorf("long message: %v", err)
	}
	if strings.Contains(unescapeJSON(body), "<!channel>") {
		t.Errorf("a login's markup reached Slack unescaped")
	}
}

// TestSlackCheckRefuses: the structural check itself catches what Slack
// refuses.
func TestSlackCheckRefuses(t *testing.T) {
	for _, body := range []string{
		`{"blocks":[{"type":"section","text":{"type":"mrkdwn","text":"x"}}]}`,
		`{"text":"x","blocks":[]}`,
		`{"text":"x","blocks":[{"type":"section","text":{"type":"markdown","text":"x"}}]}`,
		`{"text":"x","blocks":[{"type":"section","text":{"type":"mrkdwn","text":""}}]}`,
		`{"text":"x","blocks":[{"type":"section","text":{"type":"mrkdwn","text":"<executions/12|x>"}}]}`,
		`{"text":"x","blocks":[{"type":"context","elements":[]}]}`,
		`{"text":"x","blocks":[{"type":"section","txt":{"type":"mrkdwn","text":"x"}}]}`,
		`{"text":"x","blocks":[{"type":"section","text":{"type":"mrkdwn","text":"` + strings.Repeat("a", 3001) + `"}}]}`,
	} {
		if err := checkSlackMessage([]byte(body)); err == nil {
			t.Errorf("accepted %.100s", body)
		}
	}
}

// unescapeJSON undoes encoding/json's escapes of <, > and & (Slack reads
// both forms), so the test can look for Slack's markup.
func unescapeJSON(body []byte) string {
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(body))
}
