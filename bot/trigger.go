package bot

import (
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
// does not. Reason is shown to users as is.
type TriggerDecision struct {
	Pipeline PipelineKind
	Start    bool
	Reason   string
}

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
		d := TriggerDecision{Pipeline: kind}
		switch {
		case branch == "":
			d.Reason = fmt.Sprintf("%s not started: pushes of tags (%s) start nothing", kind, push.Ref)
		case push.Deleted:
			d.Reason = fmt.Sprintf("%s not started: the branch %s was deleted", kind, branch)
		case kind == ProdOnly:
			d.Reason = "prod-only not started: it never starts on a push; promote a stage-only execution instead"
		case p.Trigger != TriggerOnGitChanges:
			d.Reason = fmt.Sprintf("%s not started: its trigger is manual (start it with /stagehand run %s)", kind, kind)
		case p.Branch != branch:
			d.Reason = fmt.Sprintf("%s not started: it follows branch %s, the push was to %s", kind, p.Branch, branch)
		case kind == FullStack && matches(StageOnly):
			d.Reason = fmt.Sprintf("full-stack not started: stage-only has priority on %s", branch)
		default:
			d.Start = true
		}
		out = append(out, d)
	}
	return out
}
