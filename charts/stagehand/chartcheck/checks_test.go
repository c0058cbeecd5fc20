package chartcheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// The checks every successful render must pass, and the ones each case
// asks for (want).

// checkNoSecretOutsideSecrets: the private key and the webhook secret appear
// only in Secrets (base64), never in a Deployment's environment.
func checkNoSecretOutsideSecrets(t *testing.T, out string) {
	t.Helper()
	for _, doc := range splitDocuments(out) {
		if strings.Contains(doc, "\nkind: Secret") {
			continue
		}
		for _, s := range []string{testWebhookSecret, "chartcheck-not-a-real-key", "PRIVATE KEY", "stagehand:pw@"} {
			if strings.Contains(doc, s) {
				t.Errorf("%s holds the secret %q outside a Secret", sourceOf(doc), s)
			}
		}
	}
}

// release sorts the rendered objects by kind.
type release struct {
	deployments     []*appsv1.Deployment
	services        []*corev1.Service
	secrets         map[string]*corev1.Secret
	pvcs            map[string]*corev1.PersistentVolumeClaim
	pdbs            []*policyv1.PodDisruptionBudget
	ingresses       []*networkingv1.Ingress
	serviceAccounts map[string]*corev1.ServiceAccount
	workers         []*appsv1.Deployment // app.kubernetes.io/component: worker
	networkPolicies []*networkingv1.NetworkPolicy
}

func sortRelease(t *testing.T, objs []object) release {
	t.Helper()
	r := release{secrets: map[string]*corev1.Secret{}, pvcs: map[string]*corev1.PersistentVolumeClaim{}, serviceAccounts: map[string]*corev1.ServiceAccount{}}
	for _, o := range objs {
		checkMeta(t, o)
		switch v := o.obj.(type) {
		case *appsv1.Deployment:
			if v.Labels["app.kubernetes.io/component"] == "worker" {
				r.workers = append(r.workers, v)
				continue
			}
			r.deployments = append(r.deployments, v)
		case *corev1.Service:
			r.services = append(r.services, v)
		case *corev1.Secret:
			r.secrets[v.Name] = v
		case *corev1.PersistentVolumeClaim:
			r.pvcs[v.Name] = v
		case *policyv1.PodDisruptionBudget:
			r.pdbs = append(r.pdbs, v)
		case *networkingv1.Ingress:
			r.ingresses = append(r.ingresses, v)
		case *networkingv1.NetworkPolicy:
			r.networkPolicies = append(r.networkPolicies, v)
		case *corev1.ServiceAccount:
			r.serviceAccounts[v.Name] = v
		default:
			t.Errorf("%v: the chart does not render this kind by default", o)
		}
	}
	return r
}

// checkMeta: valid names and labels, and no namespace of its own (helm
// installs into the release's).
func checkMeta(t *testing.T, o object) {
	t.Helper()
	m, err := metaOf(o.obj)
	if err != nil {
		t.Fatal(err)
	}
	nameCheck := validation.IsDNS1123Subdomain
	if o.gvk.Kind == "Service" {
		nameCheck = validation.IsDNS1035Label
	}
	for _, msg := range nameCheck(m.GetName()) {
		t.Errorf("%v: name: %s", o, msg)
	}
	checkLabels(t, o.String(), m.GetLabels())
	if m.GetLabels()["app.kubernetes.io/instance"] != releaseName {
		t.Errorf("%v: label app.kubernetes.io/instance = %q, want %q", o, m.GetLabels()["app.kubernetes.io/instance"], releaseName)
	}
	if ns := m.GetNamespace(); ns != "" {
		t.Errorf("%v: sets namespace %q; leave it to helm", o, ns)
	}
}

