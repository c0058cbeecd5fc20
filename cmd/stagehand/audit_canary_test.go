package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/handlers/web"
)

const canaryConfig = `version: 1
build: {run: bash run.sh build, artifacts: [dist/**]}
environments:
  stage:
    deploy: bash run.sh deploy
    secrets: [DEPLOY_TOKEN]
  production:
    deploy: bash run.sh deploy
    secrets: [DEPLOY_TOKEN]
    approvers: {users: [bob]}
pipelines:
  stage-only: {branch: master, trigger: on-git-changes}
  prod-only: {approval: true}
`

// canaryScript builds one file and, deploying, uses the secret and the
// variable the way a real deploy would (and prints them: the log masks
// the secret; the audit trail must hold neither).
const canaryScript = `set -eu
case "$1" in
build) mkdir -p dist && echo app > dist/app.txt ;;
deploy) echo "deploying with token $DEPLOY_TOKEN and $CANARY" ;;
esac
`

// commentOn is issue_comment.created on owner/repo's issue #1 by user, as
// GitHub sends it (the payload's repository is Codertocat/Hello-World's),
// for a comment the stand-in now holds.
func commentOn(t testing.TB, gh *githubtest.Server, owner, repo, user, body string) map[string]any {
	t.Helper()
	p := replPayload(t, "issue_comment/created.with-installation.json")
	c := p["comment"].(map[string]any)
	c["body"], c["id"], c["created_at"] = body, gh.AddComment(owner, repo, 1, user, body), time.Now().UTC().Format(time.RFC3339)
	c["user"].(map[string]any)["login"] = user
	p["sender"].(map[string]any)["login"] = user
	return p
}

// commentPayload is commentOn Codertocat/Hello-World, encoded.
func commentPayload(t *testing.T, gh *githubtest.Server, user, body string) []byte {
	t.Helper()
	return mustJSON(t, commentOn(t, gh, "Codertocat", "Hello-World", user, body))
}

