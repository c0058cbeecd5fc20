package bot

import "slices"

// NotifyEvent is an event a notification target may ask for (issue 15:
// notifications), spelled as in .github/stagehand.yml.
type NotifyEvent string

// The events a notification target may list under events:.
const (
	NotifyStarted            NotifyEvent = "started"
	NotifyWaitingForApproval NotifyEvent = "waiting-for-approval"
	NotifySucceeded          NotifyEvent = "succeeded"
	NotifyFailed             NotifyEvent = "failed"
	NotifyOverridden         NotifyEvent = "overridden"
	NotifyRestored           NotifyEvent = "restored"
)

// NotifyEvents lists every event, in the order the README shows them.
var NotifyEvents = []NotifyEvent{NotifyStarted, NotifyWaitingForApproval, NotifySucceeded, NotifyFailed, NotifyOverridden, NotifyRestored}

// NotifyType is how a target is posted to.
type NotifyType string

// The target types: a Slack incoming webhook (Slack's message format) or a
// generic webhook (JSON signed with HMAC-SHA256).
const (
	NotifySlack   NotifyType = "slack"
	NotifyWebhook NotifyType = "webhook"
)

// NotifyTypes lists the target types.
var NotifyTypes = []NotifyType{NotifySlack, NotifyWebhook}

// NotifySecretsDir is the directory under <secrets-dir>/<owner>/<repo>/
// that holds the values a program's notification targets name (their URLs
// and signing secrets): <secrets-dir>/<owner>/<repo>/notifications/<NAME>.
// Like every secret (SPEC §7) they never come from the repository.
const NotifySecretsDir = "notifications"

// NotificationTarget is one entry of notifications: in the default
// branch's file (policy only). The file names the secrets that hold the
// target's URL (URLSecret) and, for a generic webhook, the key its
// payloads are signed with (SigningSecret); the values are read from the
// secret source when a notification is sent.
type NotificationTarget struct {
	Name          string
	Type          NotifyType
	Events        []NotifyEvent
	URLSecret     string
	SigningSecret string // webhook only
}

// Wants says whether the target asked for ev.
func (t NotificationTarget) Wants(ev NotifyEvent) bool {
	return slices.Contains(t.Events, ev)
}

// TargetsFor are the targets of cfg that want ev.
func TargetsFor(cfg *Config, ev NotifyEvent) []NotificationTarget {
	if cfg == nil {
		return nil
	}
	var out []NotificationTarget
	for _, t := range cfg.Notifications {
		if t.Wants(ev) {
			out = append(out, t)
		}
	}
	return out
}
