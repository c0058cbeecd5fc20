package chartcheck

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Test values. The key is a placeholder shaped like a PEM file: the chart
// checks the shape, Stagehand reads the key.
const (
	testPEM           = "-----BEGIN RSA PRIVATE KEY-----\nchartcheck-not-a-real-key\n-----END RSA PRIVATE KEY-----\n"
	testWebhookSecret = "chartcheck-webhook-secret-6f1d"
	testAppID         = "12345"
)

// inlineGitHub returns the flags that give the chart the GitHub App
// without an existing Secret.
func inlineGitHub(t *testing.T) []string {
	t.Helper()
	pem := filepath.Join(plainTempDir(t), "app.pem")
	if err := os.WriteFile(pem, []byte(testPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--set", "github.appId=" + testAppID, "--set-file", "github.privateKey=" + pem, "--set", "github.webhookSecret=" + testWebhookSecret}
}

// valuesFile writes a values file and returns the flags that use it.
func valuesFile(t *testing.T, content string) []string {
	t.Helper()
	p := filepath.Join(plainTempDir(t), "values.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"-f", p}
}

// plainTempDir is a temporary folder whose path has no comma: helm splits
// the paths of -f and --set-file at commas, and t.TempDir names folders
// after the test.
func plainTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "chartcheck-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// want is what one render must hold.
type want struct {
	replicas       int32
	scaleOut       bool   // RollingUpdate and an emptyDir data dir; else Recreate
	dataClaim      string // claim of the data volume; "" for an emptyDir
	chartPVC       bool   // the chart renders the data claim
	pdbMin         string // PodDisruptionBudget minAvailable ("" none)
	pdbMaxUnavail  string // PodDisruptionBudget maxUnavailable ("" none)
	githubSecret   string // Secret with the private key and the webhook secret
	chartSecret    bool   // the chart renders a Secret
	databaseSecret string // "name/key" of STAGEHAND_DATABASE_URL ("" unset)
	natsURL        string // STAGEHAND_NATS_URL ("" unset)
	natsSecret     string // "name/key" of STAGEHAND_NATS_URL from a Secret
	publicURL      string // STAGEHAND_PUBLIC_URL ("" unset)
	ingress        bool
	artifactsClaim string
	antiAffinity   string // "", "preferred" or "required"
	appID          string // STAGEHAND_GITHUB_APP_ID; "" for testAppID
	workerNATS     string // the worker Deployment's STAGEHAND_NATS_URL Secret "name/key"; "" no worker
	networkPolicy  bool   // a NetworkPolicy for each role
}

func TestRender(t *testing.T) {
	scaleOut := []string{"-f", filepath.Join(chartDir, "values-scaleout.yaml"), "--set", "github.appId=" + testAppID}
	cases := []struct {
		name string
		args func(t *testing.T) []string
		want want
	}{
		{
			name: "default values (embedded)",
			args: inlineGitHub,
			want: want{replicas: 1, dataClaim: "stagehand-data", chartPVC: true, githubSecret: "stagehand", chartSecret: true},
		},
		{
			name: "values-scaleout.yaml",
			args: func(t *testing.T) []string { return scaleOut },
			want: want{
				replicas: 3, scaleOut: true, pdbMin: "2", githubSecret: "stagehand-github",
				databaseSecret: "stagehand-database/database-url", natsURL: "nats://nats.nats.svc.cluster.local:4222",
				publicURL: "https://stagehand.example.com", ingress: true, artifactsClaim: "stagehand-artifacts",
				antiAffinity: "preferred", workerNATS: "stagehand-worker-nats/nats-url", networkPolicy: true,
			},
		},
		{
			name: "embedded with an existing Secret, an ingress and the App ID in a values file",
			args: func(t *testing.T) []string {
				// A number in a values file arrives as a float64: 1234567 must
				// not become 1.234567e+06.
				return valuesFile(t, "github:\n  appId: 1234567\n  existingSecret: gh-app\ningress:\n  enabled: true\n  hosts:\n    - host: ci.example.org\n")
			},
			want: want{replicas: 1, dataClaim: "stagehand-data", chartPVC: true, githubSecret: "gh-app", publicURL: "http://ci.example.org", ingress: true, appID: "1234567"},
		},
		{
			name: "scale-out with URLs in values and the default PodDisruptionBudget",
			args: func(t *testing.T) []string {
				return append(inlineGitHub(t), "--set", "replicaCount=2", "--set", "database.url=postgres://stagehand:pw@db:5432/stagehand",
					"--set", "nats.url=nats://nats:4222", "--set", "podAntiAffinity=hard", "--set", "publicUrl=https://ci.example.org/")
			},
			want: want{
				replicas: 2, scaleOut: true, pdbMaxUnavail: "1", githubSecret: "stagehand", chartSecret: true,
				databaseSecret: "stagehand/database-url", natsURL: "nats://nats:4222", publicURL: "https://ci.example.org/", antiAffinity: "required",
			},
		},
		{
			name: "scale-out values with one replica",
			args: func(t *testing.T) []string { return append(slices.Clone(scaleOut), "--set", "replicaCount=1") },
			want: want{
				replicas: 1, scaleOut: true, githubSecret: "stagehand-github",
				databaseSecret: "stagehand-database/database-url", natsURL: "nats://nats.nats.svc.cluster.local:4222",
				publicURL: "https://stagehand.example.com", ingress: true, artifactsClaim: "stagehand-artifacts", antiAffinity: "preferred",
				workerNATS: "stagehand-worker-nats/nats-url", networkPolicy: true,
			},
		},
		{
			name: "scale-out with both URLs from Secrets",
			args: func(t *testing.T) []string {
				return []string{"--set", "github.appId=" + testAppID, "--set", "github.existingSecret=gh", "--set", "replicaCount=4",
					"--set", "database.existingSecret=db", "--set", "nats.existingSecret=nats", "--set", "nats.existingSecretKey=url",
					"--set", "podDisruptionBudget.minAvailable=50%"}
			},
			want: want{
				replicas: 4, scaleOut: true, pdbMin: "50%", githubSecret: "gh",
				databaseSecret: "db/database-url", natsSecret: "nats/url",
			},
		},
		{
			name: "scale-out with inline secrets, workers and NetworkPolicies",
			args: func(t *testing.T) []string {
				return append(inlineGitHub(t), "--set", "replicaCount=2", "--set", "database.url=postgres://stagehand:pw@db:5432/stagehand",
					"--set", "nats.url=nats://nats:4222", "--set", "worker.enabled=true", "--set", "worker.nats.existingSecret=wn",
					"--set", "networkPolicy.enabled=true")
			},
			want: want{
				replicas: 2, scaleOut: true, pdbMaxUnavail: "1", githubSecret: "stagehand", chartSecret: true,
				databaseSecret: "stagehand/database-url", natsURL: "nats://nats:4222", workerNATS: "wn/nats-url", networkPolicy: true,
			},
		},
		{
			name: "embedded without persistence",
			args: func(t *testing.T) []string { return append(inlineGitHub(t), "--set", "persistence.enabled=false") },
			want: want{replicas: 1, githubSecret: "stagehand", chartSecret: true},
		},
		{
			name: "embedded with an existing claim",
			args: func(t *testing.T) []string {
				return append(inlineGitHub(t), "--set", "persistence.existingClaim=stagehand-old")
			},
			want: want{replicas: 1, dataClaim: "stagehand-old", githubSecret: "stagehand", chartSecret: true},
		},
		{
			name: "embedded broker with an external database keeps one replica and the claim",
			args: func(t *testing.T) []string {
				return append(inlineGitHub(t), "--set", "database.existingSecret=db", "--set", "database.existingSecretKey=url")
			},
			want: want{replicas: 1, dataClaim: "stagehand-data", chartPVC: true, githubSecret: "stagehand", chartSecret: true, databaseSecret: "db/url"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			out, err := template(t, chartDir, c.args(t)...)
			if err != nil {
				t.Fatal(err)
			}
			objs := decodeAll(t, out)
			checkRelease(t, objs, c.want)
			checkNoSecretOutsideSecrets(t, out)
		})
	}
}

// TestRefusals: values the chart must refuse, with a message that says what
// to do.
func TestRefusals(t *testing.T) {
	cases := []struct {
		name string
		args func(t *testing.T) []string
		msg  []string // all in helm's error
	}{
		{
			name: "several replicas without a database or NATS",
			args: func(t *testing.T) []string { return append(inlineGitHub(t), "--set", "replicaCount=3") },
			msg:  []string{"replicaCount=3 needs a shared database and an external NATS", "database.url", "nats.url", "exactly 1 replica", "values-scaleout.yaml"},
		},
		{
			name: "several replicas with a database but no NATS",
			args: func(t *testing.T) []string {
				return append(inlineGitHub(t), "--set", "replicaCount=2", "--set", "database.url=postgres://db/stagehand")
			},
			msg: []string{"replicaCount=2", "nats.url (or nats.existingSecret) for an external NATS JetStream is not set"},
		},
		{
			name: "several replicas with NATS but no database",
			args: func(t *testing.T) []string {
				return append(inlineGitHub(t), "--set", "replicaCount=2", "--set", "nats.url=nats://nats:4222")
			},
			msg: []string{"replicaCount=2", "database.url (or database.existingSecret) for a shared PostgreSQL is not set"},
		},
		{
			name: "scale-out values without their URLs",
			args: func(t *testing.T) []string {
				return []string{"-f", filepath.Join(chartDir, "values-scaleout.yaml"), "--set", "github.appId=1", "--set", "database.existingSecret=", "--set", "nats.url="}
			},
			msg: []string{"replicaCount=3 needs a shared database and an external NATS"},
		},
		{
			name: "workers without the scale-out mode",
			args: func(t *testing.T) []string {
				return append(inlineGitHub(t), "--set", "worker.enabled=true", "--set", "worker.nats.existingSecret=wn")
			},
			msg: []string{"worker.enabled needs the scale-out mode"},
		},
		{
			name: "workers without a NATS user of their own",
			args: func(t *testing.T) []string {
				return []string{"-f", filepath.Join(chartDir, "values-scaleout.yaml"), "--set", "github.appId=1", "--set", "worker.nats.existingSecret="}
			},
			msg: []string{"worker.enabled needs the worker's own NATS connection", "worker.nats.existingSecret"},
		},
		{
			name: "no App ID",
			args: func(t *testing.T) []string { return []string{"--set", "github.existingSecret=gh"} },
			msg:  []string{"github.appId is required"},
		},
		{
			name: "no private key",
			args: func(t *testing.T) []string {
				return []string{"--set", "github.appId=1", "--set", "github.webhookSecret=x"}
			},
			msg: []string{"private key is missing", "github.existingSecret"},
		},
		{
			name: "a private key that is not PEM",
			args: func(t *testing.T) []string {
				return []string{"--set", "github.appId=1", "--set", "github.privateKey=abc", "--set", "github.webhookSecret=x"}
			},
			msg: []string{"not a PEM private key"},
		},
		{
			name: "no webhook secret",
			args: func(t *testing.T) []string {
				return append(inlineGitHub(t), "--set", "github.webhookSecret=")
			},
			msg: []string{"webhook secret is missing"},
		},
		{
			name: "a database URL and a database Secret",
			args: func(t *testing.T) []string {
				return append(inlineGitHub(t), "--set", "database.url=postgres://db/s", "--set", "database.existingSecret=db")
			},
			msg: []string{"database.url or database.existingSecret, not both"},
		},
		{
			name: "an embedded claim in the scale-out mode",
			args: func(t *testing.T) []string {
				return []string{"-f", filepath.Join(chartDir, "values-scaleout.yaml"), "--set", "github.appId=1", "--set", "persistence.existingClaim=old"}
			},
			msg: []string{"persistence.existingClaim is for the embedded mode"},
		},
		{
			name: "schema: unknown value",
			args: func(t *testing.T) []string { return append(inlineGitHub(t), "--set", "replicas=2") },
			msg:  []string{"additional properties 'replicas' not allowed"},
		},
		{
			name: "schema: log format",
			args: func(t *testing.T) []string { return append(inlineGitHub(t), "--set", "log.format=xml") },
			msg:  []string{"/log/format"},
		},
		{
			name: "schema: NATS URL scheme",
			args: func(t *testing.T) []string { return append(inlineGitHub(t), "--set", "nats.url=http://nats:4222") },
			msg:  []string{"/nats/url"},
		},
		{
			name: "schema: App ID",
			args: func(t *testing.T) []string {
				return []string{"--set", "github.appId=my-app", "--set", "github.existingSecret=gh"}
			},
			msg: []string{"/github/appId"},
		},
		{
			name: "schema: root filesystem cannot be made writable by privilege",
			args: func(t *testing.T) []string {
				return append(inlineGitHub(t), "--set", "securityContext.allowPrivilegeEscalation=true")
			},
			msg: []string{"/securityContext/allowPrivilegeEscalation"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			out, err := template(t, chartDir, c.args(t)...)
			if err == nil {
				t.Fatalf("helm template succeeded; want it to fail with %q. It rendered:\n%s", c.msg, out)
			}
			for _, m := range c.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("helm's error does not say %q:\n%v", m, err)
				}
			}
		})
	}
}

// TestLint runs helm lint --strict with the default and the scale-out values.
func TestLint(t *testing.T) {
	for name, args := range map[string]func(t *testing.T) []string{
		"default": inlineGitHub,
		"scaleout": func(t *testing.T) []string {
			return []string{"-f", filepath.Join(chartDir, "values-scaleout.yaml"), "--set", "github.appId=" + testAppID}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if out, err := runHelm(t, append([]string{"lint", chartDir, "--strict"}, args(t)...)...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

// TestNotes renders NOTES.txt (helm template leaves it out) through a copy
// of the chart in which a ConfigMap holds it.
func TestNotes(t *testing.T) {
	dir := copyChart(t)
	notes, err := os.ReadFile(filepath.Join(dir, "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "chartcheck-notes"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "chartcheck-notes", "NOTES.txt"), notes, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "templates", "NOTES.txt")); err != nil {
		t.Fatal(err)
	}
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: chartcheck-notes\ndata:\n  NOTES.txt: {{ tpl (.Files.Get \"chartcheck-notes/NOTES.txt\") . | quote }}\n"
	if err := os.WriteFile(filepath.Join(dir, "templates", "zz-chartcheck-notes.yaml"), []byte(cm), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		args      func(t *testing.T) []string
		want, not []string
	}{
		{
			name: "default",
			args: inlineGitHub,
			want: []string{"Mode: embedded, 1 replica", "claim stagehand-data", "WARNING: publicUrl is not set", "key webhook-secret in the Secret stagehand.", "/readyz"},
			not:  []string{"<no value>"},
		},
		{
			name: "scaleout",
			args: func(t *testing.T) []string {
				return []string{"-f", filepath.Join(dir, "values-scaleout.yaml"), "--set", "github.appId=" + testAppID}
			},
			want: []string{"Mode: scale-out, 3 replica(s)", "Webhook URL: https://stagehand.example.com/webhooks", "shared claim stagehand-artifacts", "Secret stagehand-github"},
			not:  []string{"<no value>", "WARNING"},
		},
		{
			name: "scaleout without shared artifacts",
			args: func(t *testing.T) []string {
				return []string{"-f", filepath.Join(dir, "values-scaleout.yaml"), "--set", "github.appId=" + testAppID, "--set", "artifacts.existingClaim="}
			},
			want: []string{"WARNING: artifacts.existingClaim is not set"},
		},
		{
			name: "no persistence",
			args: func(t *testing.T) []string { return append(inlineGitHub(t), "--set", "persistence.enabled=false") },
			want: []string{"on an emptyDir", "WARNING: persistence.enabled=false"},
		},
		{
			name: "no sign-in",
			args: inlineGitHub,
			want: []string{"not served: set dashboard.clientId and dashboard.clientSecret", "GET /metrics on port 9090, which the ingress"},
		},
		{
			name: "the dashboard behind the ingress",
			args: func(t *testing.T) []string {
				return append(inlineGitHub(t), "--set", "ingress.enabled=true", "--set", "ingress.hosts[0].host=ci.example.org",
					"--set", "dashboard.enabled=true", "--set", "dashboard.clientId=Iv23li", "--set", "dashboard.clientSecret=x")
			},
			want: []string{"set the Callback URL to http://ci.example.org/auth/callback", `"Request user authorization (OAuth) during installation" off`,
				"The ingress serves it at http://ci.example.org/."},
			not: []string{"<no value>"},
		},
		{
			name: "sign-in without exposing the dashboard",
			args: func(t *testing.T) []string {
				return append(inlineGitHub(t), "--set", "dashboard.clientId=Iv23li", "--set", "dashboard.clientSecret=x")
			},
			want: []string{"<public URL>/auth/callback (set publicUrl)", "The ingress exposes /webhooks only"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := template(t, dir, append(c.args(t), "--show-only", "templates/zz-chartcheck-notes.yaml")...)
			if err != nil {
				t.Fatal(err)
			}
			objs := decodeAll(t, out)
			text := objs[0].obj.(*corev1.ConfigMap).Data["NOTES.txt"]
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("NOTES.txt does not say %q:\n%s", w, text)
				}
			}
			for _, n := range c.not {
				if strings.Contains(text, n) {
					t.Errorf("NOTES.txt says %q:\n%s", n, text)
				}
			}
		})
	}
}

// copyChart copies the chart, without chartcheck, to a temporary folder.
func copyChart(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "stagehand")
	err := filepath.WalkDir(chartDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(chartDir, p)
		if err != nil {
			return err
		}
		if d.IsDir() && rel == "chartcheck" {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
