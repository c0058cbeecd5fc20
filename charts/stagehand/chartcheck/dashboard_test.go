package chartcheck

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestIngressPaths: the ingress exposes GitHub's deliveries (/webhooks,
// Exact) and nothing else, unless the dashboard is turned on, which needs
// sign-in with GitHub; then / too. /metrics has a port of its own. The
// dashboard's client secret and session key reach the pod as read-only
// files from a Secret, never in the environment.
func TestIngressPaths(t *testing.T) {
	ingress := []string{"--set", "ingress.enabled=true", "--set", "ingress.hosts[0].host=ci.example.org"}
	signIn := []string{"--set", "dashboard.clientId=Iv23liChartcheck", "--set", "dashboard.clientSecret=chartcheck-client-secret"}
	cases := []struct {
		name       string
		args       func(t *testing.T) []string
		paths      []string // "path pathType" of the ingress; nil: no ingress
		dashSecret string   // the Secret of the dashboard's files; "" no sign-in
		sessionKey string   // the chart's Secret's session key; "" any random one of 64
	}{
		{
			name:  "the ingress without the dashboard",
			args:  func(t *testing.T) []string { return append(inlineGitHub(t), ingress...) },
			paths: []string{"/webhooks Exact"},
		},
		{
			name: "sign-in configured, the dashboard not exposed",
			args: func(t *testing.T) []string {
				return slices.Concat(inlineGitHub(t), ingress, signIn)
			},
			paths: []string{"/webhooks Exact"}, dashSecret: "stagehand",
		},
		{
			name: "the dashboard exposed, with a session key given",
			args: func(t *testing.T) []string {
				return slices.Concat(inlineGitHub(t), ingress, signIn, []string{"--set", "dashboard.enabled=true",
					"--set", "dashboard.sessionKey=0123456789abcdef0123456789abcdef"})
			},
			paths: []string{"/webhooks Exact", "/ Prefix"}, dashSecret: "stagehand", sessionKey: "0123456789abcdef0123456789abcdef",
		},
		{
			name: "the dashboard's Secret brought, no ingress",
			args: func(t *testing.T) []string {
				return append(inlineGitHub(t), "--set", "dashboard.clientId=Iv23li", "--set", "dashboard.existingSecret=dash")
			},
			dashSecret: "dash",
		},
		{
			name: "values-scaleout.yaml",
			args: func(t *testing.T) []string {
				return []string{"-f", filepath.Join(chartDir, "values-scaleout.yaml"), "--set", "github.appId=" + testAppID}
			},
			paths: []string{"/webhooks Exact", "/ Prefix"}, dashSecret: "stagehand-dashboard",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			out, err := template(t, chartDir, c.args(t)...)
			if err != nil {
				t.Fatal(err)
			}
			checkNoSecretOutsideSecrets(t, out)
			if strings.Contains(out, "chartcheck-client-secret") {
				t.Errorf("the client secret appears outside a Secret's base64")
			}
			r := sortRelease(t, decodeAll(t, out))
			var paths []string
			for _, ing := range r.ingresses {
				for _, rule := range ing.Spec.Rules {
					for _, p := range rule.HTTP.Paths {
						paths = append(paths, p.Path+" "+string(*p.PathType))
					}
				}
			}
			if !slices.Equal(paths, c.paths) {
				t.Errorf("ingress paths %q, want %q", paths, c.paths)
			}

			pod := r.deployments[0].Spec.Template
			ctr := pod.Spec.Containers[0]
			env := checkEnv(t, ctr)
			if got := env["STAGEHAND_METRICS_LISTEN"].Value; got != ":9090" {
				t.Errorf("STAGEHAND_METRICS_LISTEN = %q, want :9090", got)
			}
			if got := pod.Annotations["prometheus.io/port"]; got != "9090" {
				t.Errorf("prometheus.io/port = %q, want the metrics port 9090", got)
			}
			for _, name := range []string{"STAGEHAND_GITHUB_CLIENT_SECRET", "STAGEHAND_SESSION_KEY"} {
				if _, ok := env[name]; ok {
					t.Errorf("%s is in the environment; the secret must come as a file", name)
				}
			}
			if c.dashSecret == "" {
				for _, name := range []string{"STAGEHAND_GITHUB_CLIENT_ID", "STAGEHAND_GITHUB_CLIENT_SECRET_FILE", "STAGEHAND_SESSION_KEY_FILE"} {
					if _, ok := env[name]; ok {
						t.Errorf("%s is set without sign-in", name)
					}
				}
				return
			}
			if env["STAGEHAND_GITHUB_CLIENT_ID"].Value == "" || env["STAGEHAND_GITHUB_WEB_URL"].Value != "https://github.com/" {
				t.Errorf("client id %q, web URL %q", env["STAGEHAND_GITHUB_CLIENT_ID"].Value, env["STAGEHAND_GITHUB_WEB_URL"].Value)
			}
			volumes := map[string]corev1.Volume{}
			for _, v := range pod.Spec.Volumes {
				volumes[v.Name] = v
			}
			mounts := map[string]corev1.VolumeMount{}
			for _, m := range ctr.VolumeMounts {
				mounts[m.MountPath] = m
			}
			for _, name := range []string{"STAGEHAND_GITHUB_CLIENT_SECRET_FILE", "STAGEHAND_SESSION_KEY_FILE"} {
				checkKeyFile(t, r, env[name].Value, mounts, volumes, c.dashSecret)
			}
			if s, ok := r.secrets[c.dashSecret]; ok {
				key := string(s.Data["session-key"])
				if string(s.Data["client-secret"]) != "chartcheck-client-secret" || len(key) < 32 || (c.sessionKey != "" && key != c.sessionKey) {
					t.Errorf("Secret %s: client secret %q, session key %q; want the client secret given and a session key of 32+ characters (%q when given)",
						s.Name, s.Data["client-secret"], key, c.sessionKey)
				}
			}
		})
	}
}

// TestDashboardRefusals: the chart refuses to expose the dashboard without
// sign-in, and half a sign-in.
func TestDashboardRefusals(t *testing.T) {
	cases := []struct {
		name string
		args []string
		msg  string
	}{
		{"the dashboard exposed without sign-in", []string{"--set", "dashboard.enabled=true"}, "dashboard.enabled exposes the dashboard through the ingress, which needs sign-in with GitHub"},
		{"a client ID without its secret", []string{"--set", "dashboard.clientId=Iv23li"}, "dashboard.clientId is set but the client secret is missing"},
		{"a short session key", []string{"--set", "dashboard.sessionKey=short"}, "/dashboard/sessionKey"},
		{"ingress paths of one's own", []string{"--set", "ingress.hosts[0].host=a.example", "--set", "ingress.hosts[0].paths[0].path=/"}, "additional properties 'paths' not allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			out, err := template(t, chartDir, append(inlineGitHub(t), c.args...)...)
			if err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("helm template = %v, want an error saying %q; it rendered:\n%.300s", err, c.msg, out)
			}
		})
	}
}
