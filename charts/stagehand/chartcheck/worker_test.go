package chartcheck

import (
	"net"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// checkWorker: with workers, the server runs --step-runner remote and the
// worker Deployment runs `stagehand worker` with its own NATS Secret and
// nothing else: no App key, no webhook secret, no database URL, in its
// environment or its volumes; neither the server's Deployment nor its
// Service selects the worker pods.
func checkWorker(t *testing.T, r release, server *appsv1.Deployment, serverEnv map[string]corev1.EnvVar, w want) {
	t.Helper()
	if w.workerNATS == "" {
		if len(r.workers) != 0 {
			t.Errorf("rendered %d worker Deployments, want none", len(r.workers))
		}
		if _, ok := serverEnv["STAGEHAND_STEP_RUNNER"]; ok {
			t.Errorf("STAGEHAND_STEP_RUNNER is set without workers: the steps would wait for workers that do not exist")
		}
		return
	}
	if got := serverEnv["STAGEHAND_STEP_RUNNER"].Value; got != "remote" {
		t.Errorf("the server's STAGEHAND_STEP_RUNNER = %q, want remote", got)
	}
	if len(r.workers) != 1 {
		t.Fatalf("rendered %d worker Deployments, want 1", len(r.workers))
	}
	d := r.workers[0]
	pod := d.Spec.Template
	ps := pod.Spec
	podLabels := labels.Set(pod.Labels)
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(podLabels) {
		t.Errorf("the worker Deployment's selector %v does not select its pods %v (%v)", d.Spec.Selector, pod.Labels, err)
	}
	serverSel, _ := metav1.LabelSelectorAsSelector(server.Spec.Selector)
	if serverSel.Matches(podLabels) {
		t.Errorf("the server Deployment's selector %v selects the worker pods %v", server.Spec.Selector, pod.Labels)
	}
	for _, svc := range r.services {
		if labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
			t.Errorf("the Service %s selects the worker pods", svc.Name)
		}
	}
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Errorf("the worker pod mounts a service account token")
	}
	if ps.EnableServiceLinks == nil || *ps.EnableServiceLinks {
		t.Errorf("the worker pod has service links in its environment")
	}
	if len(ps.Containers) != 1 || len(ps.InitContainers) != 0 {
		t.Fatalf("the worker pod has %d containers and %d init containers, want 1 and 0", len(ps.Containers), len(ps.InitContainers))
	}
	ctr := ps.Containers[0]
	if !slices.Equal(ctr.Args, []string{"worker"}) {
		t.Errorf("the worker's args = %v, want [worker]", ctr.Args)
	}
	checkImage(t, ctr.Image)
	if c := ctr.SecurityContext; c == nil || c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation ||
		c.RunAsNonRoot == nil || !*c.RunAsNonRoot || c.Capabilities == nil || !slices.Contains(c.Capabilities.Drop, "ALL") || len(c.Capabilities.Add) > 0 {
		t.Errorf("the worker container's securityContext %+v: want non-root, no privilege escalation, drop ALL", c)
	}

	// Its only Secret is its NATS URL.
	secretRefs := map[string]bool{}
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			secretRefs[e.Name+"="+e.ValueFrom.SecretKeyRef.Name+"/"+e.ValueFrom.SecretKeyRef.Key] = true
		case e.ValueFrom != nil:
			t.Errorf("the worker's env %s comes from %+v", e.Name, e.ValueFrom)
		}
		if strings.HasPrefix(e.Name, "STAGEHAND_GITHUB_") || e.Name == "STAGEHAND_DATABASE_URL" || strings.Contains(e.Value, "postgres") {
			t.Errorf("the worker's environment holds %s=%q", e.Name, e.Value)
		}
	}
	if want := map[string]bool{"STAGEHAND_NATS_URL=" + w.workerNATS: true}; !mapsEqual(secretRefs, want) {
		t.Errorf("the worker's environment reads Secrets %v, want only %v", keys(secretRefs), keys(want))
	}
	if len(ctr.EnvFrom) > 0 {
		t.Errorf("the worker takes its whole environment from %+v", ctr.EnvFrom)
	}
	if serverRef := serverEnv["STAGEHAND_NATS_URL"].ValueFrom; serverRef != nil && serverRef.SecretKeyRef != nil &&
		serverRef.SecretKeyRef.Name+"/"+serverRef.SecretKeyRef.Key == w.workerNATS {
		t.Errorf("the worker uses the servers' NATS Secret %s", w.workerNATS)
	}
	for _, v := range ps.Volumes {
		if v.Secret != nil || v.Projected != nil || v.PersistentVolumeClaim != nil || v.HostPath != nil || v.CSI != nil {
			t.Errorf("the worker pod mounts the volume %s (%+v): it must hold no App key, webhook secret or shared data", v.Name, v.VolumeSource)
		}
	}
	for _, m := range ctr.VolumeMounts {
		if strings.HasPrefix(m.MountPath, "/etc/stagehand") {
			t.Errorf("the worker mounts %s at %s", m.Name, m.MountPath)
		}
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// checkNetworkPolicies: the server's policy lets the http port in; the
// worker's lets nothing in and nothing out but DNS, NATS and public
// addresses: PostgreSQL's port is in no rule, and every rule that opens
// addresses leaves the private ranges out.
func checkNetworkPolicies(t *testing.T, r release, server *appsv1.Deployment, w want) {
	t.Helper()
	if !w.networkPolicy {
		if len(r.networkPolicies) != 0 {
			t.Errorf("rendered %d NetworkPolicies, want none", len(r.networkPolicies))
		}
		return
	}
	wantN := 1
	if w.workerNATS != "" {
		wantN = 2
	}
	if len(r.networkPolicies) != wantN {
		t.Fatalf("rendered %d NetworkPolicies, want one for each of %d roles", len(r.networkPolicies), wantN)
	}
	selects := func(p *networkingv1.NetworkPolicy, d *appsv1.Deployment) bool {
		s, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
		return err == nil && !s.Empty() && s.Matches(labels.Set(d.Spec.Template.Labels))
	}
	for _, p := range r.networkPolicies {
		switch {
		case selects(p, server):
			if len(r.workers) > 0 && selects(p, r.workers[0]) {
				t.Errorf("NetworkPolicy %s selects both roles", p.Name)
			}
			var ports []string
			for _, rule := range p.Spec.Ingress {
				if len(rule.Ports) == 0 {
					t.Errorf("the server's NetworkPolicy %s lets in every port", p.Name)
				}
				for _, port := range rule.Ports {
					if port.Port != nil {
						ports = append(ports, port.Port.String())
					}
				}
			}
			if !slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(ports, "http") ||
				slices.ContainsFunc(ports, func(s string) bool { return s != "http" && s != "metrics" }) {
				t.Errorf("the server's NetworkPolicy %s: ingress ports %v, want http (and metrics) only", p.Name, ports)
			}
		case len(r.workers) > 0 && selects(p, r.workers[0]):
			checkWorkerPolicy(t, p)
		default:
			t.Errorf("NetworkPolicy %s selects no role's pods", p.Name)
		}
	}
}

func checkWorkerPolicy(t *testing.T, p *networkingv1.NetworkPolicy) {
	t.Helper()
	if !slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Errorf("the worker's NetworkPolicy policyTypes = %v, want Ingress and Egress", p.Spec.PolicyTypes)
	}
	if len(p.Spec.Ingress) != 0 {
		t.Errorf("the worker's NetworkPolicy lets in %+v, want nothing", p.Spec.Ingress)
	}
	private := []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}
	for i, rule := range p.Spec.Egress {
		for _, port := range rule.Ports {
			if port.Port != nil && port.Port.String() == "5432" {
				t.Errorf("egress rule %d opens PostgreSQL's port 5432", i)
			}
		}
		if len(rule.Ports) == 0 && len(rule.To) == 0 {
			t.Errorf("egress rule %d opens everything", i)
		}
		for _, peer := range rule.To {
			if peer.IPBlock == nil {
				continue
			}
			_, block, err := net.ParseCIDR(peer.IPBlock.CIDR)
			if err != nil {
				t.Errorf("egress rule %d: ipBlock %q: %v", i, peer.IPBlock.CIDR, err)
				continue
			}
			for _, cidr := range private {
				ip, _, _ := net.ParseCIDR(cidr)
				if block.Contains(ip) && !slices.Contains(peer.IPBlock.Except, cidr) {
					t.Errorf("egress rule %d opens %s, which holds the private range %s (where PostgreSQL is), without excepting it", i, peer.IPBlock.CIDR, cidr)
				}
			}
		}
	}
	if len(p.Spec.Egress) == 0 {
		t.Errorf("the worker's NetworkPolicy lets nothing out: it must reach NATS and the internet")
	}
}
