package preflight_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/preflight"
	"github.com/platzwart/platzwart/reconciler/release"
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	os.Exit(cluster.RunTests(m))
}

type env struct {
	t       *testing.T
	cluster *kube.Cluster
	rec     *reconciler.Reconciler
	writes  *cluster.Writes
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := cluster.FromTest(t)
	w := &cluster.Writes{}
	kc, err := kube.Connect(kube.Options{Kubeconfig: c.KubeconfigPath(), WrapConfig: w.Wrap})
	if err != nil {
		t.Fatal(err)
	}
	rec := reconciler.New(kc, release.Options{Progress: func(e release.Event) {
		t.Logf("%-22s %-11s %6.1fs %s", e.Release, e.Step, e.Elapsed.Seconds(), e.Message)
	}}, "preflight-test")
	return &env{t: t, cluster: kc, rec: rec, writes: w}
}

// plan builds the example workplace in namespace ns with domain and JVB NodePort (0:
// the component's default, derived from the workplace), plus text appended to its spec.
func (e *env) plan(ns, domain string, jvbPort int, extra string) *plan.Plan {
	e.t.Helper()
	data, err := os.ReadFile("../../examples/workplace/workplace.yaml")
	if err != nil {
		e.t.Fatal(err)
	}
	s := strings.Replace(string(data), "namespace: demo", "namespace: "+ns, 1)
	s = strings.ReplaceAll(s, "192.168.49.2.sslip.io", domain)
	if jvbPort != 0 {
		s = strings.Replace(s, "  values:\n", fmt.Sprintf("  values:\n    jitsi: {jvb: {port: %d}}\n", jvbPort), 1)
	}
	s += extra
	dir := e.t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "workplace.yaml"), []byte(s), 0o644); err != nil {
		e.t.Fatal(err)
	}
	repo, err := load.Dir(dir, platzwart.Builtin(), "")
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// kinds whose objects a refused reconcile must leave as they were.
var kinds = []schema.GroupVersionKind{
	{Version: "v1", Kind: "SecretList"},
	{Version: "v1", Kind: "ConfigMapList"},
	{Version: "v1", Kind: "ServiceList"},
	{Version: "v1", Kind: "PersistentVolumeClaimList"},
	{Version: "v1", Kind: "ServiceAccountList"},
	{Group: "apps", Version: "v1", Kind: "DeploymentList"},
	{Group: "apps", Version: "v1", Kind: "StatefulSetList"},
	{Group: "batch", Version: "v1", Kind: "JobList"},
	{Group: "networking.k8s.io", Version: "v1", Kind: "IngressList"},
	{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicyList"},
	{Group: "coordination.k8s.io", Version: "v1", Kind: "LeaseList"},
}

// snapshot lists every object of kinds in ns (Helm's release records are Secrets) as
// "Kind name resourceVersion", and whether the namespace exists.
func (e *env) snapshot(ns string) []string {
	e.t.Helper()
	var out []string
	_, err := e.cluster.Clientset.CoreV1().Namespaces().Get(e.t.Context(), ns, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return []string{"namespace absent"}
	case err != nil:
		e.t.Fatal(err)
	}
	for _, gvk := range kinds {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk)
		if err := e.cluster.Client.List(e.t.Context(), list, client.InNamespace(ns)); err != nil {
			e.t.Fatal(err)
		}
		for _, o := range list.Items {
			out = append(out, fmt.Sprintf("%s %s %s", strings.TrimSuffix(gvk.Kind, "List"), o.GetName(), o.GetResourceVersion()))
		}
	}
	sort.Strings(out)
	return out
}

// refused reconciles p, expects a *preflight.Error, and checks that nothing in ns
// changed and no mutating request was made.
func (e *env) refused(p *plan.Plan) *preflight.Error {
	e.t.Helper()
	before := e.snapshot(p.Namespace)
	start := len(e.writes.List())
	_, err := e.rec.Reconcile(e.t.Context(), p)
	var pe *preflight.Error
	if !errors.As(err, &pe) {
		e.t.Fatalf("reconcile: %v; want a *preflight.Error", err)
	}
	if !strings.Contains(err.Error(), "nothing was applied") {
		e.t.Errorf("error %q does not say nothing was applied", err)
	}
	e.t.Logf("refused as expected:\n%v", err)
	if w := e.writes.List()[start:]; len(w) > 0 {
		e.t.Errorf("a refused reconcile made mutating requests: %v", w)
	}
	after := e.snapshot(p.Namespace)
	if !slices.Equal(before, after) {
		e.t.Errorf("objects changed by a refused reconcile:\nbefore %v\nafter  %v", before, after)
	}
	return pe
}