func checkLabels(t *testing.T, what string, l map[string]string) {
	t.Helper()
	for k, v := range l {
		for _, msg := range validation.IsQualifiedName(k) {
			t.Errorf("%s: label key %q: %s", what, k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			t.Errorf("%s: label %s value %q: %s", what, k, v, msg)
		}
	}
}

func checkRelease(t *testing.T, objs []object, w want) {
	t.Helper()
	r := sortRelease(t, objs)
	if len(r.deployments) != 1 || len(r.services) != 1 {
		t.Fatalf("rendered %d Deployments and %d Services, want 1 of each", len(r.deployments), len(r.services))
	}
	d, svc := r.deployments[0], r.services[0]
	pod := d.Spec.Template
	podLabels := labels.Set(pod.Labels)
	checkLabels(t, "pod template", pod.Labels)

	// Replicas and strategy.
	if d.Spec.Replicas == nil || *d.Spec.Replicas != w.replicas {
		t.Errorf("replicas = %v, want %d", ptrString(d.Spec.Replicas), w.replicas)
	}
	wantStrategy := appsv1.RecreateDeploymentStrategyType
	if w.scaleOut {
		wantStrategy = appsv1.RollingUpdateDeploymentStrategyType
	}
	if d.Spec.Strategy.Type != wantStrategy {
		t.Errorf("strategy = %q, want %q", d.Spec.Strategy.Type, wantStrategy)
	}
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType && d.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("strategy Recreate with rollingUpdate settings (the API server refuses it)")
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(podLabels) {
		t.Errorf("the Deployment's selector %v does not select its pod template's labels %v (%v)", d.Spec.Selector, pod.Labels, err)
	}

	// The pod.
	ps := pod.Spec
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Errorf("pod automountServiceAccountToken is not false: Stagehand does not use the Kubernetes API")
	}
	if ps.EnableServiceLinks == nil || *ps.EnableServiceLinks {
		t.Errorf("pod enableServiceLinks is not false: a Service named stagehand would add STAGEHAND_PORT... to the environment")
	}
	if _, ok := r.serviceAccounts[ps.ServiceAccountName]; !ok {
		t.Errorf("serviceAccountName %q is not rendered", ps.ServiceAccountName)
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(ps.Containers))
	}
	ctr := ps.Containers[0]
	checkImage(t, ctr.Image)
	checkSecurity(t, ps.SecurityContext, ctr.SecurityContext)
	port := checkPorts(t, ctr)
	checkProbes(t, ctr)
	env := checkEnv(t, ctr)
	volumes := map[string]corev1.Volume{}
	for _, v := range ps.Volumes {
		volumes[v.Name] = v
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range ctr.VolumeMounts {
		if _, ok := volumes[m.Name]; !ok {
			t.Errorf("volumeMount %q names no volume", m.Name)
		}
		mounts[m.MountPath] = m
	}

	// A writable data dir and /tmp (the root filesystem is read-only).
	dataDir := env["STAGEHAND_DATA_DIR"].Value
	dm, ok := mounts[dataDir]
	switch {
	case dataDir == "":
		t.Errorf("STAGEHAND_DATA_DIR is not set")
	case !ok:
		t.Errorf("STAGEHAND_DATA_DIR %q is not a volume mount: the root filesystem is read-only", dataDir)
	case dm.ReadOnly:
		t.Errorf("the data dir %q is mounted read-only", dataDir)
	}
	if m, ok := mounts["/tmp"]; !ok || m.ReadOnly || volumes[m.Name].EmptyDir == nil {
		t.Errorf("/tmp is not a writable emptyDir")
	}
	data := volumes[dm.Name]
	switch {
	case w.dataClaim != "":
		if data.PersistentVolumeClaim == nil || data.PersistentVolumeClaim.ClaimName != w.dataClaim {
			t.Errorf("data volume = %+v, want the claim %q", data.VolumeSource, w.dataClaim)
		}
	default:
		if data.EmptyDir == nil {
			t.Errorf("data volume = %+v, want an emptyDir", data.VolumeSource)
		}
	}
	wantPVCs := 0
	if w.chartPVC {
		wantPVCs = 1
		pvc, ok := r.pvcs[w.dataClaim]
		if !ok {
			t.Errorf("the claim %q is not rendered", w.dataClaim)
		} else {
			if !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteOnce) {
				t.Errorf("PVC access modes %v lack ReadWriteOnce", pvc.Spec.AccessModes)
			}
			if q, ok := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; !ok || q.IsZero() {
				t.Errorf("PVC requests no storage")
			}
			if pvc.Annotations["helm.sh/resource-policy"] != "keep" {
				t.Errorf("PVC is not kept on uninstall (helm.sh/resource-policy: keep)")
			}
		}
	}
	if len(r.pvcs) != wantPVCs {
		t.Errorf("rendered %d PersistentVolumeClaims, want %d (only the embedded mode has one)", len(r.pvcs), wantPVCs)
	}
	if w.scaleOut && len(r.pvcs) > 0 {
		t.Errorf("scale-out renders a PersistentVolumeClaim")
	}
	if w.artifactsClaim != "" {
		am, ok := mounts[path.Join(dataDir, "artifacts")]
		if !ok || am.ReadOnly {
			t.Errorf("no writable mount at %s/artifacts", dataDir)
		} else if v := volumes[am.Name]; v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != w.artifactsClaim {
			t.Errorf("artifacts volume = %+v, want the claim %q", v.VolumeSource, w.artifactsClaim)
		}
	}

	// The GitHub App: the key as a file from a Secret, the webhook secret
	// from a Secret, the App ID as a value.
	if got := env["STAGEHAND_GITHUB_APP_ID"].Value; got != appID(w) {
		t.Errorf("STAGEHAND_GITHUB_APP_ID = %q, want %q", got, appID(w))
	}
	checkSecretRef(t, r, env, "STAGEHAND_GITHUB_WEBHOOK_SECRET", w.githubSecret+"/webhook-secret", w.chartSecret)
	checkKeyFile(t, r, env["STAGEHAND_GITHUB_PRIVATE_KEY_FILE"].Value, mounts, volumes, w.githubSecret)
	if w.chartSecret != (len(r.secrets) == 1) || len(r.secrets) > 1 {
		t.Errorf("rendered Secrets %v, want the chart's own: %v", keys(r.secrets), w.chartSecret)
	}
	if s, ok := r.secrets[w.githubSecret]; ok {
		if string(s.Data["private-key.pem"]) != testPEM || string(s.Data["webhook-secret"]) != testWebhookSecret {
			t.Errorf("Secret %s does not hold the key and the webhook secret given", s.Name)
		}
	}

	// Database and NATS.
	if w.databaseSecret == "" {
		if _, ok := env["STAGEHAND_DATABASE_URL"]; ok {
			t.Errorf("STAGEHAND_DATABASE_URL is set")
		}
	} else {
		checkSecretRef(t, r, env, "STAGEHAND_DATABASE_URL", w.databaseSecret, false)
	}
	if w.natsSecret != "" {
		checkSecretRef(t, r, env, "STAGEHAND_NATS_URL", w.natsSecret, false)
	} else if got := env["STAGEHAND_NATS_URL"]; got.Value != w.natsURL || got.ValueFrom != nil {
		t.Errorf("STAGEHAND_NATS_URL = %+v, want the value %q", got, w.natsURL)
	}
	if got := env["STAGEHAND_PUBLIC_URL"].Value; got != w.publicURL {
		t.Errorf("STAGEHAND_PUBLIC_URL = %q, want %q", got, w.publicURL)
	}

	// Service.
	if svc.Spec.Selector == nil || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		t.Errorf("the Service's selector %v does not select the pods %v", svc.Spec.Selector, pod.Labels)
	}
	if !maps.Equal(svc.Spec.Selector, d.Spec.Selector.MatchLabels) {
		t.Errorf("the Service's selector %v differs from the Deployment's %v: use the stable selector labels (not the version)", svc.Spec.Selector, d.Spec.Selector.MatchLabels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort != intstr.FromString(port.Name) || svc.Spec.Ports[0].Name != "http" {
		t.Errorf("Service ports %+v, want one named http targeting the container port %q", svc.Spec.Ports, port.Name)
	}

	// PodDisruptionBudget: only with several replicas.
	switch {
	case w.pdbMin == "" && w.pdbMaxUnavail == "":
		if len(r.pdbs) != 0 {
			t.Errorf("rendered a PodDisruptionBudget for %d replica(s)", w.replicas)
		}
	case len(r.pdbs) != 1:
		t.Errorf("rendered %d PodDisruptionBudgets, want 1", len(r.pdbs))
	default:
		pdb := r.pdbs[0]
		if w.replicas <= 1 {
			t.Errorf("a PodDisruptionBudget with %d replica(s) blocks node drains", w.replicas)
		}
		if got := intOrStringString(pdb.Spec.MinAvailable); got != w.pdbMin {
			t.Errorf("PDB minAvailable = %q, want %q", got, w.pdbMin)
		}
		if got := intOrStringString(pdb.Spec.MaxUnavailable); got != w.pdbMaxUnavail {
			t.Errorf("PDB maxUnavailable = %q, want %q", got, w.pdbMaxUnavail)
		}
		if pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.Int && pdb.Spec.MinAvailable.IntVal >= w.replicas {
			t.Errorf("PDB minAvailable %d >= replicas %d: no pod could ever be evicted", pdb.Spec.MinAvailable.IntVal, w.replicas)
		}
		s, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || s.Empty() || !s.Matches(podLabels) {
			t.Errorf("the PDB's selector %v does not select the pods (%v)", pdb.Spec.Selector, err)
		}
	}

	// Anti-affinity.
	checkAntiAffinity(t, ps.Affinity, w.antiAffinity, podLabels)

	// The worker role and the NetworkPolicies.
	checkWorker(t, r, d, env, w)
	checkNetworkPolicies(t, r, d, w)

	// Ingress.
	if w.ingress != (len(r.ingresses) == 1) || len(r.ingresses) > 1 {
		t.Fatalf("rendered %d Ingresses, want ingress=%v", len(r.ingresses), w.ingress)
	}
	for _, ing := range r.ingresses {
		if len(ing.Spec.Rules) == 0 {
			t.Errorf("Ingress %s has no rules", ing.Name)
		}
		for _, rule := range ing.Spec.Rules {
			for _, msg := range validation.IsDNS1123Subdomain(rule.Host) {
				t.Errorf("Ingress host %q: %s", rule.Host, msg)
			}
			if rule.HTTP == nil || len(rule.HTTP.Paths) == 0 {
				t.Errorf("Ingress rule %q has no paths", rule.Host)
				continue
			}
			for _, p := range rule.HTTP.Paths {
				b := p.Backend.Service
				if p.PathType == nil || b == nil || b.Name != svc.Name || b.Port.Name != svc.Spec.Ports[0].Name {
					t.Errorf("Ingress path %q: pathType %v, backend %+v; want the Service %s port http", p.Path, p.PathType, p.Backend, svc.Name)
				}
			}
		}
	}
}

func appID(w want) string {
	if w.appID != "" {
		return w.appID
	}
	return testAppID
}

func checkImage(t *testing.T, image string) {
	t.Helper()
	chart := struct {
		AppVersion string `json:"appVersion"`
	}{}
	b, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &chart); err != nil {
		t.Fatal(err)
	}
	if want := "ghcr.io/stagehand-dev/stagehand:" + chart.AppVersion; image != want {
		t.Errorf("image = %q, want %q (the Chart's appVersion)", image, want)
	}
}

