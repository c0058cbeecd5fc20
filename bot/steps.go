package bot

import "slices"

// StepName names a step of a pipeline.
type StepName string

// The steps of the three pipeline kinds.
const (
	StepBuild               StepName = "build"
	StepDeployStage         StepName = "deploy-stage"
	StepStageTests          StepName = "stage-tests"
	StepApproval            StepName = "approval"
	StepSchedule            StepName = "schedule"
	StepDeployProduction    StepName = "deploy-production"
	StepArtifactPreparation StepName = "artifact-preparation"
)

// StepKind is one kind of step, in one entry of StepKinds: which pipelines
// run it, whether a step worker claims it, what it touches and how it
// shows while it waits. What a worker runs for it is the step worker's
// (handlers/worker), by Name. Adding a step kind is adding an entry here
// and its work there.
type StepKind struct {
	Name StepName
	// Pipelines are the pipeline kinds that run the step; they run their
	// steps in the order of StepKinds.
	Pipelines []PipelineKind
	// Worker: a step worker claims the step (ClaimStep) and reports its
	// outcome (FinishStep). Otherwise the engine decides it itself.
	Worker bool
	// Environment is the environment the step deploys to or tests: the
	// step gets that environment's variables and secrets. "": none.
	Environment EnvironmentName
	// Deploy: the step changes Environment. It never runs twice (rule I),
	// its success records what runs there, and GitHub shows it as a
	// Deployment.
	Deploy bool
	// Gate is the gate the step is: it waits for a person, and its check
	// run shows that gate's buttons. "": not a gate.
	Gate StepGate
}

// StepGate names the gate a step is.
type StepGate string

// The gates.
const (
	// GateApproval waits for Approve (Promote to Prod), Approve Rollback
	// or Reject; its worker's rollback check decides whether it opens
	// (rule G).
	GateApproval StepGate = "approval"
	// GateSchedule waits for the scheduled time or Deploy Now, when the
	// pipeline is scheduled.
	GateSchedule StepGate = "schedule"
)

var (
	stageTested   = []PipelineKind{FullStack, StageOnly}
	toProduction  = []PipelineKind{FullStack, ProdOnly}
	promotionOnly = []PipelineKind{ProdOnly}
)

// StepKinds are the kinds of step, in the order a pipeline runs them.
var StepKinds = []StepKind{
	{Name: StepBuild, Pipelines: stageTested, Worker: true},
	{Name: StepDeployStage, Pipelines: stageTested, Worker: true, Environment: Stage, Deploy: true},
	{Name: StepStageTests, Pipelines: stageTested, Worker: true, Environment: Stage},
	{Name: StepArtifactPreparation, Pipelines: promotionOnly, Worker: true},
	{Name: StepApproval, Pipelines: toProduction, Worker: true, Gate: GateApproval},
	{Name: StepSchedule, Pipelines: toProduction, Gate: GateSchedule},
	{Name: StepDeployProduction, Pipelines: toProduction, Worker: true, Environment: Production, Deploy: true},
}

// KindOf is the kind of a step; the zero StepKind (named name) for a name
// no entry has.
func KindOf(name StepName) StepKind {
	for _, k := range StepKinds {
		if k.Name == name {
			return k
		}
	}
	return StepKind{Name: name}
}

// StepsOf returns the steps of a pipeline kind, in order.
func StepsOf(kind PipelineKind) []StepName {
	var steps []StepName
	for _, k := range StepKinds {
		if slices.Contains(k.Pipelines, kind) {
			steps = append(steps, k.Name)
		}
	}
	return steps
}
