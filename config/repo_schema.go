package config

import (
	"cmp"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/stagehand-dev/stagehand/bot"
)

// The keys each mapping of the file may hold (SPEC §3).
var (
	topKeys         = mapSpec{"top-level key", []string{"version", "build", "environments", "pipelines", "commands", "notifications"}}
	buildKeys       = mapSpec{"key", []string{"run", "artifacts", "timeout"}}
	environmentKeys = mapSpec{"environment", []string{string(bot.Stage), string(bot.Production)}}
	envKeys         = mapSpec{"key", []string{"deploy", "deploy_timeout", "url", "variables", "secrets", "tests", "approvers", "prevent_self_approval", "windows", "freezes", "break_glass"}}
	testKeys        = mapSpec{"key", []string{"name", "run", "timeout"}}
	approverKeys    = mapSpec{"key", []string{"users", "teams", "required"}}
	pipelineKinds   = mapSpec{"pipeline kind", []string{string(bot.FullStack), string(bot.StageOnly), string(bot.ProdOnly)}}
	pipelineKeys    = mapSpec{"key", []string{"branch", "trigger", "approval", "scheduled"}}
	commandKeys     = mapSpec{"key", []string{"bare_aliases"}}
	variableNames   = mapSpec{"variable", nil}
)

// invalidValue stands in for a value that was written but is invalid (and
// already reported), so that Check does not also report it as missing. A
// config with errors is never returned, so it never reaches a caller.
const invalidValue = "(invalid)"

// walkFile walks the whole document. It returns nil when the file has no usable
// top-level mapping; otherwise a config holding everything that could be
// read, to be checked further by (*bot.Config).Check.
func (w *walker) walkFile(data []byte) *bot.Config {
	body, ok := w.parse(data)
	if !ok {
		return nil
	}
	body = w.resolve(body)
	switch body.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
	default:
		w.errorf(nodePos(body), "", "the file must be a mapping with keys such as version, build, environments and pipelines, got %s", describe(body))
		return nil
	}
	entries, _ := w.fields("", nodePos(body), body, topKeys)
	cfg := &bot.Config{Pipelines: map[bot.PipelineKind]bot.PipelineConfig{}}
	for _, e := range entries {
		switch e.key {
		case "version":
			w.version(cfg, e)
		case "build":
			cfg.Build = w.build(e)
		case "environments":
			w.environments(cfg, e)
		case "pipelines":
			w.pipelines(cfg, e)
		case "commands":
			w.commands(cfg, e)
		case "notifications":
			w.notifications(cfg, e)
		}
	}
	w.require(entries, pos{1, 1}, "", "version", "add version: 1 at the top of the file")
	return cfg
}

func (w *walker) version(cfg *bot.Config, e entry) {
	n, ok := e.value.(*ast.IntegerNode)
	if !ok {
		w.errorf(e.valuePos, e.path, "expected the integer 1, got %s", describe(e.value))
		return
	}
	if fmt.Sprint(n.Value) != "1" {
		w.errorf(e.valuePos, e.path, "unsupported version %s; this Stagehand reads version: 1", n.Token.Value)
		return
	}
	cfg.Version = 1
}

// build returns a non-nil Build whenever the key is present, even when its
// content has errors, so that Check does not also call it missing.
func (w *walker) build(e entry) *bot.Build {
	b := &bot.Build{Timeout: bot.DefaultBuildTimeout}
	entries, ok := w.fields(e.path, e.valuePos, e.value, buildKeys)
	for _, f := range entries {
		switch f.key {
		case "run":
			b.Run, _ = w.nonEmptyStr(f, "the build command as a string, such as make dist")
		case "artifacts":
			globs, ok := w.stringList(f, "artifact globs such as dist/**", w.glob)
			if ok && len(globs) == 0 {
				w.errorf(f.valuePos, f.path, "list at least one glob of the files the build produces, such as [dist/**]")
			}
			b.Artifacts = globs
		case "timeout":
			if d, ok := w.duration(f); ok {
				b.Timeout = d
			}
		}
	}
	if ok {
		w.require(entries, e.keyPos, e.path, "run", "add run: with the command that builds the commit, such as make dist")
		w.require(entries, e.keyPos, e.path, "artifacts", "add artifacts: with globs of the files the build produces, such as [dist/**]")
	}
	return b
}