// checkSecurity: non-root, read-only root filesystem, no privilege, and
// the user the Dockerfile runs as.
func checkSecurity(t *testing.T, pod *corev1.PodSecurityContext, c *corev1.SecurityContext) {
	t.Helper()
	if pod == nil || c == nil {
		t.Fatalf("pod or container securityContext missing")
	}
	if pod.RunAsNonRoot == nil || !*pod.RunAsNonRoot || c.RunAsNonRoot == nil || !*c.RunAsNonRoot {
		t.Errorf("runAsNonRoot is not true on the pod and the container")
	}
	uid := c.RunAsUser
	if uid == nil {
		uid = pod.RunAsUser
	}
	if uid == nil || *uid == 0 {
		t.Errorf("runAsUser = %v, want a non-root uid", ptrString(uid))
	} else if du := dockerfileUser(t); du != *uid {
		t.Errorf("runAsUser %d differs from the Dockerfile's USER %d", *uid, du)
	}
	if pod.FSGroup == nil || *pod.FSGroup == 0 {
		t.Errorf("fsGroup = %v: the volumes must be writable by the non-root user", ptrString(pod.FSGroup))
	}
	if c.ReadOnlyRootFilesystem == nil || !*c.ReadOnlyRootFilesystem {
		t.Errorf("readOnlyRootFilesystem is not true")
	}
	if c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation {
		t.Errorf("allowPrivilegeEscalation is not false")
	}
	if c.Privileged != nil && *c.Privileged {
		t.Errorf("privileged")
	}
	if c.Capabilities == nil || !slices.Contains(c.Capabilities.Drop, "ALL") || len(c.Capabilities.Add) > 0 {
		t.Errorf("capabilities = %+v, want drop ALL and add none", c.Capabilities)
	}
	if pod.SeccompProfile == nil || pod.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("seccompProfile is not RuntimeDefault")
	}
}