// TestAuditCanaryEndToEnd: the real server (serve, --secrets-dir,
// --dashboard public) gets a canary secret from its secrets directory and
// canary variable values through signed webhooks (set, refused, mistyped,
// and a value given to the secret's name); a push builds and deploys with
// both. Neither value appears in GET /api/v1/audit, on the program's audit
// page, or in `stagehand audit export` in either format, run on the data
// directory while the server runs; all three show the same records, and
// name the variable.
func TestAuditCanaryEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the server and a pipeline; skipped with -short")
	}
	const secret, variable = "sk_canary_secret_e2e_7c1d", "canary-variable-value-e2e-3f9a"
	h := newHarness(t)
	sha := h.localRepo(t, map[string]string{".github/stagehand.yml": canaryConfig, "run.sh": canaryScript})
	h.gh.SetFile("Codertocat", "Hello-World", "master", ".github/stagehand.yml", []byte(canaryConfig))
	h.gh.SetPermission("Codertocat", "Hello-World", "alice", "write")
	h.gh.SetPermission("Codertocat", "Hello-World", "mallory", "write")
	h.gh.SetPermission("Codertocat", "Hello-World", "bob", "admin")
	secrets := t.TempDir()
	for _, env := range []string{"stage", "production"} {
		p := filepath.Join(secrets, "Codertocat", "Hello-World", env, "DEPLOY_TOKEN")
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h.startServe(t, "--dashboard", "public", "--secrets-dir", secrets)

	deliver := func(guid, event string, body []byte) {
		t.Helper()
		if code := h.send(t, event, guid, body); code != http.StatusAccepted {
			t.Fatalf("%s %s answered %d", event, guid, code)
		}
		waitFor(t, 60*time.Second, "delivery "+guid+" to be processed", func() bool { return h.processed(t, guid) })
	}
	comments := []struct{ user, body string }{
		{"alice", "/stagehand env set stage CANARY=" + variable},
		{"mallory", "/stagehand env set production CANARY=" + variable},              // not an approver
		{"bob", "/stagehand env set production CANARY=" + variable + " extra words"}, // mistyped
		{"bob", "/stagehand env set nowhere CANARY=" + variable},                     // no such environment
		{"alice", "/stagehand env set stage DEPLOY_TOKEN=" + secret},                 // a value under the secret's name
	}
	for i, c := range comments {
		deliver(fmt.Sprintf("canary-comment-%d", i), "issue_comment", commentPayload(t, h.gh, c.user, c.body))
	}
	deliver("canary-push", "push", pushPayloadFor(t, sha))
	if ex := h.waitExecution(t, 1, bot.ExecutionSucceeded); ex.Pipeline != bot.StageOnly {
		t.Fatalf("#1 is %s", ex.Pipeline)
	}

	leaks := func(what, text string) {
		t.Helper()
		for _, v := range []string{secret, variable} {
			if strings.Contains(text, v) {
				t.Errorf("%s shows a canary value (%q):\n%s", what, v, text)
			}
		}
		if !strings.Contains(text, "stage/CANARY") {
			t.Errorf("%s does not name the variable stage/CANARY:\n%s", what, text)
		}
	}

	// The API, every record in one page.
	status, body := h.get("/api/v1/audit?limit=1000")
	if status != http.StatusOK {
		t.Fatalf("GET /api/v1/audit: %d\n%s", status, body)
	}
	leaks("GET /api/v1/audit", body)
	var api web.APIAudit
	if err := json.Unmarshal([]byte(body), &api); err != nil {
		t.Fatal(err)
	}
	var fromAPI []string // "id actor action outcome", oldest first
	var refusedByMallory, setByAlice bool
	for i := len(api.Records) - 1; i >= 0; i-- {
		r := api.Records[i]
		fromAPI = append(fromAPI, fmt.Sprintf("%d %s %s %s", r.ID, r.Actor, r.Action, r.Outcome))
		refusedByMallory = refusedByMallory || (r.Actor == "mallory" && r.Action == "env" && r.Outcome == "refused" && r.Code == string(bot.RefusalNotApprover) && r.Delivery == "canary-comment-1")
		setByAlice = setByAlice || (r.Actor == "alice" && r.Action == string(bot.AuditVariableSet) && r.Outcome == "done" && r.Detail == "stage/CANARY" && r.Delivery == "canary-comment-0")
	}
	if !refusedByMallory || !setByAlice {
		t.Errorf("the API's records lack mallory's refusal (%v) or alice's variable-set (%v):\n%s", refusedByMallory, setByAlice, body)
	}

	// The program's audit page on the dashboard.
	status, page := h.get("/programs/Codertocat/Hello-World/audit")
	if status != http.StatusOK {
		t.Fatalf("the audit page: %d\n%s", status, page)
	}
	leaks("the program's audit page", page)

	// The compliance export, on the data directory the server is using.
	jsonl := exportAudit(t, nil, "--since", "2000-01-01", "--format", "jsonl", "--data-dir", h.dataDir)
	leaks("audit export --format jsonl", jsonl)
	var fromJSONL []string
	dec := json.NewDecoder(strings.NewReader(jsonl))
	for dec.More() {
		var r struct {
			ID                             int64
			Actor, Action, Outcome, Detail string
		}
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		fromJSONL = append(fromJSONL, fmt.Sprintf("%d %s %s %s", r.ID, r.Actor, r.Action, r.Outcome))
	}
	csvOut := exportAudit(t, map[string]string{"STAGEHAND_DATA_DIR": h.dataDir}, "--since", "2000-01-01", "--format", "csv")
	leaks("audit export --format csv", csvOut)
	rows, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("the csv export: %v", err)
	}
	var fromCSV []string
	for _, row := range rows[1:] {
		fromCSV = append(fromCSV, strings.Join([]string{row[0], row[2], row[3], row[4]}, " "))
	}
	for name, got := range map[string][]string{"jsonl": fromJSONL, "csv": fromCSV} {
		if strings.Join(got, "\n") != strings.Join(fromAPI, "\n") {
			t.Errorf("the %s export's records:\n%s\nwant the API's:\n%s", name, strings.Join(got, "\n"), strings.Join(fromAPI, "\n"))
		}
	}
	if len(fromAPI) < len(comments)+2 {
		t.Errorf("the trail has %d records, want at least the %d comments' and the push's:\n%s", len(fromAPI), len(comments), strings.Join(fromAPI, "\n"))
	}
}
