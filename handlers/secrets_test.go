package handlers

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/handlers/web"
	"github.com/stagehand-dev/stagehand/handlers/worker"
)

// TestSecretsDir: values come from <dir>/<owner>/<repo>/<environment>/<NAME>;
// a missing one names the secret and the file looked for; names that
// could leave the directory are refused.
func TestSecretsDir(t *testing.T) {
	dir := t.TempDir()
	prog := bot.Program{Owner: "acme", Repo: "app"}
	write := func(env, name, value string) {
		p := filepath.Join(dir, "acme", "app", env, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(value), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("production", "DEPLOY_TOKEN", "t0ken\n")
	write("production", "KUBECONFIG", "line1\nline2")
	write("stage", "DEPLOY_TOKEN", "stage-token")
	s := worker.SecretsDir{Dir: dir}

	got, err := s.Secrets(prog, bot.Production, []string{"DEPLOY_TOKEN", "KUBECONFIG"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"DEPLOY_TOKEN": "t0ken", "KUBECONFIG": "line1\nline2"}, got); diff != "" {
		t.Errorf("production secrets (-want +got):\n%s", diff)
	}
	_, err = s.Secrets(prog, bot.Stage, []string{"DEPLOY_TOKEN", "KUBECONFIG"})
	if !errors.Is(err, worker.ErrSecretMissing) || !strings.Contains(err.Error(), "KUBECONFIG") || !strings.Contains(err.Error(), filepath.Join(dir, "acme", "app", "stage", "KUBECONFIG")) {
		t.Errorf("a missing stage secret: %v", err)
	}
	if diff := cmp.Diff(map[string]string{"DEPLOY_TOKEN": "set", "KUBECONFIG": "missing"}, s.Status(prog, bot.Stage, []string{"DEPLOY_TOKEN", "KUBECONFIG"})); diff != "" {
		t.Errorf("Status (-want +got):\n%s", diff)
	}
	for _, bad := range []struct {
		prog bot.Program
		name string
	}{
		{bot.Program{Owner: "..", Repo: "app"}, "DEPLOY_TOKEN"},
		{bot.Program{Owner: "acme", Repo: "a/b"}, "DEPLOY_TOKEN"},
		{prog, "../../etc/passwd"},
		{prog, "lower"},
	} {
		if _, err := s.Secret(bad.prog, bot.Production, bad.name); err == nil || errors.Is(err, worker.ErrSecretMissing) {
			t.Errorf("Secret(%s, %q) = %v, want a refusal", bad.prog.FullName(), bad.name, err)
		}
	}
	if _, err := (worker.SecretsDir{}).Secret(prog, bot.Production, "DEPLOY_TOKEN"); !errors.Is(err, worker.ErrSecretMissing) || !strings.Contains(err.Error(), "--secrets-dir") {
		t.Errorf("without a secrets directory: %v", err)
	}
}

// TestEnvListShowsSecretNamesOnly: /stagehand env list shows declared
// secrets as names with set or missing, never their values.
func TestEnvListShowsSecretNamesOnly(t *testing.T) {
	cfg := strings.Replace(sampleConfig(splitPipelines), "    variables: {LOG_LEVEL: info}\n", "    variables: {LOG_LEVEL: info}\n    secrets: [DEPLOY_TOKEN, NOT_THERE]\n", 1)
	e := newSurfaceEnv(t, cfg)
	dir := t.TempDir()
	p := filepath.Join(dir, owner, repo, "production", "DEPLOY_TOKEN")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("s3cr3t-deploy-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.engine.Secrets = worker.SecretsDir{Dir: dir}
	e.push()
	reply := e.comment("alice", "/stagehand env list production").Body
	for _, want := range []string{"| `LOG_LEVEL` | `info` |", "| `DEPLOY_TOKEN` | set |", "| `NOT_THERE` | missing |"} {
		if !strings.Contains(reply, want) {
			t.Errorf("env list lacks %q:\n%s", want, reply)
		}
	}
	if strings.Contains(reply, "s3cr3t") {
		t.Errorf("env list shows a secret's value:\n%s", reply)
	}
}

const secretDeploy = `set -eu
echo "token=$DEPLOY_TOKEN"
printf '%s' "${DEPLOY_TOKEN:0:6}"; sleep 0.2; printf '%s\n' "${DEPLOY_TOKEN:6}"
printf '%s' "$DEPLOY_TOKEN" | base64
printf '%s' "$DEPLOY_TOKEN" > RECORD/got-secret
printf '%s' "$STAGEHAND_ENVIRONMENT" >> RECORD/got-secret-env
`

// TestDeployGetsItsSecretMasked: a deploy gets its environment's declared
// secret as a variable; the value never appears in the log file, the log
// tail or the check run, although the script prints it whole, in two
// writes and in base64. A build gets no secret.
func TestDeployGetsItsSecretMasked(t *testing.T) {
	const value = "sk_live_0123456789abcdef"
	cfg := strings.Replace(sampleConfig("  stage-only: {branch: main, trigger: on-git-changes}\n"),
		"    deploy: bash deploy.sh\n    variables: {LOG_LEVEL: debug}\n",
		"    deploy: bash deploy-secret.sh\n    variables: {LOG_LEVEL: debug}\n    secrets: [DEPLOY_TOKEN]\n", 1)
	e := newSurfaceEnv(t, cfg)
	e.repo.commit("the secret deploy", map[string]string{"deploy-secret.sh": strings.ReplaceAll(secretDeploy, "RECORD", e.repo.record)})
	dir := t.TempDir()
	p := filepath.Join(dir, owner, repo, "stage", "DEPLOY_TOKEN")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.worker.Secrets = worker.SecretsDir{Dir: dir}
	e.push()
	e.waitReported(1, bot.ExecutionSucceeded)
	if got := e.repo.readRecord("got-secret"); got != value {
		t.Errorf("the deploy got DEPLOY_TOKEN=%q, want %q", got, value)
	}
	ex, steps := e.execution(1)
	logData, err := os.ReadFile(worker.LogFiles{DataDir: e.dataDir}.File(ex.ID, bot.StepDeployStage))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logData), "token=***") {
		t.Errorf("the deploy log does not show the masked value:\n%s", logData)
	}
	where := map[string]string{"log file": string(logData)}
	for _, s := range steps {
		where["log tail of "+string(s.Name)] = s.LogTail + s.Message
	}
	for _, cr := range e.gh.CheckRuns(owner, repo) {
		where[fmt.Sprintf("check run %d", cr.ID)] = cr.Output.Title + cr.Output.Summary + cr.Output.Text
	}
	for name, text := range where {
		for _, leak := range []string{value, value[:6] + value[6:], base64.StdEncoding.EncodeToString([]byte(value))} {
			if strings.Contains(text, leak) {
				t.Errorf("%s shows the secret (%q):\n%s", name, leak, text)
			}
		}
	}
	// The whole value in one line of the log, although printed in two writes.
	if !strings.Contains(string(logData), "\n***\n") {
		t.Errorf("the value printed in two writes is not masked whole:\n%s", logData)
	}

	// The dashboard and the API: the execution, its log, the environments;
	// the secret by name, never by value.
	d := &web.Dashboard{Public: true, Store: e.store, Logs: worker.LogFiles{DataDir: e.dataDir}, Logger: slog.New(slog.DiscardHandler),
		Secrets: worker.DeclaredSecrets{Policy: e.hooks.Policies, Source: worker.SecretsDir{Dir: dir}}.Status}
	mux := http.NewServeMux()
	d.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	prog := "/programs/" + owner + "/" + repo
	pages := map[string]string{}
	for _, path := range []string{prog + "/executions/1", prog + "/executions/1/logs/deploy-stage", prog + "/environments",
		"/api/v1" + prog, "/api/v1" + prog + "/executions/1", "/api/v1" + prog + "/executions"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		pages[path] = string(body)
		for _, leak := range []string{value, base64.StdEncoding.EncodeToString([]byte(value))} {
			if strings.Contains(string(body), leak) {
				t.Errorf("GET %s shows the secret:\n%s", path, body)
			}
		}
	}
	if !strings.Contains(pages[prog+"/executions/1/logs/deploy-stage"], "token=***") {
		t.Errorf("the log download does not show the masked line:\n%s", pages[prog+"/executions/1/logs/deploy-stage"])
	}
	var api struct {
		Environments []struct {
			Name    string          `json:"name"`
			Secrets []web.APISecret `json:"secrets"`
		} `json:"environments"`
	}
	if err := json.Unmarshal([]byte(pages["/api/v1"+prog]), &api); err != nil || len(api.Environments) == 0 ||
		!cmp.Equal(api.Environments[0].Secrets, []web.APISecret{{Name: "DEPLOY_TOKEN", Status: "set"}}) {
		t.Errorf("the API does not list the declared secret by name:\n%s", pages["/api/v1"+prog])
	}
	if !strings.Contains(pages[prog+"/environments"], "DEPLOY_TOKEN") {
		t.Errorf("the environments page does not list the declared secret:\n%s", pages[prog+"/environments"])
	}
}

// TestMissingSecretFailsBeforeTheCommand: a declared secret without a value
// fails the step before its command runs, naming the secret and the file
// looked for.
func TestMissingSecretFailsBeforeTheCommand(t *testing.T) {
	cfg := strings.Replace(sampleConfig("  stage-only: {branch: main, trigger: on-git-changes}\n"),
		"    variables: {LOG_LEVEL: debug}\n", "    variables: {LOG_LEVEL: debug}\n    secrets: [NOT_SET]\n", 1)
	e := newSurfaceEnv(t, cfg)
	dir := t.TempDir()
	e.worker.Secrets = worker.SecretsDir{Dir: dir}
	e.push()
	e.waitState(1, bot.ExecutionFailed)
	_, steps := e.execution(1)
	var deploy bot.Step
	for _, s := range steps {
		if s.Name == bot.StepDeployStage {
			deploy = s
		}
	}
	want := filepath.Join(dir, owner, repo, "stage", "NOT_SET")
	if deploy.State != bot.StepFailed || !strings.Contains(deploy.Message, "NOT_SET") || !strings.Contains(deploy.Message, want) {
		t.Errorf("deploy-stage is %s: %q; want failed, naming NOT_SET and %s", deploy.State, deploy.Message, want)
	}
	if got := e.repo.lines("deploys.log"); len(got) != 0 {
		t.Errorf("the deploy ran: %q", got)
	}
}
