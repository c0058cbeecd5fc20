package bot

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type fakeHistory []EnvironmentDeployment

func (f fakeHistory) EnvironmentHistory(context.Context, HistoryQuery) ([]EnvironmentDeployment, error) {
	return f, nil
}

func TestReadRestorePin(t *testing.T) {
	promoted := func(n, src int) EnvironmentDeployment {
		return EnvironmentDeployment{Number: n, SourceNumber: src, Cause: CausePromotion, Outcome: StepSucceeded}
	}
	restored := func(n, src int, outcome StepState) EnvironmentDeployment {
		return EnvironmentDeployment{Number: n, SourceNumber: src, Cause: CauseRestore, Outcome: outcome}
	}
	for _, tc := range []struct {
		name    string
		history fakeHistory // newest first
		want    RestorePin
	}{
		{"nothing deployed", nil, RestorePin{}},
		{"a promotion runs", fakeHistory{promoted(4, 3), promoted(2, 1)}, RestorePin{}},
		{"a restore runs", fakeHistory{restored(5, 1, StepSucceeded), promoted(4, 3), promoted(2, 1)}, RestorePin{Restore: 5, Build: 1, From: 3}},
		{"a failed restore does not pin", fakeHistory{restored(5, 1, StepFailed), promoted(4, 3)}, RestorePin{}},
		{"a promotion after the restore unpins", fakeHistory{promoted(7, 6), restored(5, 1, StepSucceeded), promoted(4, 3)}, RestorePin{}},
		{"a full-stack build rolled back from", fakeHistory{restored(4, 1, StepSucceeded), {Number: 3, Pipeline: FullStack, Outcome: StepSucceeded}}, RestorePin{Restore: 4, Build: 1, From: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadRestorePin(context.Background(), tc.history, 1)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	pin := RestorePin{Restore: 5, Build: 1, From: 3}
	if got, want := pin.String(), "pinned by restore of #1 (prod-only #5, rolled back from #3)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if !pin.OlderThanRolledBack(2) || pin.OlderThanRolledBack(3) || (RestorePin{}).OlderThanRolledBack(1) {
		t.Error("OlderThanRolledBack")
	}
}
