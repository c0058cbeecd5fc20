package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stagehand-dev/stagehand/bot"
)

// notifyYAML is a valid file with notifications: written from line 8 on.
func notifyYAML(notifications string) string {
	return `version: 1
build: {run: make dist, artifacts: [dist/**]}
environments:
  stage: {deploy: ./deploy.sh}
  production: {deploy: ./deploy.sh}
pipelines:
  stage-only: {branch: main}
` + notifications
}

func TestParseNotifications(t *testing.T) {
	cfg, diags := ParseRepoConfig(RepoConfigPath, []byte(notifyYAML(`notifications:
  - name: releases
    type: slack
    events: [started, waiting-for-approval, succeeded, failed, overridden, restored]
    url_secret: SLACK_RELEASES_URL
  - {name: audit-hook, type: webhook, events: [failed], url_secret: AUDIT_HOOK_URL, signing_secret: AUDIT_HOOK_KEY}
`)))
	if len(diags) != 0 {
		t.Fatalf("diagnostics: %v", diags)
	}
	want := []bot.NotificationTarget{
		{Name: "releases", Type: bot.NotifySlack, Events: bot.NotifyEvents, URLSecret: "SLACK_RELEASES_URL"},
		{Name: "audit-hook", Type: bot.NotifyWebhook, Events: []bot.NotifyEvent{bot.NotifyFailed}, URLSecret: "AUDIT_HOOK_URL", SigningSecret: "AUDIT_HOOK_KEY"},
	}
	if diff := cmp.Diff(want, cfg.Notifications); diff != "" {
		t.Errorf("notifications (-want +got):\n%s", diff)
	}
}

// TestParseNotificationErrors: every field of a target is checked, at its
// line and column; a URL written in the file is refused without being
// repeated.
func TestParseNotificationErrors(t *testing.T) {
	const hook = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
	for _, tc := range []struct {
		name, notifications string
		diags               bot.Diagnostics
	}{
		{
			name:          "unknown type",
			notifications: "notifications:\n  - {name: a, type: teams, events: [failed], url_secret: A_URL}\n",
			diags:         bot.Diagnostics{errAt(9, 21, `notifications[0].type: unknown target type "teams"; use slack (a Slack incoming webhook) or webhook (signed JSON)`)},
		},
		{
			name:          "unknown event",
			notifications: "notifications:\n  - {name: a, type: slack, events: [failed, deployed], url_secret: A_URL}\n",
			diags:         bot.Diagnostics{errAt(9, 45, `notifications[0].events[1]: unknown event "deployed"; use started, waiting-for-approval, succeeded, failed, overridden, restored`)},
		},
		{
			name:          "an event twice and none",
			notifications: "notifications:\n  - {name: a, type: slack, events: [failed, failed], url_secret: A_URL}\n  - {name: b, type: slack, events: [], url_secret: B_URL}\n",
			diags: bot.Diagnostics{
				errAt(9, 45, "notifications[0].events[1]: failed is listed twice; list each event once"),
				errAt(10, 36, "notifications[1].events: list at least one event, such as [waiting-for-approval, failed]"),
			},
		},
		{
			name:          "missing secret names",
			notifications: "notifications:\n  - name: a\n    type: webhook\n    events: [failed]\n",
			diags: bot.Diagnostics{
				errAt(9, 5, "notifications[0].url_secret: required; name the secret that holds its URL (from --secrets-dir, never the repository), such as url_secret: SLACK_RELEASES_URL"),
				errAt(9, 5, "notifications[0].signing_secret: required; a webhook's payloads are signed: name the secret that holds the key, such as signing_secret: RELEASES_SIGNING_KEY"),
			},
		},
		{
			name:          "duplicate names",
			notifications: "notifications:\n  - {name: releases, type: slack, events: [failed], url_secret: A_URL}\n  - {name: releases, type: slack, events: [started], url_secret: B_URL}\n",
			diags:         bot.Diagnostics{errAt(10, 12, `notifications[1].name: duplicate target name "releases" (the first is at line 9); target names must be unique`)},
		},
		{
			name:          "a URL in the file",
			notifications: "notifications:\n  - {name: a, type: slack, events: [failed], url_secret: \"" + hook + "\"}\n",
			diags:         bot.Diagnostics{errAt(9, 58, "notifications[0].url_secret: this looks like a URL: never write it in the repository; put it in a file under <secrets-dir>/<owner>/<repo>/notifications/ and write that file's name here, such as SLACK_RELEASES_URL")},
		},
		{
			name:          "a bad secret name, a signed Slack target, a bad name, an unknown key",
			notifications: "notifications:\n  - {name: Releases!, type: slack, events: [failed], url_secret: ld_url, signing_secret: K, channel: x}\n",
			diags: bot.Diagnostics{
				errAt(9, 12, `notifications[0].name: invalid target name "Releases!": use 1 to 40 lower-case letters, digits, - and _, starting with a letter or digit, such as releases`),
				errAt(9, 66, `notifications[0].url_secret: "ld_url" is not a valid variable name: use upper-case letters, digits and _, starting with a letter (^[A-Z][A-Z0-9_]*$)`),
				errAt(9, 74, "notifications[0].signing_secret: a Slack incoming webhook is not signed; remove signing_secret (its URL is the secret)"),
				errAt(9, 93, "notifications[0].channel: unknown key; allowed here: name, type, events, url_secret, signing_secret"),
			},
		},
		{
			name:          "not a list",
			notifications: "notifications: {name: a}\n",
			diags:         bot.Diagnostics{errAt(8, 16, "notifications: expected a list of notification targets, each a mapping with name, type, events and url_secret, got a mapping")},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := ParseRepoConfig(RepoConfigPath, []byte(notifyYAML(tc.notifications)))
			if diff := cmp.Diff(tc.diags, diags); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			if cfg != nil {
				t.Errorf("invalid notifications gave a config")
			}
			for _, d := range diags {
				if strings.Contains(d.Message, "hooks.slack.com") {
					t.Errorf("a diagnostic repeats the URL: %s", d)
				}
			}
		})
	}
}