// glob accepts path.Match patterns relative to the checkout, where a whole
// segment may also be ** (any number of directories).
func (w *walker) glob(it item, g string) bool {
	bad := func(format string, args ...any) bool {
		w.errorf(it.pos, it.path, "invalid artifact glob %q: "+format, append([]any{g}, args...)...)
		return false
	}
	if strings.HasPrefix(g, "/") {
		return bad("globs are relative to the root of the checkout; remove the leading /")
	}
	segments := strings.Split(g, "/")
	for _, seg := range segments {
		if seg == ".." {
			return bad("artifacts must stay inside the checkout; remove the .. segments")
		}
	}
	if clean := path.Clean(g); clean != g || g == "." {
		if g == "." {
			return bad("write ** for every file of the checkout")
		}
		return bad("write it as %q", clean)
	}
	for _, seg := range segments {
		if seg == "**" {
			continue
		}
		if _, err := path.Match(seg, ""); err != nil {
			return bad("%v (see Go's path.Match for the syntax)", err)
		}
	}
	return true
}

func (w *walker) environments(cfg *bot.Config, e entry) {
	entries, _ := w.fields(e.path, e.valuePos, e.value, environmentKeys)
	for _, f := range entries {
		env := w.environment(f, bot.EnvironmentName(f.key))
		if f.key == string(bot.Stage) {
			cfg.Stage = env
		} else {
			cfg.Production = env
		}
	}
}

// environment returns a non-nil Environment whenever the key is present.
func (w *walker) environment(e entry, name bot.EnvironmentName) *bot.Environment {
	env := &bot.Environment{DeployTimeout: bot.DefaultDeployTimeout}
	entries, ok := w.fields(e.path, e.valuePos, e.value, envKeys)
	for _, f := range entries {
		switch f.key {
		case "deploy":
			env.Deploy, _ = w.nonEmptyStr(f, "the deploy command as a string, such as ./deploy.sh")
		case "deploy_timeout":
			if d, ok := w.duration(f); ok {
				env.DeployTimeout = d
			}
		case "url":
			env.URL, _ = w.url(f)
		case "variables":
			env.Variables = w.variables(f)
		case "secrets":
			env.Secrets, _ = w.stringList(f, "secret names such as DEPLOY_TOKEN", validSecretName(w))
		case "tests":
			env.Tests = w.tests(f)
		case "windows":
			env.Windows = w.windows(f)
		case "freezes":
			env.Freezes = w.freezes(f)
		case "approvers", "prevent_self_approval", "break_glass":
			w.productionPolicy(env, name, f)
		}
	}
	if ok {
		w.require(entries, e.keyPos, e.path, "deploy", "add deploy: with the command that deploys the artifacts, such as ./deploy.sh")
	}
	return env
}

func (w *walker) url(e entry) (string, bool) {
	s, ok := w.str(e, "an absolute http(s) URL")
	if !ok {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		w.errorf(e.valuePos, e.path, "expected an absolute http(s) URL such as https://stage.example.com, got %q", s)
		return "", false
	}
	return s, true
}

// variables reads a mapping of environment variable names to scalars.
// Numbers and booleans keep the text written in the file.
func (w *walker) variables(e entry) map[string]string {
	entries, _ := w.fields(e.path, e.valuePos, e.value, variableNames)
	if len(entries) == 0 {
		return nil
	}
	vars := map[string]string{}
	for _, f := range entries {
		// The same rule as /stagehand env set (SPEC §3): no name that
		// changes how the shell, the loader or git behaves.
		if err := bot.CheckVariableName(f.key); err != nil {
			w.errorf(f.keyPos, f.path, "%v", err)
			continue
		}
		switch v := f.value.(type) {
		case *ast.StringNode:
			vars[f.key] = v.Value
		case *ast.LiteralNode:
			vars[f.key] = v.Value.Value
		case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
			vars[f.key] = v.GetToken().Value
		case nil, *ast.NullNode:
			w.errorf(f.valuePos, f.path, `expected a string, number or boolean, got nothing; write %s: "" for an empty value`, f.key)
		default:
			w.errorf(f.valuePos, f.path, "expected a string, number or boolean, got %s", describe(v))
		}
	}
	return vars
}

func (w *walker) tests(e entry) []bot.Test {
	items, _ := w.list(e, "tests, each a mapping with name, run and timeout")
	var tests []bot.Test
	first := map[string]pos{} // test name -> position of its first definition
	for _, it := range items {
		t := bot.Test{Timeout: bot.DefaultTestTimeout}
		entries, ok := w.fields(it.path, it.pos, it.value, testKeys)
		if !ok {
			continue
		}
		for _, f := range entries {
			switch f.key {
			case "name":
				name, ok := w.nonEmptyStr(f, "a test name as a string")
				if !ok {
					continue
				}
				if w.distinctName(first, f, name, "test") {
					t.Name = name
				}
			case "run":
				t.Run, _ = w.nonEmptyStr(f, "the test command as a string, such as ./smoke.sh")
			case "timeout":
				if d, ok := w.duration(f); ok {
					t.Timeout = d
				}
			}
		}
		w.require(entries, it.pos, it.path, "name", "give the test a name, such as name: smoke")
		w.require(entries, it.pos, it.path, "run", "add run: with the test command, such as ./smoke.sh")
		tests = append(tests, t)
	}
	return tests
}

