package bot

import "fmt"

// Holds reports whether an execution of a pipeline kind deploys to env,
// and so holds its lock while active (rule E).
func Holds(kind PipelineKind, env EnvironmentName) bool {
	switch kind {
	case FullStack:
		return true
	case StageOnly:
		return env == Stage
	case ProdOnly:
		return env == Production
	}
	return false
}

// Conflicts reports whether executions of two pipeline kinds may not run
// at the same time (rule B): full-stack excludes the split pipelines, and
// a pipeline has at most one active execution.
func Conflicts(a, b PipelineKind) bool {
	return a == b || a == FullStack || b == FullStack
}

// Blocker returns the execution among running that keeps cand from
// starting under rule B, or nil. Only running and waiting executions block;
// queued ones wait their turn.
func Blocker(cand Execution, running []Execution) *Execution {
	for i, r := range running {
		if r.ID == cand.ID || (r.State != ExecutionRunning && r.State != ExecutionWaiting) {
			continue
		}
		if Conflicts(cand.Pipeline, r.Pipeline) {
			return &running[i]
		}
	}
	return nil
}

// blockedError is the refusal of a manual start blocked by rule B (rule C:
// manual starts are refused, not queued).
func blockedError(kind PipelineKind, b Execution, link string) *Refusal {
	return &Refusal{Code: RefusalBlocked, Rule: "B", Message: fmt.Sprintf("%s cannot start now: %s is %s (%s); only one execution of a pipeline runs at a time, and full-stack never runs together with stage-only or prod-only. Try again when it has ended",
		kind, b, describeState(b), link)}
}

// itState says in a sentence where an execution is: "it succeeded", "it
// was cancelled", "it is waiting: for approval".
func itState(e Execution) string {
	switch e.State {
	case ExecutionSucceeded, ExecutionFailed:
		return "it " + string(e.State)
	case ExecutionCancelled, ExecutionSkipped:
		return "it was " + string(e.State)
	}
	return "it is " + describeState(e)
}

// describeState says what an execution is doing, for messages.
func describeState(e Execution) string {
	switch e.State {
	case ExecutionWaiting:
		if e.Message != "" {
			return "waiting: " + e.Message
		}
		return "waiting"
	case ExecutionQueued:
		return "queued"
	}
	return string(e.State)
}

// noSuchExecution is the refusal of a command naming an execution number
// the program does not have.
func noSuchExecution(prog Program, number int) *Refusal {
	return &Refusal{Code: RefusalNoSuchExecution, Message: fmt.Sprintf("%s has no execution #%d", prog.FullName(), number)}
}
