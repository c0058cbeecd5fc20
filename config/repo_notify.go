package config

import (
	"regexp"
	"slices"
	"strings"

	"github.com/stagehand-dev/stagehand/bot"
)

var notifyKeys = mapSpec{"key", []string{"name", "type", "events", "url_secret", "signing_secret"}}

// notifyNamePattern: a target's name is a short slug, shown in logs and on
// the execution page.
var notifyNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)

// notifications reads the program's notification targets: a list of
// mappings with name, type (slack or webhook), events, url_secret and,
// for a webhook, signing_secret. The URL and the signing key are secrets
// (SPEC §7): the file names them, their values come from the secret
// source, so a URL written in the file is refused.
func (w *walker) notifications(cfg *bot.Config, e entry) {
	items, _ := w.list(e, "notification targets, each a mapping with name, type, events and url_secret")
	first := map[string]pos{} // target name -> position of its first definition
	for _, it := range items {
		var t bot.NotificationTarget
		entries, ok := w.fields(it.path, it.pos, it.value, notifyKeys)
		if !ok {
			continue
		}
		var signing *entry
		for i, f := range entries {
			switch f.key {
			case "name":
				name, ok := w.nonEmptyStr(f, "the target's name as a string, such as releases")
				if !ok {
					continue
				}
				if !notifyNamePattern.MatchString(name) {
					w.errorf(f.valuePos, f.path, "invalid target name %q: use 1 to 40 lower-case letters, digits, - and _, starting with a letter or digit, such as releases", name)
					continue
				}
				if w.distinctName(first, f, name, "target") {
					t.Name = name
				}
			case "type":
				t.Type = w.notifyType(f)
			case "events":
				t.Events = w.notifyEvents(f)
			case "url_secret":
				t.URLSecret = w.notifySecretName(f, "the name of the secret holding the target's URL, such as SLACK_RELEASES_URL")
			case "signing_secret":
				signing = &entries[i]
				t.SigningSecret = w.notifySecretName(f, "the name of the secret holding the signing key, such as RELEASES_SIGNING_KEY")
			}
		}
		w.require(entries, it.pos, it.path, "name", "give the target a name, such as name: releases")
		w.require(entries, it.pos, it.path, "type", "add type: slack or type: webhook")
		w.require(entries, it.pos, it.path, "events", "list the events it wants, such as events: [waiting-for-approval, failed]")
		w.require(entries, it.pos, it.path, "url_secret", "name the secret that holds its URL (from --secrets-dir, never the repository), such as url_secret: SLACK_RELEASES_URL")
		switch {
		case t.Type == bot.NotifyWebhook && signing == nil:
			w.require(entries, it.pos, it.path, "signing_secret", "a webhook's payloads are signed: name the secret that holds the key, such as signing_secret: RELEASES_SIGNING_KEY")
		case t.Type == bot.NotifySlack && signing != nil:
			w.errorf(signing.keyPos, signing.path, "a Slack incoming webhook is not signed; remove signing_secret (its URL is the secret)")
		}
		cfg.Notifications = append(cfg.Notifications, t)
	}
}

func (w *walker) notifyType(f entry) bot.NotifyType {
	s, ok := w.nonEmptyStr(f, "slack or webhook")
	if !ok {
		return ""
	}
	if !slices.Contains(bot.NotifyTypes, bot.NotifyType(s)) {
		w.errorf(f.valuePos, f.path, "unknown target type %q; use slack (a Slack incoming webhook) or webhook (signed JSON)", s)
		return ""
	}
	return bot.NotifyType(s)
}

func (w *walker) notifyEvents(f entry) []bot.NotifyEvent {
	names := make([]string, len(bot.NotifyEvents))
	for i, ev := range bot.NotifyEvents {
		names[i] = string(ev)
	}
	seen := map[string]bool{}
	list, ok := w.stringList(f, "event names such as failed", func(it item, s string) bool {
		if !slices.Contains(names, s) {
			w.errorf(it.pos, it.path, "unknown event %q; use %s", s, strings.Join(names, ", "))
			return false
		}
		if seen[s] {
			w.errorf(it.pos, it.path, "%s is listed twice; list each event once", s)
			return false
		}
		seen[s] = true
		return true
	})
	if ok && len(list) == 0 {
		w.errorf(f.valuePos, f.path, "list at least one event, such as [waiting-for-approval, failed]")
	}
	var out []bot.NotifyEvent
	for _, s := range list {
		out = append(out, bot.NotifyEvent(s))
	}
	return out
}

// notifySecretName reads a secret's name. Something that looks like a URL
// is a secret written into the repository: refused, and the message does
// not repeat it.
func (w *walker) notifySecretName(f entry, expected string) string {
	s, ok := w.nonEmptyStr(f, expected)
	if !ok {
		return ""
	}
	if strings.Contains(s, "://") || strings.Contains(s, "/") {
		w.errorf(f.valuePos, f.path, "this looks like a URL: never write it in the repository; put it in a file under <secrets-dir>/<owner>/<repo>/notifications/ and write that file's name here, such as SLACK_RELEASES_URL")
		return ""
	}
	if err := bot.CheckVariableName(s); err != nil {
		w.errorf(f.valuePos, f.path, "%v", err)
		return ""
	}
	return s
}
