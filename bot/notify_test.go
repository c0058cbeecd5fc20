package bot

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestNotificationsArePolicy: notification targets come from the default
// branch's file only; a commit's file cannot add or redirect one.
func TestNotificationsArePolicy(t *testing.T) {
	evil := &Config{Version: 1, Notifications: []NotificationTarget{{Name: "leak", Type: NotifyWebhook, Events: NotifyEvents, URLSecret: "EVIL_URL", SigningSecret: "K"}}}
	policy := &Config{Version: 1, Notifications: []NotificationTarget{{Name: "releases", Type: NotifySlack, Events: []NotifyEvent{NotifyFailed}, URLSecret: "SLACK_URL"}}}
	if diff := cmp.Diff(policy.Notifications, MergePolicy(evil, policy).Notifications); diff != "" {
		t.Errorf("MergePolicy notifications (-want +got):\n%s", diff)
	}
	if got := MergePolicy(evil, nil).Notifications; got != nil {
		t.Errorf("MergePolicy(commands, nil) kept the commit's notifications: %+v", got)
	}
	cfg := MergePolicy(nil, policy)
	if got := TargetsFor(cfg, NotifyFailed); len(got) != 1 || got[0].Name != "releases" {
		t.Errorf("TargetsFor(failed) = %+v", got)
	}
	if got := TargetsFor(cfg, NotifyStarted); got != nil {
		t.Errorf("TargetsFor(started) = %+v", got)
	}
}