var (
	dockerUser   = regexp.MustCompile(`(?m)^USER\s+(\d+)(?::(\d+))?\s*$`)
	dockerExpose = regexp.MustCompile(`(?m)^EXPOSE\s+(\d+)`)
)

func dockerfile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, "..", "..", "Dockerfile"))
	if err != nil {
		t.Fatalf("the image's Dockerfile: %v", err)
	}
	return string(b)
}

// dockerfileUser is the numeric USER of the Dockerfile's last stage.
func dockerfileUser(t *testing.T) int64 {
	t.Helper()
	m := dockerUser.FindAllStringSubmatch(dockerfile(t), -1)
	if len(m) == 0 {
		t.Fatalf("the Dockerfile has no numeric USER line")
	}
	uid, _ := strconv.ParseInt(m[len(m)-1][1], 10, 64)
	return uid
}

func checkPorts(t *testing.T, c corev1.Container) corev1.ContainerPort {
	t.Helper()
	if len(c.Ports) != 2 || c.Ports[0].Name != "http" || c.Ports[1].Name != "metrics" || c.Ports[0].ContainerPort == c.Ports[1].ContainerPort {
		t.Fatalf("container ports %+v, want http and metrics (GET /metrics off the port the ingress reaches)", c.Ports)
	}
	p := c.Ports[0]
	m := dockerExpose.FindStringSubmatch(dockerfile(t))
	if m == nil || m[1] != strconv.Itoa(int(p.ContainerPort)) {
		t.Errorf("containerPort %d, but the Dockerfile exposes %v", p.ContainerPort, m)
	}
	return p
}

