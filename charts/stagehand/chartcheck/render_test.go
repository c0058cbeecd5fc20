package chartcheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/yaml"
)

// helmVersion is the helm release CI installs (.ci/chart-check).
const helmVersion = "v3.22.0"

// chartDir is the chart, relative to this package.
const chartDir = ".."

// releaseName and namespace of every render.
const (
	releaseName = "stagehand"
	namespace   = "stagehand"
)

// kinds are the objects the chart may render, each decoded into its API
// type. Anything else fails the test: a new kind needs a line here.
var kinds = map[schema.GroupVersionKind]func() runtime.Object{
	corev1.SchemeGroupVersion.WithKind("ServiceAccount"):        func() runtime.Object { return &corev1.ServiceAccount{} },
	corev1.SchemeGroupVersion.WithKind("Secret"):                func() runtime.Object { return &corev1.Secret{} },
	corev1.SchemeGroupVersion.WithKind("ConfigMap"):             func() runtime.Object { return &corev1.ConfigMap{} },
	corev1.SchemeGroupVersion.WithKind("Service"):               func() runtime.Object { return &corev1.Service{} },
	corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaim"): func() runtime.Object { return &corev1.PersistentVolumeClaim{} },
	appsv1.SchemeGroupVersion.WithKind("Deployment"):            func() runtime.Object { return &appsv1.Deployment{} },
	networkingv1.SchemeGroupVersion.WithKind("Ingress"):         func() runtime.Object { return &networkingv1.Ingress{} },
	networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy"):   func() runtime.Object { return &networkingv1.NetworkPolicy{} },
	policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudget"): func() runtime.Object { return &policyv1.PodDisruptionBudget{} },
}

// strictCodecs decode the way the API server does with strict field
// validation (kubectl apply --validate=strict): case-sensitive field names,
// no unknown or duplicate fields.
var strictCodecs = func() serializer.CodecFactory {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, networkingv1.AddToScheme, policyv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(s, serializer.EnableStrict)
}()

// helm returns the helm binary: $HELM, helm on PATH, or the one
// `go install` puts in $(go env GOPATH)/bin. Without one the test fails and
// says how to install it: CI must run these tests.
func helm(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	if h, err := exec.LookPath("helm"); err == nil {
		return h
	}
	gobin := os.Getenv("GOBIN")
	if gobin == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gobin = filepath.Join(strings.TrimSpace(strings.SplitN(string(out), string(os.PathListSeparator), 2)[0]), "bin")
		}
	}
	if gobin != "" {
		if h := filepath.Join(gobin, "helm"); isExecutable(h) {
			return h
		}
	}
	t.Fatalf("helm is not installed, and the chart tests need it. Install it with\n\n"+
		"\tgo install helm.sh/helm/v3/cmd/helm@%s\n\n"+
		"(it lands in $(go env GOPATH)/bin), or run .ci/chart-check, which installs it and runs these tests; "+
		"or point HELM at a helm binary.", helmVersion)
	return ""
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// runHelm runs helm with its home directories in a temporary folder and
// returns its standard output, or an error holding its standard error.
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helm(t), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// template renders the chart at dir with args (values flags).
func template(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	return runHelm(t, append([]string{"template", releaseName, dir, "--namespace", namespace}, args...)...)
}

// object is one rendered manifest.
type object struct {
	source string // "# Source:" line of helm, for messages
	gvk    schema.GroupVersionKind
	name   string
	obj    runtime.Object
}

func (o object) String() string {
	return fmt.Sprintf("%s %s (%s)", o.gvk.Kind, o.name, o.source)
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitDocuments returns the YAML documents of a multi-document stream,
// leaving out those with nothing but comments and blank lines.
func splitDocuments(stream string) []string {
	var docs []string
	for _, d := range docSeparator.Split(stream, -1) {
		for _, line := range strings.Split(d, "\n") {
			l := strings.TrimSpace(line)
			if l != "" && !strings.HasPrefix(l, "#") {
				docs = append(docs, d)
				break
			}
		}
	}
	return docs
}

func sourceOf(doc string) string {
	for _, line := range strings.Split(doc, "\n") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(line), "# Source: "); ok {
			return s
		}
	}
	return "unknown template"
}

// decodeStrict decodes one manifest into its API type, twice: YAML to JSON
// refusing duplicate keys, then encoding/json refusing unknown fields; and
// the API machinery's strict decoder, which also refuses fields whose case
// differs (encoding/json would accept "ContainerPort").
func decodeStrict(doc string) (object, error) {
	o := object{source: sourceOf(doc)}
	j, err := yaml.YAMLToJSONStrict([]byte(doc))
	if err != nil {
		return o, fmt.Errorf("%s: not strict YAML: %w", o.source, err)
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(j, &tm); err != nil {
		return o, fmt.Errorf("%s: %w", o.source, err)
	}
	o.gvk = schema.FromAPIVersionAndKind(tm.APIVersion, tm.Kind)
	newObj, ok := kinds[o.gvk]
	if !ok {
		return o, fmt.Errorf("%s: apiVersion %q kind %q is not a kind this test knows: add it to kinds with its API type", o.source, tm.APIVersion, tm.Kind)
	}
	o.obj = newObj()
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(o.obj); err != nil {
		return o, fmt.Errorf("%s: %s: %w", o.source, o.gvk.Kind, err)
	}
	if dec.More() {
		return o, fmt.Errorf("%s: more than one object in a document", o.source)
	}
	strictObj, _, err := strictCodecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
	if err != nil {
		if runtime.IsStrictDecodingError(err) {
			return o, fmt.Errorf("%s: strict decoding: %w", o.source, err)
		}
		return o, fmt.Errorf("%s: %w", o.source, err)
	}
	if got := strictObj.GetObjectKind().GroupVersionKind(); got != o.gvk {
		return o, fmt.Errorf("%s: decoded as %v, want %v", o.source, got, o.gvk)
	}
	m, err := metaOf(o.obj)
	if err != nil {
		return o, fmt.Errorf("%s: %w", o.source, err)
	}
	o.name = m.GetName()
	if o.name == "" {
		return o, fmt.Errorf("%s: %s has no name", o.source, o.gvk.Kind)
	}
	return o, nil
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no object metadata", obj)
	}
	return m, nil
}

// decodeAll decodes every document of a helm template output.
func decodeAll(t *testing.T, out string) []object {
	t.Helper()
	var objs []object
	seen := map[string]string{}
	for _, doc := range splitDocuments(out) {
		o, err := decodeStrict(doc)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		key := o.gvk.Kind + "/" + o.name
		if prev, dup := seen[key]; dup {
			t.Errorf("%s is rendered twice: by %s and %s", key, prev, o.source)
		}
		seen[key] = o.source
		objs = append(objs, o)
	}
	if len(objs) == 0 {
		t.Fatalf("helm template rendered no object:\n%s", out)
	}
	return objs
}
