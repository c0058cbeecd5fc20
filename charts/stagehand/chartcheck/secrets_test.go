package chartcheck

import (
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestEnvironmentSecrets: each secrets.environments entry mounts its
// existing Secret read-only at <dir>/<owner>/<repo>/<environment> in the
// server's container, which gets STAGEHAND_SECRETS_DIR; the worker role
// mounts none of them.
func TestEnvironmentSecrets(t *testing.T) {
	secrets := []string{
		"--set", "secrets.environments[0].repository=acme/shop",
		"--set", "secrets.environments[0].environment=production",
		"--set", "secrets.environments[0].existingSecret=shop-production",
		"--set", "secrets.environments[1].repository=acme/shop",
		"--set", "secrets.environments[1].environment=stage",
		"--set", "secrets.environments[1].existingSecret=shop-stage",
		// Notification targets' URLs and keys (README, Notifications) live in
		// the program's notifications directory: the same kind of entry.
		"--set", "secrets.environments[2].repository=acme/shop",
		"--set", "secrets.environments[2].environment=notifications",
		"--set", "secrets.environments[2].existingSecret=shop-notify",
	}
	for _, c := range []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"one process", func(t *testing.T) []string { return append(inlineGitHub(t), secrets...) }},
		{"scale-out with workers", func(t *testing.T) []string {
			return append([]string{"-f", filepath.Join(chartDir, "values-scaleout.yaml"), "--set", "github.appId=" + testAppID}, secrets...)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			out, err := template(t, chartDir, c.args(t)...)
			if err != nil {
				t.Fatal(err)
			}
			r := sortRelease(t, decodeAll(t, out))
			if len(r.deployments) != 1 {
				t.Fatalf("%d server deployments", len(r.deployments))
			}
			pod := r.deployments[0].Spec.Template.Spec
			type mount struct{ Path, Secret string }
			var got []mount
			for _, m := range pod.Containers[0].VolumeMounts {
				i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
				if i < 0 || pod.Volumes[i].Secret == nil || !slices.Contains([]string{"shop-production", "shop-stage", "shop-notify"}, pod.Volumes[i].Secret.SecretName) {
					continue
				}
				if !m.ReadOnly {
					t.Errorf("%s is mounted writable", m.MountPath)
				}
				got = append(got, mount{m.MountPath, pod.Volumes[i].Secret.SecretName})
			}
			want := []mount{{"/var/run/stagehand/secrets/acme/shop/production", "shop-production"}, {"/var/run/stagehand/secrets/acme/shop/stage", "shop-stage"},
				{"/var/run/stagehand/secrets/acme/shop/notifications", "shop-notify"}}
			if !reflect.DeepEqual(want, got) {
				t.Errorf("the server's secret mounts = %+v, want %+v", got, want)
			}
			env := map[string]string{}
			for _, e := range pod.Containers[0].Env {
				env[e.Name] = e.Value
			}
			if env["STAGEHAND_SECRETS_DIR"] != "/var/run/stagehand/secrets" {
				t.Errorf("STAGEHAND_SECRETS_DIR = %q", env["STAGEHAND_SECRETS_DIR"])
			}
			for _, w := range r.workers {
				for _, v := range w.Spec.Template.Spec.Volumes {
					if v.Secret != nil && (v.Secret.SecretName == "shop-production" || v.Secret.SecretName == "shop-stage") {
						t.Errorf("the worker mounts the environment secret %s", v.Secret.SecretName)
					}
				}
			}
		})
	}
}
