package webhook

import (
	"testing"

	"github.com/stagehand-dev/stagehand/bot/githubapp"
)

// TestEveryButtonIsPressable: each button a check run may show has its
// entry in buttons, and the production ones are marked so (SPEC §5).
func TestEveryButtonIsPressable(t *testing.T) {
	production := map[string]bool{
		githubapp.ActionApprove: true, githubapp.ActionApproveRollback: true,
		githubapp.ActionReject: true, githubapp.ActionDeployNow: true,
	}
	for _, id := range githubapp.ButtonIdentifiers() {
		b, ok := buttons[id]
		if !ok {
			t.Errorf("check runs may show button %q, which the webhook room does not act on", id)
			continue
		}
		if b.production != production[id] {
			t.Errorf("button %q: production = %v, want %v", id, b.production, production[id])
		}
	}
	if len(buttons) != len(githubapp.ButtonIdentifiers())+1 { // + GitHub's Re-run
		t.Errorf("%d buttons act, but check runs show %d (+ Re-run): remove the ones never shown", len(buttons), len(githubapp.ButtonIdentifiers()))
	}
}
