package bot

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"strings"
)

// Policy is a program's policy (SPEC §3): .github/stagehand.yml at the head
// of the repository's default branch. It decides which pipelines exist and
// fire, their gates, the approvers, prevent_self_approval, URLs and
// variables. A push to any other branch can never change it; the commit
// being built supplies only its commands (build, artifacts, deploy, tests).
type Policy struct {
	Branch string // the default branch
	Commit string // its head, where the file was read
	// Raw is the file; nil when the default branch has none (then the
	// program has no pipelines).
	Raw    []byte
	Config *Config // parsed Raw; nil when Raw is nil
}

// Describe names where the policy was read: "main at abc1234".
func (p Policy) Describe() string {
	return fmt.Sprintf("%s at %s", p.Branch, ShortSHA(p.Commit))
}

// PolicyReader reads a program's policy at the moment a decision needs it.
// A default branch whose file does not parse is a *Refusal that says so;
// any other error means the policy could not be read, and whatever asked
// must be refused (fail closed).
type PolicyReader interface {
	Policy(ctx context.Context, prog Program) (Policy, error)
}

// InvalidPolicyError is the refusal when the default branch's file does not
// parse: nothing starts and no gate opens until it is fixed there.
func InvalidPolicyError(p Policy, err error) *Refusal {
	return &Refusal{Code: RefusalInvalidPolicy, Message: fmt.Sprintf(".github/stagehand.yml on the default branch (%s) is invalid, so Stagehand has no policy for this repository and refuses until it is fixed there:\n%v", p.Describe(), err)}
}

// MergePolicy is the configuration an execution runs with: the commands
// (build, artifacts, deploy, tests, timeouts) of commands, the file at the
// commit being built, and everything else from policy, the default
// branch's file. Either may be nil.
func MergePolicy(commands, policy *Config) *Config {
	out := &Config{Pipelines: map[PipelineKind]PipelineConfig{}}
	if commands != nil {
		out.Version, out.Build = commands.Version, commands.Build
	}
	if policy != nil {
		out.BareAliases = policy.BareAliases
		out.Notifications = policy.Notifications
		maps.Copy(out.Pipelines, policy.Pipelines)
	}
	for _, name := range []EnvironmentName{Stage, Production} {
		var cmd, pol *Environment
		if commands != nil {
			cmd = commands.Environment(name)
		}
		if policy != nil {
			pol = policy.Environment(name)
		}
		if cmd == nil && pol == nil {
			continue
		}
		env := &Environment{}
		if cmd != nil {
			env.Deploy, env.DeployTimeout, env.Tests = cmd.Deploy, cmd.DeployTimeout, cmd.Tests
		}
		if pol != nil {
			env.URL, env.Variables, env.Approvers, env.PreventSelfApproval = pol.URL, pol.Variables, pol.Approvers, pol.PreventSelfApproval
			env.Secrets = pol.Secrets
			env.Windows, env.Freezes = pol.Windows, pol.Freezes
			env.BreakGlassOff = pol.BreakGlassOff
		}
		if name == Stage {
			out.Stage = env
		} else {
			out.Production = env
		}
	}
	return out
}

// ExecutionConfig is what an execution runs with: its commit's commands
// under the policy recorded when it was created (see MergePolicy). An
// execution recorded before policies were kept apart has only its commit's
// file, which was then both.
func ExecutionConfig(parse func([]byte) (*Config, error), ex Execution) (*Config, error) {
	commands, err := parse(ex.Config)
	if err != nil {
		return nil, fmt.Errorf("the commands file of %s no longer parses: %w", ex, err)
	}
	if ex.Policy == nil {
		return commands, nil
	}
	policy, err := parse(ex.Policy)
	if err != nil {
		return nil, fmt.Errorf("the policy recorded with %s no longer parses: %w", ex, err)
	}
	return MergePolicy(commands, policy), nil
}

func (e *Engine) executionConfig(ex Execution) (*Config, error) {
	return ExecutionConfig(e.config, ex)
}

var variableNamePattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// deniedVariables change how the shell, the loader or git behave, or are
// Stagehand's own: a step must never get them from a variable (SPEC §3).
var deniedVariables = map[string]bool{
	"BASH_ENV": true, "ENV": true, "SHELLOPTS": true, "BASHOPTS": true, "PS4": true,
	"PROMPT_COMMAND": true, "IFS": true, "PATH": true, "HOME": true, "CDPATH": true,
	"GLOBIGNORE": true, "BASH_XTRACEFD": true, "BASH_COMPAT": true, "BASH_LOADABLES_PATH": true,
	"INPUTRC": true, "HISTFILE": true, "EXECIGNORE": true, "TMPDIR": true, "SHELL": true,
	"PYTHONSTARTUP": true, "PYTHONPATH": true, "PERL5OPT": true, "PERL5LIB": true,
	"RUBYOPT": true, "NODE_OPTIONS": true, "JAVA_TOOL_OPTIONS": true, "_JAVA_OPTIONS": true,
	"SSH_ASKPASS": true, "SSH_AUTH_SOCK": true, "GCONV_PATH": true, "HOSTALIASES": true,
	"RESOLV_HOST_CONF": true, "LOCALDOMAIN": true, "NLSPATH": true, "MALLOC_CHECK_": true,
}

// deniedVariablePrefixes are families of such names.
var deniedVariablePrefixes = []string{"LD_", "GIT_", "STAGEHAND_", "BASH_FUNC_", "DYLD_"}

// CheckVariableName says why name may not be a variable or secret name, or
// returns nil: names match ^[A-Z][A-Z0-9_]*$ and are not one that changes
// how the shell, the loader or git behaves (SPEC §3).
func CheckVariableName(name string) error {
	if !variableNamePattern.MatchString(name) {
		return fmt.Errorf("%q is not a valid variable name: use upper-case letters, digits and _, starting with a letter (^[A-Z][A-Z0-9_]*$)", name)
	}
	if deniedVariables[name] {
		return fmt.Errorf("%q may not be set: it changes how the shell, the loader, git or a language runtime behaves, or is set by Stagehand itself", name)
	}
	for _, p := range deniedVariablePrefixes {
		if strings.HasPrefix(name, p) {
			return fmt.Errorf("%q may not be set: names starting with %s change how the loader or git behave, or are Stagehand's own", name, p)
		}
	}
	return nil
}

// PipelinesOf is the pipeline set a configuration declares.
func PipelinesOf(programID int64, cfg *Config) []Pipeline {
	var ps []Pipeline
	for _, kind := range PipelineKinds {
		if p, ok := cfg.Pipelines[kind]; ok {
			ps = append(ps, Pipeline{ProgramID: programID, Kind: kind, PipelineConfig: p})
		}
	}
	return ps
}

// programPolicy loads the program and reads its policy (req's, when its
// handler read it).
func (e *Engine) programPolicy(ctx context.Context, req Request, programID int64) (Policy, error) {
	_, pol, err := e.programAndPolicy(ctx, req, programID)
	return pol, err
}

// programAndPolicy loads the program and reads its policy (req's, when its
// handler read it).
func (e *Engine) programAndPolicy(ctx context.Context, req Request, programID int64) (Program, Policy, error) {
	var prog Program
	err := e.viewTx(ctx, func(tx EngineTx) error {
		var err error
		prog, err = tx.Program(ctx, programID)
		return err
	})
	if err != nil {
		return prog, Policy{}, err
	}
	if req.Policy != nil {
		return prog, *req.Policy, nil
	}
	pol, err := e.readPolicy(ctx, prog)
	return prog, pol, err
}
