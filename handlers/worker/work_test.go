package worker

import (
	"testing"

	"github.com/stagehand-dev/stagehand/bot"
)

// TestEveryWorkerStepHasWork: a step kind a worker claims has its work in
// stepWorks, and only such kinds do.
func TestEveryWorkerStepHasWork(t *testing.T) {
	for _, k := range bot.StepKinds {
		if _, ok := stepWorks[k.Name]; ok != k.Worker {
			t.Errorf("%s: claimed by a worker %v, has work %v", k.Name, k.Worker, ok)
		}
	}
}
