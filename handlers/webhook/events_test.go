package webhook

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot/githubapp"
)

// TestAppSubscribesToEveryHandledEvent: the events the App asks for in
// its manifest and the permissions check compares (githubapp.NeededEvents),
// with those GitHub sends every App, are exactly the events a handler
// handles: a new handler's event is subscribed to, and the App subscribes
// to nothing it ignores.
func TestAppSubscribesToEveryHandledEvent(t *testing.T) {
	want := append(slices.Clone(githubapp.NeededEvents), githubapp.AlwaysSentEvents...)
	slices.Sort(want)
	if diff := cmp.Diff(want, Events()); diff != "" {
		t.Errorf("events (-the App's +handled):\n%s", diff)
	}
}
