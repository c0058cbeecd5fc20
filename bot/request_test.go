package bot

import (
	"errors"
	"strings"
	"testing"
)

func TestRequireProductionApprover(t *testing.T) {
	for _, tc := range []struct {
		name    string
		req     Request
		refused bool // a *RuleError
		failed  bool // another error: fail closed
	}{
		{"Stagehand itself", Internal("alice"), false, false},
		{"an approver", Request{Actor: "alice", Source: FromComment, Authorization: &Authorization{ProductionApprover: true}}, false, false},
		{"not an approver", Request{Actor: "alice", Source: FromButton, Authorization: &Authorization{Approvers: "bob"}}, true, false},
		{"from GitHub without an authorization", Request{Actor: "alice", Source: FromComment}, false, true},
		{"from nowhere", Request{Actor: "alice"}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := requireProductionApprover(tc.req, "approve a production deployment")
			var re *RuleError
			if got := errors.As(err, &re); got != tc.refused {
				t.Errorf("refused = %v (%v), want %v", got, err, tc.refused)
			}
			if got := err != nil && !errors.As(err, &re); got != tc.failed {
				t.Errorf("failed closed = %v (%v), want %v", got, err, tc.failed)
			}
			if tc.refused && !strings.Contains(err.Error(), "@alice is not one of the production approvers (bob)") {
				t.Errorf("refusal %q does not say who may", err)
			}
		})
	}
}
