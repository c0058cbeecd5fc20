package chartcheck

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestSetupSecret: the Secret `stagehand setup --kubernetes-secret NAME`
// prints (testdata/setup-secret.yaml, which cmd/stagehand's
// TestSetupSecretGolden keeps equal to what setup prints) decodes strictly
// as a Secret, and its keys are exactly those the chart reads from a Secret
// given as both github.existingSecret and dashboard.existingSecret, with
// the helm values setup prints: every key the pods read is there, and
// nothing the chart would ignore. With it the chart renders no Secret of
// its own.
func TestSetupSecret(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "setup-secret.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	o, err := decodeStrict(string(b))
	if err != nil {
		t.Fatal(err)
	}
	secret, ok := o.obj.(*corev1.Secret)
	if !ok {
		t.Fatalf("setup prints a %s, not a Secret", o.gvk.Kind)
	}
	name := secret.Name
	out, err := template(t, chartDir, "--set", "github.appId="+testAppID, "--set", "github.existingSecret="+name,
		"--set", "dashboard.clientId=Iv23liChartcheck", "--set", "dashboard.existingSecret="+name,
		"--set", "publicUrl=https://stagehand.example.com")
	if err != nil {
		t.Fatal(err)
	}
	r := sortRelease(t, decodeAll(t, out))
	if len(r.secrets) != 0 {
		t.Errorf("the chart renders Secrets %v besides the one setup printed", keys(r.secrets))
	}
	read := map[string]bool{}
	for _, d := range append(r.deployments, r.workers...) {
		pod := d.Spec.Template.Spec
		for _, c := range append(pod.InitContainers, pod.Containers...) {
			for _, e := range c.Env {
				if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil && ref.SecretKeyRef.Name == name {
					read[ref.SecretKeyRef.Key] = true
				}
			}
		}
		for _, v := range pod.Volumes {
			if v.Secret == nil || v.Secret.SecretName != name {
				continue
			}
			if len(v.Secret.Items) == 0 {
				t.Errorf("volume %s mounts every key of %s", v.Name, name)
			}
			for _, it := range v.Secret.Items {
				read[it.Key] = true
			}
		}
	}
	got := keys(secret.Data)
	want := keys(read)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("setup's Secret has keys %v; the chart reads %v from it", got, want)
	}
	for k, v := range secret.Data {
		if len(v) == 0 {
			t.Errorf("key %s is empty", k)
		}
	}
}
