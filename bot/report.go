package bot

import (
	"slices"
	"strconv"
	"strings"
)

// The GitHub reporter's state: what it brought to GitHub for an execution,
// kept in GitHubRefs so that a restart, or another replica, goes on from
// where it stopped. A GitHubRef's Key names the GitHub object (the check
// run of a phase, the deployment of a deploy step) and its Reported says
// what that object shows; the functions below are the only ones that write
// or read those strings.

const (
	checkRunKeyPrefix   = "check-run/"
	deploymentKeyPrefix = "deployment/"
)

// CheckRunKey is the key of the check run of phase n (0, 1, …): a gate
// completes phase N's check run and phase N+1 gets a new one.
func CheckRunKey(phase int) string { return checkRunKeyPrefix + strconv.Itoa(phase) }

// CheckRunPhase is the phase of a check run's key; ok is false for any
// other key.
func CheckRunPhase(key string) (phase int, ok bool) {
	rest, ok := strings.CutPrefix(key, checkRunKeyPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n >= 0 && rest == strconv.Itoa(n)
}

// DeploymentKey is the key of the GitHub Deployment of a deploy step.
func DeploymentKey(step StepName) string { return deploymentKeyPrefix + string(step) }

// CheckRunState is what the reporter last did to a check run.
type CheckRunState string

// The states of a check run's report.
const (
	// CheckRunForgotten: what the check run shows is not known (forgotten
	// for a resend): the next report updates it.
	CheckRunForgotten CheckRunState = ""
	// CheckRunCreating: a create was sent and its answer not recorded
	// yet (the intent, stored before the create).
	CheckRunCreating CheckRunState = "creating"
	// CheckRunAdopted: found on GitHub after its create's answer was lost;
	// what it shows is not known: the next report updates it.
	CheckRunAdopted CheckRunState = "adopted"
	// CheckRunShown: it shows the view of Hash, stopped at Gate if any.
	CheckRunShown CheckRunState = "shown"
	// CheckRunClosed: a passed gate's check run, its buttons taken off.
	CheckRunClosed CheckRunState = "closed"
)

// CheckRunGate is where a check run stopped for a person (completed with action
// required); the zero CheckRunGate is no gate. Passing it starts a new phase.
type CheckRunGate struct {
	At   bool
	Step StepName // the step that waits; "" when none does
}

// Name is the gate's name in messages: its step, or "gate".
func (g CheckRunGate) Name() string {
	if g.Step != "" {
		return string(g.Step)
	}
	return "gate"
}

// CheckRunReport is the reporter's record of one check run
// (GitHubRef.Reported): its state and, when shown, the hash of the view
// sent and the gate it stopped at.
type CheckRunReport struct {
	State CheckRunState
	Hash  string
	Gate  CheckRunGate
}

// String encodes the report as stored: "creating", "adopted|", "closed|",
// "" (forgotten), or "<hash>|" with "gate" or "gate:<step>" after the bar
// at a gate.
func (r CheckRunReport) String() string {
	switch r.State {
	case CheckRunForgotten:
		return ""
	case CheckRunCreating:
		return string(CheckRunCreating)
	case CheckRunAdopted, CheckRunClosed:
		return string(r.State) + "|"
	}
	gate := ""
	if r.Gate.At {
		gate = "gate"
		if r.Gate.Step != "" {
			gate += ":" + string(r.Gate.Step)
		}
	}
	return r.Hash + "|" + gate
}

// ParseCheckRunReport decodes what String encoded.
func ParseCheckRunReport(s string) CheckRunReport {
	switch s {
	case "":
		return CheckRunReport{State: CheckRunForgotten}
	case string(CheckRunCreating):
		return CheckRunReport{State: CheckRunCreating}
	case string(CheckRunAdopted) + "|":
		return CheckRunReport{State: CheckRunAdopted}
	case string(CheckRunClosed) + "|":
		return CheckRunReport{State: CheckRunClosed}
	}
	hash, gate, _ := strings.Cut(s, "|")
	r := CheckRunReport{State: CheckRunShown, Hash: hash}
	if rest, ok := strings.CutPrefix(gate, "gate"); ok && (rest == "" || rest[0] == ':') {
		r.Gate = CheckRunGate{At: true, Step: StepName(strings.TrimPrefix(rest, ":"))}
	}
	return r
}

// DeploymentState is what the reporter last set a deploy step's GitHub
// Deployment to (the Reported of its DeploymentKey): one of GitHub's
// deployment status states.
type DeploymentState string

// The deployment states the reporter sets.
const (
	DeploymentNotReported DeploymentState = ""
	// DeploymentCreating is the intent, stored before a deployment is
	// created (the ref has no GitHub id yet): finding it means a create
	// may have reached GitHub without its answer reaching the reporter.
	DeploymentCreating   DeploymentState = "creating"
	DeploymentInProgress DeploymentState = "in_progress"
	DeploymentSuccess    DeploymentState = "success"
	DeploymentFailure    DeploymentState = "failure"
)

// DeploymentStateOf is what a deploy step's Deployment shows: in progress
// once a worker has claimed the step, success or failure when it ends; ok is
// false before then (pending, or dispatched but not started).
func DeploymentStateOf(s Step) (DeploymentState, bool) {
	switch s.State {
	case StepRunning:
		return DeploymentInProgress, s.Attempt > 0
	case StepSucceeded:
		return DeploymentSuccess, true
	case StepFailed, StepCancelled:
		return DeploymentFailure, true
	}
	return DeploymentNotReported, false
}

// ButtonsShown is what an execution's check run shows now: the GitHub id
// of its current phase's check run (0 when there is none yet, or it was
// closed), the identifiers of the buttons the execution's state offers,
// and how many events the execution has (its history so far: a button
// offered again after it moved is a new gate).
type ButtonsShown struct {
	CheckRunID  int64
	Identifiers []string
	Events      int
}

// Offers reports whether a click of the button action on the check run
// checkRunID is on what is shown now; any other click is stale.
func (b ButtonsShown) Offers(checkRunID int64, action string) bool {
	return b.CheckRunID == checkRunID && slices.Contains(b.Identifiers, action)
}
