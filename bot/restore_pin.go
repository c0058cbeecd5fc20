package bot

import (
	"context"
	"fmt"
)

// RestorePin says that production runs a restored build: its newest
// successful deploy came from /stagehand restore. While it does, the
// program shows "pinned by restore of #N", and promoting a build older
// than the one rolled back from asks for an extra confirmation.
type RestorePin struct {
	Restore int // the prod-only execution that restored the build
	Build   int // the execution whose build it restored: #N
	// From is the build production ran before the restore, the one rolled
	// back from (0: unknown).
	From int
}

// Pinned reports whether production runs a restored build.
func (p RestorePin) Pinned() bool { return p.Build != 0 }

// String is how the program shows the pin ("" when not pinned).
func (p RestorePin) String() string {
	if !p.Pinned() {
		return ""
	}
	s := fmt.Sprintf("pinned by restore of #%d (prod-only #%d", p.Build, p.Restore)
	if p.From != 0 {
		s += fmt.Sprintf(", rolled back from #%d", p.From)
	}
	return s + ")"
}

// OlderThanRolledBack reports whether promoting build number while p holds
// would deploy a build older than the one rolled back from.
func (p RestorePin) OlderThanRolledBack(number int) bool {
	return p.Pinned() && p.From != 0 && number < p.From
}

// restorePinDepth is how many of production's newest deploys are read to
// find the pin and the build it rolled back from.
const restorePinDepth = 20

// ReadRestorePin reads from production's history whether a restored build
// runs there now (the zero RestorePin when not).
func ReadRestorePin(ctx context.Context, h HistoryReader, programID int64) (RestorePin, error) {
	ds, err := h.EnvironmentHistory(ctx, HistoryQuery{ProgramID: programID, Environment: Production, Limit: restorePinDepth})
	if err != nil {
		return RestorePin{}, fmt.Errorf("reading production's history: %w", err)
	}
	for i, d := range ds {
		if d.Outcome != StepSucceeded {
			continue
		}
		if d.Cause != CauseRestore {
			return RestorePin{}, nil
		}
		pin := RestorePin{Restore: d.Number, Build: d.Build()}
		for _, o := range ds[i+1:] {
			if o.Outcome == StepSucceeded && o.Build() != pin.Build {
				pin.From = o.Build()
				break
			}
		}
		return pin, nil
	}
	return RestorePin{}, nil
}
