package bot

import (
	"cmp"
	"fmt"
	"strings"
)

// Push is what Stagehand needs to know about a push event.
type Push struct {
	Ref     string // "refs/heads/main" or "refs/tags/v1"
	Before  string
	After   string
	Created bool
	Deleted bool
	Forced  bool
}

// Branch returns the pushed branch, or "" for tags and other refs.
func (p Push) Branch() string {
	b, ok := strings.CutPrefix(p.Ref, "refs/heads/")
	if !ok {
		return ""
	}
	return b
}

// TriggerDecision says whether a push starts a pipeline, and why not when it
// does not (Reason is zero when it starts).
type TriggerDecision struct {
	Pipeline PipelineKind
	Start    bool
	Reason   TriggerReason
}

// ReasonCode names why a push did what it did to a pipeline, or to the
// whole program. The words for users are TriggerReason.String's.
type ReasonCode string

// The codes about one pipeline: DecideTriggers' reasons not to start it,
// and ReasonQueued when the push queued it.
const (
	ReasonTag           ReasonCode = "tag"                 // Ref: tags start nothing
	ReasonBranchDeleted ReasonCode = "branch-deleted"      // Branch
	ReasonNeverOnPush   ReasonCode = "never-on-push"       // prod-only
	ReasonManual        ReasonCode = "manual"              // its trigger is manual
	ReasonOtherBranch   ReasonCode = "other-branch"        // Follows, Branch
	ReasonPriority      ReasonCode = "stage-only-priority" // Branch (rule A)
	ReasonQueued        ReasonCode = "queued"              // Execution, Commit: it started
)

// The codes about a whole push that started nothing (Pipeline empty).
const (
	ReasonNoFile        ReasonCode = "no-file"        // Repo, Commit: the default branch has no file
	ReasonNoCommands    ReasonCode = "no-commands"    // Repo, Commit: the pushed commit has no file
	ReasonInvalidFile   ReasonCode = "invalid-file"   // Commit, Problems
	ReasonNoPolicy      ReasonCode = "no-policy"      // Repo, Policy: no file on the default branch
	ReasonInvalidPolicy ReasonCode = "invalid-policy" // Refusal: the default branch's file is invalid
)

// TriggerReason is why a push did what it did: a code and the values its
// words need. Each code uses the fields its comment names.
type TriggerReason struct {
	Code     ReasonCode
	Pipeline PipelineKind
	Ref      string // the pushed ref
	Branch   string // the pushed branch
	Follows  string // the branch the pipeline follows
	Repo     string // owner/name
	Commit   string // the pushed commit
	Policy   string // where the policy was read (Policy.Describe)
	// Execution is the execution the push queued ("stage-only #4").
	Execution string
	Problems  Diagnostics // the pushed file's diagnostics
	Refusal   string      // the refusal of an invalid policy
}

// String is the reason in words, shown to users and kept in trigger
// records: the one place they are written.
func (r TriggerReason) String() string {
	switch r.Code {
	case "":
		return ""
	case ReasonTag:
		return fmt.Sprintf("%s not started: pushes of tags (%s) start nothing", r.Pipeline, r.Ref)
	case ReasonBranchDeleted:
		return fmt.Sprintf("%s not started: the branch %s was deleted", r.Pipeline, r.Branch)
	case ReasonNeverOnPush:
		return fmt.Sprintf("%s not started: it never starts on a push; promote a stage-only execution instead", r.Pipeline)
	case ReasonManual:
		return fmt.Sprintf("%s not started: its trigger is manual (start it with /stagehand run %s)", r.Pipeline, r.Pipeline)
	case ReasonOtherBranch:
		return fmt.Sprintf("%s not started: it follows branch %s, the push was to %s", r.Pipeline, r.Follows, r.Branch)
	case ReasonPriority:
		return fmt.Sprintf("%s not started: %s has priority on %s", r.Pipeline, StageOnly, r.Branch)
	case ReasonQueued:
		return fmt.Sprintf("%s queued by the push of %s", r.Execution, ShortSHA(r.Commit))
	case ReasonNoFile:
		return fmt.Sprintf("nothing started: %s has no %s at %s", r.Repo, triggerConfigPath, ShortSHA(r.Commit))
	case ReasonNoCommands:
		return fmt.Sprintf("nothing started: %s has no %s at %s to take the build and deploy commands from", r.Repo, triggerConfigPath, ShortSHA(r.Commit))
	case ReasonInvalidFile:
		errs := r.Problems.Errors()
		return fmt.Sprintf("nothing started: %s at %s is invalid (%d problems); fix it and push again:\n%v",
			triggerConfigPath, ShortSHA(r.Commit), len(errs), &ConfigError{Diagnostics: errs})
	case ReasonNoPolicy:
		return fmt.Sprintf("nothing started: %s has no %s on its default branch (%s), which is where pipelines are declared", r.Repo, triggerConfigPath, r.Policy)
	case ReasonInvalidPolicy:
		return "nothing started: " + r.Refusal
	}
	return fmt.Sprintf("%s: %s", cmp.Or(string(r.Pipeline), "push"), r.Code)
}

// triggerConfigPath is where a repository keeps its configuration.
const triggerConfigPath = ".github/stagehand.yml"

// DecideTriggers applies rule A to one push: pipelines triggered on git
// changes of the pushed branch start; when both stage-only and full-stack
// match, only stage-only starts; prod-only never starts on a push; tag pushes
// and branch deletions start nothing. It returns one decision per configured
// pipeline, in the order of PipelineKinds.
func DecideTriggers(cfg *Config, push Push) []TriggerDecision {
	branch := push.Branch()
	matches := func(kind PipelineKind) bool {
		p, ok := cfg.Pipelines[kind]
		return ok && p.Trigger == TriggerOnGitChanges && p.Branch == branch
	}
	var out []TriggerDecision
	for _, kind := range PipelineKinds {
		p, ok := cfg.Pipelines[kind]
		if !ok {
			continue
		}
		why := TriggerReason{Pipeline: kind, Ref: push.Ref, Branch: branch}
		switch {
		case branch == "":
			why.Code = ReasonTag
		case push.Deleted:
			why.Code = ReasonBranchDeleted
		case kind == ProdOnly:
			why.Code = ReasonNeverOnPush
		case p.Trigger != TriggerOnGitChanges:
			why.Code = ReasonManual
		case p.Branch != branch:
			why.Code, why.Follows = ReasonOtherBranch, p.Branch
		case kind == FullStack && matches(StageOnly):
			why.Code = ReasonPriority
		default:
			out = append(out, TriggerDecision{Pipeline: kind, Start: true})
			continue
		}
		out = append(out, TriggerDecision{Pipeline: kind, Reason: why})
	}
	return out
}