// findings returns the findings of a check, as "component object: reason".
func findings(pe *preflight.Error, c preflight.Check) []preflight.Finding {
	var out []preflight.Finding
	for _, f := range pe.Findings {
		if f.Check == c {
			out = append(out, f)
		}
	}
	return out
}

// TestPreflightRefusesAnInvalidObjectWritingNothing patches one object of one
// release (nextcloud, installed after postgresql, keycloak and valkey) into something
// the API server refuses: the reconcile is refused before any write, in a namespace
// that exists and in one that does not exist yet, naming component, object and the
// API server's reason.
func TestPreflightRefusesAnInvalidObjectWritingNothing(t *testing.T) {
	e := newEnv(t)
	const badPort = `  patches:
    nextcloud:
      - target: {kind: Service, name: demo-nextcloud}
        patch: |
          - op: replace
            path: /spec/ports/0/port
            value: 70000
`
	for _, tc := range []struct {
		name string
		ns   func() string
	}{
		{"namespace exists", func() string { return cluster.FromTest(t).NewNamespace(t) }},
		{"namespace missing", func() string {
			ns := fmt.Sprintf("preflight-missing-%d", time.Now().UnixNano()%100000)
			t.Cleanup(func() {
				_ = e.cluster.Clientset.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
			})
			return ns
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			ns := tc.ns()
			p := e.plan(ns, "192.168.49.10.sslip.io", 30010, badPort)
			pe := e.refused(p)
			got := findings(pe, preflight.CheckDryRun)
			if len(got) != 1 {
				t.Fatalf("dry-run findings %v, want exactly the patched Service", pe.Findings)
			}
			f := got[0]
			if f.Component != "nextcloud" || f.Object.Kind != "Service" || f.Object.Name != "demo-nextcloud" || !strings.Contains(f.Reason, "70000") {
				t.Errorf("finding %+v, want component nextcloud, Service demo-nextcloud and the API server's reason about 70000", f)
			}
			if f.Object.Namespace != ns {
				t.Errorf("finding names namespace %q, want the workplace's %q", f.Object.Namespace, ns)
			}
			if len(pe.Findings) != 1 {
				t.Errorf("findings %v, want only the patched Service", pe.Findings)
			}
		})
	}
}

// TestPreflightRefusesAHostClaimedElsewhere creates an Ingress in another namespace
// for the host of Jitsi: the reconcile is refused naming both claimants, and nothing
// is written.
func TestPreflightRefusesAHostClaimedElsewhere(t *testing.T) {
	e := newEnv(t)
	c := cluster.FromTest(t)
	other := c.NewNamespace(t)
	const domain = "192.168.49.11.sslip.io"
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "squatter", Namespace: other},
		Spec:       networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: "meet." + domain}}},
	}
	if _, err := e.cluster.Clientset.NetworkingV1().Ingresses(other).Create(t.Context(), ing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ns := c.NewNamespace(t)
	pe := e.refused(e.plan(ns, domain, 30011, ""))
	got := findings(pe, preflight.CheckHost)
	if len(got) != 1 || len(pe.Findings) != 1 {
		t.Fatalf("findings %v, want one host finding", pe.Findings)
	}
	f := got[0]
	if f.Component != "jitsi" || f.Object.Kind != "Ingress" || f.Object.Namespace != ns ||
		f.Other == nil || *f.Other != (preflight.Object{Kind: "Ingress", Namespace: other, Name: "squatter"}) ||
		!strings.Contains(f.Reason, "meet."+domain) {
		t.Errorf("finding %+v, want jitsi's Ingress in %s against Ingress %s/squatter for meet.%s", f, ns, other, domain)
	}
}

