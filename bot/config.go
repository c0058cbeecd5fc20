package bot

import (
	"fmt"
	"time"
)

// PipelineKind is one of the three kinds of pipeline a program may have.
type PipelineKind string

// The pipeline kinds, spelled as in the configuration file and check-run names.
const (
	FullStack PipelineKind = "full-stack"
	StageOnly PipelineKind = "stage-only"
	ProdOnly  PipelineKind = "prod-only"
)

// PipelineKinds lists the kinds in the order Stagehand shows them.
var PipelineKinds = []PipelineKind{FullStack, StageOnly, ProdOnly}

// Trigger says what starts a pipeline.
type Trigger string

// The triggers a pipeline may have.
const (
	TriggerManual       Trigger = "manual"
	TriggerOnGitChanges Trigger = "on-git-changes"
)

// EnvironmentName is "stage" or "production".
type EnvironmentName string

// The two environments of every program.
const (
	Stage      EnvironmentName = "stage"
	Production EnvironmentName = "production"
)

// Default timeouts used when the configuration file names none.
const (
	DefaultBuildTimeout  = 30 * time.Minute
	DefaultDeployTimeout = 30 * time.Minute
	DefaultTestTimeout   = 10 * time.Minute
)

// Config is a program's .github/stagehand.yml after parsing.
type Config struct {
	Version     int
	Build       *Build // nil when the file has no build section
	Stage       *Environment
	Production  *Environment
	Pipelines   map[PipelineKind]PipelineConfig
	BareAliases bool
	// Notifications are the program's notification targets (policy: the
	// default branch's file only; see MergePolicy).
	Notifications []NotificationTarget
}

// Build says how a commit is built and which files form its artifact set.
type Build struct {
	Run       string
	Artifacts []string
	Timeout   time.Duration
}

// Environment is the configuration of stage or production.
type Environment struct {
	Deploy        string
	DeployTimeout time.Duration
	URL           string
	Variables     map[string]string
	// Secrets are the names of the secrets deploys and tests of this
	// environment get (SPEC §7); their values come from the server's
	// secret source, never from the repository.
	Secrets             []string
	Tests               []Test
	Approvers           Approvers
	PreventSelfApproval bool
	// Windows and Freezes say when deploys to the environment may start
	// (policy: the default branch's file). No windows: any time outside
	// the freezes.
	Windows []Window
	Freezes []Freeze
	// BreakGlassOff is break_glass: false: no break-glass override
	// (/stagehand deploy-now --override) for this environment.
	BreakGlassOff bool
}

// Test is one stage test.
type Test struct {
	Name    string
	Run     string
	Timeout time.Duration
}

// Approvers restricts who may approve a production deployment. Empty means
// anyone with write permission on the repository.
type Approvers struct {
	Users []string
	Teams []string // "org/team-slug"
	// Required is how many distinct approvers a production deploy needs
	// (the quorum); 0 when the file does not say, which means 1. See
	// Quorum.
	Required int
}

// PipelineConfig is one pipeline's settings.
type PipelineConfig struct {
	Branch    string
	Trigger   Trigger
	Approval  bool
	Scheduled bool
}

// Environment returns the named environment's configuration, or nil.
func (c *Config) Environment(name EnvironmentName) *Environment {
	switch name {
	case Stage:
		return c.Stage
	case Production:
		return c.Production
	}
	return nil
}

// Has reports whether the program has a pipeline of the kind.
func (c *Config) Has(kind PipelineKind) bool {
	_, ok := c.Pipelines[kind]
	return ok
}

// Problem is something wrong (or, with Warning set, something unwise) in a
// configuration. Path names the offending key with dots, for example
// "pipelines.prod-only.trigger", so the parser can point at its line.
type Problem struct {
	Path    string
	Message string
	Warning bool
}

func (p Problem) String() string {
	if p.Warning {
		return fmt.Sprintf("%s: warning: %s", p.Path, p.Message)
	}
	return fmt.Sprintf("%s: %s", p.Path, p.Message)
}

// Check applies the pipeline set constraints (rule H) and the cross-section
// requirements a parser cannot see key by key. Unknown keys and wrong types
// are the parser's business; Check sees a structurally valid Config.
func (c *Config) Check() []Problem {
	var ps []Problem
	add := func(path, format string, args ...any) {
		ps = append(ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if len(c.Pipelines) == 0 {
		add("pipelines", "no pipeline is configured; add at least one of full-stack, stage-only or prod-only")
	}
	_, full := c.Pipelines[FullStack]
	_, stage := c.Pipelines[StageOnly]
	prod, hasProd := c.Pipelines[ProdOnly]
	if hasProd && !stage {
		add("pipelines.prod-only", "a prod-only pipeline requires a stage-only pipeline: it deploys the artifacts of a stage-only execution")
	}
	if hasProd && prod.Trigger != "" {
		add("pipelines.prod-only.trigger", "a prod-only pipeline cannot have a trigger: it starts only when a stage-only execution is promoted")
	}
	if hasProd && prod.Branch != "" {
		add("pipelines.prod-only.branch", "a prod-only pipeline has no branch: it deploys the commit of the stage-only execution it promotes")
	}
	for _, kind := range []PipelineKind{FullStack, StageOnly} {
		p, ok := c.Pipelines[kind]
		if !ok {
			continue
		}
		path := "pipelines." + string(kind)
		if p.Branch == "" {
			add(path, "%s needs a branch (for example branch: main)", kind)
		}
		if c.Build == nil {
			add(path, "%s builds the commit, so the file needs a build section with run and artifacts", kind)
		}
		if c.Stage == nil {
			add(path, "%s deploys to stage, so the file needs environments.stage", kind)
		}
	}
	if p, ok := c.Pipelines[StageOnly]; ok && (p.Approval || p.Scheduled) {
		add("pipelines.stage-only", "a stage-only pipeline ends after its stage tests; approval and scheduled apply to full-stack and prod-only only")
	}
	if (full || hasProd) && c.Production == nil {
		add("environments", "a pipeline that deploys to production needs environments.production")
	}
	ps = append(ps, c.checkQuorum()...)
	if full && (stage || hasProd) {
		ps = append(ps, Problem{Path: "pipelines.full-stack", Warning: true,
			Message: "full-stack together with stage-only/prod-only pipelines is allowed but not recommended: promoting older stage-only artifacts can roll production back"})
	}
	return ps
}