// validSecretName checks a declared secret's name: the same rule as for
// variables, since it becomes one in the step's environment.
func validSecretName(w *walker) func(item, string) bool {
	return func(it item, s string) bool {
		if err := bot.CheckVariableName(s); err != nil {
			w.errorf(it.pos, it.path, "%v", err)
			return false
		}
		return true
	}
}

func validLogin(w *walker) func(item, string) bool {
	return func(it item, s string) bool {
		switch {
		case strings.HasPrefix(s, "@"):
			w.errorf(it.pos, it.path, "write the login %q without the @", s[1:])
		case strings.Contains(s, "/"):
			w.errorf(it.pos, it.path, "%q looks like a team; put it under teams", s)
		case strings.ContainsAny(s, " \t\n"):
			w.errorf(it.pos, it.path, "%q is not a GitHub login: logins have no spaces", s)
		default:
			return true
		}
		return false
	}
}

func validTeam(w *walker) func(item, string) bool {
	return func(it item, s string) bool {
		org, slug, found := strings.Cut(s, "/")
		if !found || org == "" || slug == "" || strings.Contains(slug, "/") || strings.HasPrefix(org, "@") || strings.ContainsAny(s, " \t\n") {
			w.errorf(it.pos, it.path, "expected a team written org/team-slug, such as acme/release-managers, got %q", s)
			return false
		}
		return true
	}
}

func (w *walker) pipelines(cfg *bot.Config, e entry) {
	entries, _ := w.fields(e.path, e.valuePos, e.value, pipelineKinds)
	for _, f := range entries {
		kind := bot.PipelineKind(f.key)
		cfg.Pipelines[kind] = w.pipeline(f, kind)
	}
}

// pipeline applies the defaults of its kind. Settings that Check refuses
// (a trigger or branch on prod-only, approval or scheduled on stage-only) are
// kept as written so that Check reports them with its own explanation.
func (w *walker) pipeline(e entry, kind bot.PipelineKind) bot.PipelineConfig {
	pc := bot.PipelineConfig{Approval: kind != bot.StageOnly}
	if kind != bot.ProdOnly {
		pc.Trigger = bot.TriggerManual
	}
	entries, _ := w.fields(e.path, e.valuePos, e.value, pipelineKeys)
	for _, f := range entries {
		switch {
		case kind == bot.ProdOnly && f.key == "branch":
			pc.Branch = cmp.Or(scalarText(f.value), invalidValue)
		case kind == bot.ProdOnly && f.key == "trigger":
			pc.Trigger = bot.Trigger(cmp.Or(scalarText(f.value), invalidValue))
		case f.key == "branch":
			b, ok := w.branch(f)
			if !ok {
				b = invalidValue // reported; Check must not also call it missing
			}
			pc.Branch = b
		case f.key == "trigger":
			s, ok := w.str(f, "manual or on-git-changes")
			if !ok {
				continue
			}
			if t := bot.Trigger(s); t != bot.TriggerManual && t != bot.TriggerOnGitChanges {
				w.errorf(f.valuePos, f.path, "unknown trigger %q; use manual or on-git-changes", s)
				continue
			}
			pc.Trigger = bot.Trigger(s)
		case f.key == "approval":
			pc.Approval, _ = w.boolean(f)
		case f.key == "scheduled":
			pc.Scheduled, _ = w.boolean(f)
		}
	}
	return pc
}

func (w *walker) branch(e entry) (string, bool) {
	s, ok := w.nonEmptyStr(e, "a branch name such as main")
	if !ok {
		return "", false
	}
	if rest, found := strings.CutPrefix(s, "refs/heads/"); found {
		w.errorf(e.valuePos, e.path, "write the branch name without refs/heads/: %s", rest)
		return "", false
	}
	return s, true
}

// scalarText is the text of a scalar as written, or "" for anything else.
func scalarText(n ast.Node) string {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value
	case *ast.LiteralNode:
		return v.Value.Value
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return v.GetToken().Value
	}
	return ""
}

func (w *walker) commands(cfg *bot.Config, e entry) {
	entries, _ := w.fields(e.path, e.valuePos, e.value, commandKeys)
	for _, f := range entries {
		if f.key == "bare_aliases" {
			cfg.BareAliases, _ = w.boolean(f)
		}
	}
}

// distinctName records where name (of a what: "test", "target") is first
// defined in first, or reports f as a duplicate and returns false.
func (w *walker) distinctName(first map[string]pos, f entry, name, what string) bool {
	if p, dup := first[name]; dup {
		w.errorf(f.valuePos, f.path, "duplicate %s name %q (the first is at line %d); %s names must be unique", what, name, p.line, what)
		return false
	}
	first[name] = f.valuePos
	return true
}