func checkProbes(t *testing.T, c corev1.Container) {
	t.Helper()
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
		{"startupProbe", c.StartupProbe, "/healthz"},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s is not an HTTP GET", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port != intstr.FromString("http") {
			t.Errorf("%s = GET %s on %v, want GET %s on the http port", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
		}
		if p.probe.TimeoutSeconds < 3 {
			t.Errorf("%s timeoutSeconds %d: /readyz may take 2 s to answer", p.name, p.probe.TimeoutSeconds)
		}
	}
}

// checkEnv: valid names, no duplicates, and every STAGEHAND_* variable is
// one `stagehand serve` reads (config/server.go).
func checkEnv(t *testing.T, c corev1.Container) map[string]corev1.EnvVar {
	t.Helper()
	known := serverEnvNames(t)
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		for _, msg := range validation.IsEnvVarName(e.Name) {
			t.Errorf("env %q: %s", e.Name, msg)
		}
		if _, dup := env[e.Name]; dup {
			t.Errorf("env %s is set twice", e.Name)
		}
		env[e.Name] = e
		if strings.HasPrefix(e.Name, "STAGEHAND_") && !known[e.Name] {
			t.Errorf("env %s is not a variable stagehand serve reads (config/server.go)", e.Name)
		}
		if e.Value != "" && e.ValueFrom != nil {
			t.Errorf("env %s has both value and valueFrom", e.Name)
		}
	}
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Errorf("args = %v, want serve", c.Args)
	}
	return env
}

// serverEnvNames reads the flags RegisterServerFlags (and registerStoreFlags) registers in
// config/server.go, without importing Stagehand's module.
func serverEnvNames(t *testing.T) map[string]bool {
	t.Helper()
	file := filepath.Join(chartDir, "..", "..", "config", "server.go")
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatalf("reading the server flags: %v", err)
	}
	names := map[string]bool{"STAGEHAND_GITHUB_PRIVATE_KEY": true} // read by Resolve
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		// The server's flags, and the store's, which serve registers too
		// (registerStoreFlags, shared with `stagehand audit export`).
		if !ok || (fn.Name.Name != "RegisterServerFlags" && fn.Name.Name != "registerStoreFlags") {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 3 {
				return true
			}
			if u, ok := call.Args[0].(*ast.UnaryExpr); !ok || u.Op != token.AND {
				return true
			}
			lit, ok := call.Args[1].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			flag, err := strconv.Unquote(lit.Value)
			if err == nil {
				names["STAGEHAND_"+strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))] = true
			}
			return true
		})
	}
	for _, must := range []string{"STAGEHAND_DATA_DIR", "STAGEHAND_GITHUB_APP_ID", "STAGEHAND_DATABASE_URL", "STAGEHAND_NATS_URL"} {
		if !names[must] {
			t.Fatalf("found %v in %s but not %s: has RegisterServerFlags changed shape? Update serverEnvNames", keys(names), file, must)
		}
	}
	return names
}

