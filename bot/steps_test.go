package bot

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStepsOf(t *testing.T) {
	for kind, want := range map[PipelineKind][]StepName{
		FullStack: {StepBuild, StepDeployStage, StepStageTests, StepApproval, StepSchedule, StepDeployProduction},
		StageOnly: {StepBuild, StepDeployStage, StepStageTests},
		ProdOnly:  {StepArtifactPreparation, StepApproval, StepSchedule, StepDeployProduction},
		"other":   nil,
	} {
		if diff := cmp.Diff(want, StepsOf(kind)); diff != "" {
			t.Errorf("StepsOf(%s) (-want +got):\n%s", kind, diff)
		}
	}
}

// TestStepKinds checks that every entry makes sense: a deploy names its
// environment, a step the engine decides is a gate, names are unique.
func TestStepKinds(t *testing.T) {
	seen := map[StepName]bool{}
	for _, k := range StepKinds {
		if seen[k.Name] {
			t.Errorf("two entries are named %s", k.Name)
		}
		seen[k.Name] = true
		if k.Deploy && k.Environment == "" {
			t.Errorf("%s deploys but names no environment", k.Name)
		}
		if !k.Worker && k.Gate == "" {
			t.Errorf("%s is neither run by a worker nor a gate: nothing would decide it", k.Name)
		}
		if len(k.Pipelines) == 0 {
			t.Errorf("%s is in no pipeline", k.Name)
		}
		if got := KindOf(k.Name); got.Name != k.Name || got.Deploy != k.Deploy || got.Gate != k.Gate {
			t.Errorf("KindOf(%s) = %+v", k.Name, got)
		}
	}
	if k := KindOf("nope"); k.Worker || k.Deploy || k.Environment != "" || k.Gate != "" {
		t.Errorf("KindOf(unknown) = %+v, want the zero kind", k)
	}
}