// TestPreflightRefusesATakenNodePort creates a Service holding the NodePort the
// workplace's JVB asks for: refused, naming both Services, nothing written.
func TestPreflightRefusesATakenNodePort(t *testing.T) {
	e := newEnv(t)
	c := cluster.FromTest(t)
	other := c.NewNamespace(t)
	const port = 30012
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "holder", Namespace: other},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: map[string]string{"app": "x"},
			Ports: []corev1.ServicePort{{Name: "udp", Protocol: corev1.ProtocolUDP, Port: 10000, NodePort: port}}},
	}
	if _, err := e.cluster.Clientset.CoreV1().Services(other).Create(t.Context(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ns := c.NewNamespace(t)
	pe := e.refused(e.plan(ns, "192.168.49.12.sslip.io", port, ""))
	got := findings(pe, preflight.CheckNodePort)
	if len(got) != 1 {
		t.Fatalf("findings %v, want one NodePort finding", pe.Findings)
	}
	f := got[0]
	if f.Component != "jitsi" || f.Object.Kind != "Service" || f.Object.Namespace != ns ||
		f.Other == nil || *f.Other != (preflight.Object{Kind: "Service", Namespace: other, Name: "holder"}) {
		t.Errorf("finding %+v, want jitsi's Service against Service %s/holder", f, other)
	}
}

// jvbNodePort returns the NodePort of the workplace's JVB Service.
func (e *env) jvbNodePort(ns string) int32 {
	e.t.Helper()
	svc, err := e.cluster.Clientset.CoreV1().Services(ns).Get(e.t.Context(), "demo-jitsi-jvb", metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("the JVB Service in %s: %v", ns, err)
	}
	return svc.Spec.Ports[0].NodePort
}

// TestTwoWorkplacesWithJitsiInTwoNamespaces installs the example twice, in two
// namespaces (two domains), with the JVB NodePort left to the component: each
// workplace gets its own port (ADR 0006) and both install and become ready; the JVB
// listens on the port it advertises.
func TestTwoWorkplacesWithJitsiInTwoNamespaces(t *testing.T) {
	e := newEnv(t)
	c := cluster.FromTest(t)
	var ports []int32
	for i, domain := range []string{"192.168.49.13.sslip.io", "192.168.49.14.sslip.io"} {
		ns := c.NewNamespace(t)
		ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
		rep, err := e.rec.Reconcile(ctx, e.plan(ns, domain, 0, ""))
		cancel()
		if err != nil {
			t.Fatalf("workplace %d in %s: %v", i+1, ns, err)
		}
		for _, o := range rep.Result.Outcomes {
			if o.Err != "" || !o.Ready {
				t.Errorf("workplace %d: release %s: ready %v: %s", i+1, o.Release, o.Ready, o.Err)
			}
		}
		port := e.jvbNodePort(ns)
		dep, err := e.cluster.Clientset.AppsV1().Deployments(ns).Get(t.Context(), "demo-jitsi-jvb", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, env := range dep.Spec.Template.Spec.Containers[0].Env {
			if env.Name == "JVB_PORT" && env.Value != fmt.Sprint(port) {
				t.Errorf("workplace %d: JVB_PORT %s, NodePort %d: the JVB must listen on the port it advertises", i+1, env.Value, port)
			}
		}
		ports = append(ports, port)
	}
	if ports[0] == ports[1] {
		t.Errorf("both workplaces got NodePort %d", ports[0])
	}
	t.Logf("JVB NodePorts: %v", ports)
}

// TestPreflightRefusesOneNodePortTwiceInAChange patches keycloak's Service into a
// NodePort Service on the port the workplace's JVB asks for: nothing in the cluster
// holds it yet, so each dry run passes, but the second install would fail; the
// preflight refuses naming both Services, and nothing is written.
func TestPreflightRefusesOneNodePortTwiceInAChange(t *testing.T) {
	e := newEnv(t)
	ns := cluster.FromTest(t).NewNamespace(t)
	const port = 30015
	patch := fmt.Sprintf(`  patches:
    keycloak:
      - target: {kind: Service, name: demo-keycloak}
        patch: |
          - {op: replace, path: /spec/type, value: NodePort}
          - {op: add, path: /spec/ports/0/nodePort, value: %d}
`, port)
	pe := e.refused(e.plan(ns, "192.168.49.15.sslip.io", port, patch))
	got := findings(pe, preflight.CheckNodePort)
	if len(got) != 1 || len(pe.Findings) != 1 {
		t.Fatalf("findings %v, want one NodePort finding", pe.Findings)
	}
	f := got[0]
	names := []string{f.Object.Name}
	if f.Other != nil {
		names = append(names, f.Other.Name)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "demo-jitsi-jvb,demo-keycloak" || !strings.Contains(f.Reason, fmt.Sprint(port)) {
		t.Errorf("finding %+v, want Services demo-keycloak and demo-jitsi-jvb and port %d", f, port)
	}
}

// TestPreflightRefusesAnObjectOfAnotherOwner creates, by hand, a ConfigMap that the
// postgresql release would create: Helm would refuse to adopt it half-way through the
// apply; the preflight refuses before anything is written, naming it.
func TestPreflightRefusesAnObjectOfAnotherOwner(t *testing.T) {
	e := newEnv(t)
	ns := cluster.FromTest(t).NewNamespace(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "demo-postgresql-provision", Namespace: ns}}
	if _, err := e.cluster.Clientset.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pe := e.refused(e.plan(ns, "192.168.49.16.sslip.io", 30016, ""))
	got := findings(pe, preflight.CheckOwner)
	if len(got) != 1 || len(pe.Findings) != 1 {
		t.Fatalf("findings %v, want one owner finding", pe.Findings)
	}
	if f := got[0]; f.Component != "postgresql" || f.Object != (preflight.Object{Kind: "ConfigMap", Namespace: ns, Name: "demo-postgresql-provision"}) {
		t.Errorf("finding %+v, want postgresql's ConfigMap demo-postgresql-provision", f)
	}
}