// checkSecretRef: env name comes from the Secret "name/key"; when the chart
// renders that Secret, it has the key.
func checkSecretRef(t *testing.T, r release, env map[string]corev1.EnvVar, name, want string, rendered bool) {
	t.Helper()
	e, ok := env[name]
	if !ok {
		t.Errorf("%s is not set", name)
		return
	}
	if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
		t.Errorf("%s does not come from a Secret", name)
		return
	}
	ref := e.ValueFrom.SecretKeyRef
	if got := ref.Name + "/" + ref.Key; got != want {
		t.Errorf("%s comes from %s, want %s", name, got, want)
	}
	s, ok := r.secrets[ref.Name]
	if rendered && !ok {
		t.Errorf("%s: the Secret %s is not rendered", name, ref.Name)
	}
	if ok {
		if _, has := s.Data[ref.Key]; !has {
			t.Errorf("%s: the Secret %s has no key %s", name, ref.Name, ref.Key)
		}
	}
}

// checkKeyFile: the private key file is an item of a Secret volume mounted
// read-only.
func checkKeyFile(t *testing.T, r release, file string, mounts map[string]corev1.VolumeMount, volumes map[string]corev1.Volume, secret string) {
	t.Helper()
	if file == "" {
		t.Errorf("a key file's variable (STAGEHAND_..._FILE) is not set")
		return
	}
	m, ok := mounts[path.Dir(file)]
	if !ok || !m.ReadOnly {
		t.Errorf("the key file %s is not in a read-only volume mount", file)
		return
	}
	v := volumes[m.Name].Secret
	if v == nil || v.SecretName != secret {
		t.Errorf("the key file %s is not from the Secret %s: %+v", file, secret, volumes[m.Name].VolumeSource)
		return
	}
	if v.DefaultMode == nil || *v.DefaultMode&0o007 != 0 {
		mode := "unset (0644)"
		if v.DefaultMode != nil {
			mode = fmt.Sprintf("%#o", *v.DefaultMode)
		}
		t.Errorf("the key file %s has mode %s, readable by others", file, mode)
	}
	i := slices.IndexFunc(v.Items, func(k corev1.KeyToPath) bool { return k.Path == path.Base(file) })
	if i < 0 {
		t.Errorf("the Secret volume has no item at %s: %+v", path.Base(file), v.Items)
		return
	}
	if s, ok := r.secrets[secret]; ok {
		if _, has := s.Data[v.Items[i].Key]; !has {
			t.Errorf("the Secret %s has no key %s", secret, v.Items[i].Key)
		}
	}
}

func checkAntiAffinity(t *testing.T, a *corev1.Affinity, want string, pods labels.Set) {
	t.Helper()
	var terms []corev1.PodAffinityTerm
	got := ""
	if a != nil && a.PodAntiAffinity != nil {
		if pref := a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution; len(pref) > 0 {
			got = "preferred"
			for _, p := range pref {
				terms = append(terms, p.PodAffinityTerm)
				if p.Weight < 1 || p.Weight > 100 {
					t.Errorf("anti-affinity weight %d outside 1..100", p.Weight)
				}
			}
		}
		if req := a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution; len(req) > 0 {
			got += "required"
			terms = append(terms, req...)
		}
	}
	if got != want {
		t.Errorf("pod anti-affinity = %q, want %q", got, want)
	}
	for _, term := range terms {
		s, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
		if term.TopologyKey == "" || err != nil || s.Empty() || !s.Matches(pods) {
			t.Errorf("anti-affinity term %+v does not spread these pods", term)
		}
	}
}

func intOrStringString(v *intstr.IntOrString) string {
	if v == nil {
		return ""
	}
	return v.String()
}

func ptrString[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
