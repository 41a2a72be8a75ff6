package reconciler_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/release"
)

func TestMain(m *testing.M) {
	// controller-runtime's client logs through a global logger; these tests read
	// results, not its logs.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(cluster.RunTests(m))
}

// counter counts API requests by whether they change anything.
type counter struct {
	mu       sync.Mutex
	all      int
	mutating []string
}

func (c *counter) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			c.mu.Lock()
			c.all++
			if req.Method != http.MethodGet && req.Method != http.MethodHead && !strings.Contains(req.URL.RawQuery, "dryRun=") {
				c.mutating = append(c.mutating, req.Method+" "+req.URL.Path)
			}
			c.mu.Unlock()
			return rt.RoundTrip(req)
		})
	})
	return cfg
}

func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all, c.mutating = 0, nil
}

func (c *counter) snapshot() (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.all, append([]string(nil), c.mutating...)
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// env is a reconciler against the test cluster with request counting.
type env struct {
	t       testing.TB
	cluster *kube.Cluster
	rec     *reconciler.Reconciler
	count   *counter
	ns      string
	events  *eventLog
	jvbPort int
	// mailPort is the first of the three mail NodePorts of the test's workplace.
	mailPort int
}

// nextPort numbers the test environments: each gets its own JVB and mail NodePorts.
var nextPort atomic.Int32

type eventLog struct {
	mu     sync.Mutex
	events []release.Event
}

func (l *eventLog) add(e release.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// reset forgets the events so far.
func (l *eventLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = nil
}

// index returns the position of the first event of a release and step, or -1.
func (l *eventLog) index(rel, step string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range l.events {
		if e.Release == rel && e.Step == step {
			return i
		}
	}
	return -1
}

func newEnv(t testing.TB) *env {
	t.Helper()
	c := cluster.FromTest(t)
	cnt := &counter{}
	kc, err := kube.Connect(kube.Options{Kubeconfig: c.KubeconfigPath(), WrapConfig: cnt.wrap})
	if err != nil {
		t.Fatal(err)
	}
	ns := c.NewNamespace(t)
	log := &eventLog{}
	rec := reconciler.New(kc, release.Options{Progress: func(e release.Event) {
		log.add(e)
		t.Logf("%-22s %-11s %6.1fs %s", e.Release, e.Step, e.Elapsed.Seconds(), e.Message)
	}}, "test")
	n := int(nextPort.Add(1))
	return &env{t: t, cluster: kc, rec: rec, count: cnt, ns: ns, events: log, jvbPort: 30100 + n, mailPort: 31000 + 3*n}
}

// workplaceDir writes the example workplace into a temporary repository with the
// namespace set to the test's and the given text replacements, plus extra files.
func (e *env) workplaceDir(replace map[string]string, extra map[string]string) string {
	e.t.Helper()
	data, err := os.ReadFile("../examples/workplace/workplace.yaml")
	if err != nil {
		e.t.Fatal(err)
	}
	s := strings.Replace(string(data), "namespace: demo", "namespace: "+e.ns, 1)
	// NodePorts are cluster-wide and the tests run in parallel: each test's Jitsi gets
	// its own JVB port and its mail its own three ports (the ports derived from two
	// random namespace names can collide, and the preflight rightly refuses the second).
	s = strings.Replace(s, "  values:\n", fmt.Sprintf("  values:\n    jitsi: {jvb: {port: %d}}\n    stalwart: {mailService: {nodePorts: {smtp: %d, submissions: %d, imaps: %d}}}\n",
		e.jvbPort, e.mailPort, e.mailPort+1, e.mailPort+2), 1)
	for from, to := range replace {
		if !strings.Contains(s, from) {
			e.t.Fatalf("example has no %q", from)
		}
		s = strings.Replace(s, from, to, 1)
	}
	dir := e.t.TempDir()
	files := map[string]string{"workplace.yaml": s}
	for k, v := range extra {
		files[k] = v
	}
	for p, content := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	return dir
}

func (e *env) plan(dir string) *plan.Plan {
	e.t.Helper()
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

// reconcile reconciles p and fails the test if any release failed.
func (e *env) reconcile(p *plan.Plan) *reconciler.Report {
	e.t.Helper()
	rep := e.reconcileMayFail(p)
	if rep.Failed() {
		for _, o := range rep.Result.Failed() {
			e.t.Errorf("release %s: %s", o.Release, o.Err)
		}
		e.t.FailNow()
	}
	return rep
}

// reconcileMayFail reconciles p; releases may fail.
func (e *env) reconcileMayFail(p *plan.Plan) *reconciler.Report {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 5*time.Minute)
	defer cancel()
	rep, err := e.rec.Reconcile(ctx, p)
	if err != nil {
		e.t.Fatalf("reconcile: %v", err)
	}
	return rep
}

func revisions(t *testing.T, e *env, workplace string) map[string]int {
	t.Helper()
	states, err := e.rec.Engine.Status(t.Context(), e.ns, workplace)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, s := range states {
		out[s.Component] = s.Revision
		if !s.Ready {
			t.Errorf("component %s not ready: %s", s.Component, s.Message)
		}
	}
	return out
}

// TestApplyExampleThenNoOp installs the whole example, then checks that a second
// reconcile acts on nothing: zero Helm actions and zero mutating API requests.
func TestApplyExampleThenNoOp(t *testing.T) {
	e := newEnv(t)
	p := e.plan(e.workplaceDir(nil, nil))
	start := time.Now()
	rep := e.reconcile(p)
	t.Logf("first apply: %s", time.Since(start).Round(time.Millisecond))
	for _, o := range rep.Result.Outcomes {
		if o.Err != "" || !o.Ready || o.Action != release.ActionInstall {
			t.Errorf("release %s: action %s ready %v err %q", o.Release, o.Action, o.Ready, o.Err)
		}
	}
	if len(rep.Secrets) != len(p.Secrets) {
		t.Errorf("generated %d secrets, plan lists %d", len(rep.Secrets), len(p.Secrets))
	}
	before := revisions(t, e, p.Workplace)

	e.count.reset()
	start = time.Now()
	rep = e.reconcile(e.plan(e.workplaceDir(nil, nil)))
	took := time.Since(start)
	all, mutating := e.count.snapshot()
	t.Logf("no-op reconcile: %s, %d API requests, %d mutating", took.Round(time.Millisecond), all, len(mutating))
	if len(mutating) > 0 {
		t.Errorf("no-op reconcile made %d mutating requests: %v", len(mutating), mutating)
	}
	if rep.Locked {
		t.Error("no-op reconcile took the workplace lock")
	}
	for _, o := range rep.Result.Outcomes {
		if o.Action != release.ActionUnchanged || !o.Ready {
			t.Errorf("no-op reconcile: release %s action %s ready %v err %q", o.Release, o.Action, o.Ready, o.Err)
		}
	}
	if after := revisions(t, e, p.Workplace); len(after) != len(before) {
		t.Errorf("releases changed: %v → %v", before, after)
	} else {
		for k, v := range before {
			if after[k] != v {
				t.Errorf("release of %s went from revision %d to %d in a no-op", k, v, after[k])
			}
		}
	}
}

// TestSwapVideoMakeBeforeBreak swaps jitsi for bigbluebutton: BigBlueButton is ready
// before Jitsi is removed, Jitsi's volumes are kept, releases the swap does not touch
// keep their revision.
func TestSwapVideoMakeBeforeBreak(t *testing.T) {
	e := newEnv(t)
	e.reconcile(e.plan(e.workplaceDir(nil, nil)))
	before := revisions(t, e, "demo")

	p := e.plan(e.workplaceDir(map[string]string{"video: jitsi ": "video: bigbluebutton "}, nil))
	e.events.reset()
	rep := e.reconcile(p)
	ready := e.events.index("demo-bigbluebutton", "ready")
	gone := e.events.index("demo-jitsi", "uninstall")
	if ready < 0 || gone < 0 || ready > gone {
		t.Errorf("bigbluebutton ready at event %d, jitsi uninstall at %d: want ready first", ready, gone)
	}
	after := revisions(t, e, "demo")
	if _, ok := after["jitsi"]; ok {
		t.Error("jitsi still installed")
	}
	for _, untouched := range []string{"nextcloud", "collabora"} {
		if after[untouched] != before[untouched] {
			t.Errorf("%s went from revision %d to %d; the swap must not touch it", untouched, before[untouched], after[untouched])
		}
	}
	pvcs, err := e.cluster.Clientset.CoreV1().PersistentVolumeClaims(e.ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=demo-jitsi"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.KeptVolumes) != len(pvcs.Items) {
		t.Errorf("report lists kept volumes %v, cluster has %d claims of demo-jitsi", rep.KeptVolumes, len(pvcs.Items))
	}
}

// TestRemovedComponentKeepsData switches files off: Nextcloud is uninstalled, its
// claim stays and is reported; selecting it again adopts the same claim.
func TestRemovedComponentKeepsData(t *testing.T) {
	e := newEnv(t)
	e.reconcile(e.plan(e.workplaceDir(nil, nil)))
	pvc, err := e.cluster.Clientset.CoreV1().PersistentVolumeClaims(e.ns).Get(t.Context(), "demo-nextcloud-data", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("nextcloud's claim: %v", err)
	}

	rep := e.reconcile(e.plan(e.workplaceDir(map[string]string{"office: collabora ": "office: collabora\n    files: none "}, nil)))
	if rep.Failed() {
		t.Fatalf("switching files off failed: %+v", rep.Result.Failed())
	}
	want := e.ns + "/demo-nextcloud-data"
	if strings.Join(rep.KeptVolumes, ",") != want {
		t.Errorf("kept volumes %v, want [%s]", rep.KeptVolumes, want)
	}
	kept, err := e.cluster.Clientset.CoreV1().PersistentVolumeClaims(e.ns).Get(t.Context(), "demo-nextcloud-data", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the claim is gone after uninstall: %v", err)
	}
	if kept.UID != pvc.UID {
		t.Errorf("claim was replaced: uid %s → %s", pvc.UID, kept.UID)
	}

	rep = e.reconcile(e.plan(e.workplaceDir(nil, nil)))
	if rep.Failed() {
		t.Fatalf("selecting nextcloud again failed: %+v", rep.Result.Failed())
	}
	again, err := e.cluster.Clientset.CoreV1().PersistentVolumeClaims(e.ns).Get(t.Context(), "demo-nextcloud-data", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.UID != pvc.UID {
		t.Errorf("reinstalled nextcloud got a new claim (uid %s → %s): data not reattached", pvc.UID, again.UID)
	}
}

// TestDataPolicyDelete removes the claims of a removed component.
func TestDataPolicyDelete(t *testing.T) {
	e := newEnv(t)
	e.reconcile(e.plan(e.workplaceDir(map[string]string{"dataPolicy: Retain": "dataPolicy: Delete"}, nil)))
	rep := e.reconcile(e.plan(e.workplaceDir(map[string]string{"dataPolicy: Retain": "dataPolicy: Delete", "office: collabora ": "office: collabora\n    files: none "}, nil)))
	if want := e.ns + "/demo-nextcloud-data"; strings.Join(rep.DeletedVolumes, ",") != want {
		t.Errorf("deleted volumes %v, want [%s]", rep.DeletedVolumes, want)
	}
}

// slowComponent is the built-in valkey component with a short timeout, and a patch
// that makes its Deployment unschedulable turns an upgrade into a failure.
func slowComponent(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../components/valkey/component.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	if strings.Contains(s, "  timeout:") {
		t.Fatal("valkey sets a timeout; adjust the test")
	}
	return strings.Replace(s, "spec:\n", "spec:\n  timeout: 5s\n", 1)
}

const unschedulable = `  patches:
    valkey:
      - target: {kind: Deployment, name: demo-valkey}
        patch: |
          - op: add
            path: /spec/template/spec/nodeSelector
            value: {platzwart.io/test: nowhere}
`

// TestFailedUpgradeRollsBack makes an upgrade that never becomes ready: it is rolled
// back to the last good revision, the other releases are untouched, and the report
// says which resource is not ready and why.
func TestFailedUpgradeRollsBack(t *testing.T) {
	e := newEnv(t)
	extra := map[string]string{"components/valkey/component.yaml": slowComponent(t)}
	e.reconcile(e.plan(e.workplaceDir(nil, extra)))
	before := revisions(t, e, "demo")

	rep := e.reconcileMayFail(e.plan(e.workplaceDir(map[string]string{"  dataPolicy: Retain\n": "  dataPolicy: Retain\n" + unschedulable}, extra)))
	failed := rep.Result.Failed()
	if len(failed) != 1 || failed[0].Release != "demo-valkey" {
		t.Fatalf("want exactly demo-valkey to fail, got %+v", failed)
	}
	msg := failed[0].Err
	for _, want := range []string{"rolled back to revision 1", "Deployment " + e.ns + "/demo-valkey", "node"} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure message lacks %q: %s", want, msg)
		}
	}
	states, err := e.rec.Engine.Status(t.Context(), e.ns, "demo")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		switch s.Component {
		case "valkey":
			if s.Revision != 3 || s.Status != "deployed" || !s.Ready {
				t.Errorf("valkey after rollback: revision %d status %s ready %v (%s)", s.Revision, s.Status, s.Ready, s.Message)
			}
		default:
			if s.Revision != before[s.Component] {
				t.Errorf("%s went from revision %d to %d; a failure elsewhere must not touch it", s.Component, before[s.Component], s.Revision)
			}
		}
	}
}

// TestPendingReleaseRecovered leaves a release pending-upgrade, as a process killed
// mid-upgrade does, and checks that the next reconcile recovers it.
func TestPendingReleaseRecovered(t *testing.T) {
	e := newEnv(t)
	p := e.plan(e.workplaceDir(nil, nil))
	e.reconcile(p)
	// What a crash mid-upgrade leaves behind: the newest release record pending-upgrade.
	secrets, err := e.cluster.Clientset.CoreV1().Secrets(e.ns).List(t.Context(), metav1.ListOptions{LabelSelector: "owner=helm,name=demo-keycloak"})
	if err != nil || len(secrets.Items) != 1 {
		t.Fatalf("release record of demo-keycloak: %v (%d found)", err, len(secrets.Items))
	}
	markPending(t, e, "demo-keycloak")
	steps, err := e.rec.Engine.Decide(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if s.Release == "demo-keycloak" && (s.Action != release.ActionUpgrade || !strings.Contains(s.Reason, "pending-upgrade")) {
			t.Errorf("decided %s (%s) for a pending release", s.Action, s.Reason)
		}
	}
	rep := e.reconcile(p)
	if rep.Failed() {
		t.Fatalf("recovery failed: %+v", rep.Result.Failed())
	}
	states, err := e.rec.Engine.Status(t.Context(), e.ns, "demo")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		if s.Component == "keycloak" && (s.Status != "deployed" || !s.Ready) {
			t.Errorf("keycloak after recovery: %s ready %v: %s", s.Status, s.Ready, s.Message)
		}
	}
	if e.events.index("demo-keycloak", "recover") < 0 {
		t.Error("no recover step was reported")
	}
}

// TestDriftCorrected changes resources by hand — scales a Deployment, edits a
// ConfigMap, deletes a Service — and checks that the next reconcile reports and
// corrects each, without a Helm upgrade.
func TestDriftCorrected(t *testing.T) {
	e := newEnv(t)
	p := e.plan(e.workplaceDir(nil, nil))
	e.reconcile(p)
	before := revisions(t, e, "demo")
	cs := e.cluster.Clientset
	ctx := t.Context()

	scale, err := cs.AppsV1().Deployments(e.ns).GetScale(ctx, "demo-collabora", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := scale.Spec.Replicas
	scale.Spec.Replicas = want + 2
	if _, err := cs.AppsV1().Deployments(e.ns).UpdateScale(ctx, "demo-collabora", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	cms, err := cs.CoreV1().ConfigMaps(e.ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=demo-valkey"})
	if err != nil || len(cms.Items) == 0 {
		t.Fatalf("a ConfigMap of demo-valkey: %v (%d)", err, len(cms.Items))
	}
	cm := cms.Items[0]
	for k := range cm.Data {
		cm.Data[k] = "edited by hand"
	}
	if _, err := cs.CoreV1().ConfigMaps(e.ns).Update(ctx, &cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Services(e.ns).Delete(ctx, "demo-keycloak", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	rep := e.reconcile(p)
	drifted := map[string][]string{}
	for _, o := range rep.Result.Outcomes {
		if o.Action != release.ActionUnchanged {
			t.Errorf("release %s: %s, want unchanged (drift is corrected without a Helm upgrade)", o.Release, o.Action)
		}
		drifted[o.Release] = o.Drifted
	}
	for rel, want := range map[string]string{
		"demo-collabora": "Deployment " + e.ns + "/demo-collabora: changed",
		"demo-valkey":    "ConfigMap " + e.ns + "/" + cm.Name + ": changed",
		"demo-keycloak":  "Service " + e.ns + "/demo-keycloak: deleted",
	} {
		if !strings.Contains(strings.Join(drifted[rel], "\n"), want) {
			t.Errorf("release %s: drift %v, want %q", rel, drifted[rel], want)
		}
	}
	for rel, d := range drifted {
		if rel != "demo-collabora" && rel != "demo-valkey" && rel != "demo-keycloak" && len(d) > 0 {
			t.Errorf("release %s reported drift nobody made: %v", rel, d)
		}
	}
	scale, err = cs.AppsV1().Deployments(e.ns).GetScale(ctx, "demo-collabora", metav1.GetOptions{})
	if err != nil || scale.Spec.Replicas != want {
		t.Errorf("collabora replicas %d after correction, want %d (%v)", scale.Spec.Replicas, want, err)
	}
	if _, err := cs.CoreV1().Services(e.ns).Get(ctx, "demo-keycloak", metav1.GetOptions{}); err != nil {
		t.Errorf("deleted Service not recreated: %v", err)
	}
	got, err := cs.CoreV1().ConfigMaps(e.ns).Get(ctx, cm.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range got.Data {
		if v == "edited by hand" {
			t.Errorf("ConfigMap %s key %s still edited", cm.Name, k)
		}
	}
	if after := revisions(t, e, "demo"); after["keycloak"] != before["keycloak"] {
		t.Errorf("drift correction made a Helm revision: %d → %d", before["keycloak"], after["keycloak"])
	}
}

// TestInterruptedUpgradeRolledBack: the process applying an upgrade is killed after
// Helm recorded the new revision and before it became ready. The next reconcile finds
// a revision never confirmed ready, sees it is not, and rolls it back.
func TestInterruptedUpgradeRolledBack(t *testing.T) {
	e := newEnv(t)
	extra := map[string]string{"components/valkey/component.yaml": slowComponent(t)}
	e.reconcile(e.plan(e.workplaceDir(nil, extra)))
	bad := e.plan(e.workplaceDir(map[string]string{"  dataPolicy: Retain\n": "  dataPolicy: Retain\n" + unschedulable}, extra))
	// What the killed process left: Helm's upgrade, recorded with the new digest, and
	// nothing after it.
	helmUpgradeOnly(t, e, bad, "demo-valkey")

	rep := e.reconcileMayFail(bad)
	failed := rep.Result.Failed()
	if len(failed) != 1 || failed[0].Release != "demo-valkey" || !strings.Contains(failed[0].Err, "rolled back to revision 1") {
		t.Fatalf("want demo-valkey rolled back to revision 1, got %+v", failed)
	}
	if e.events.index("demo-valkey", "recover") < 0 {
		t.Error("no recover step reported")
	}
	states, err := e.rec.Engine.Status(t.Context(), e.ns, "demo")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		if s.Component == "valkey" && (!s.Ready || s.Revision != 3) {
			t.Errorf("valkey after recovery: revision %d ready %v (%s)", s.Revision, s.Ready, s.Message)
		}
	}
}

// TestFailedFirstInstallRemoved: a new release that never becomes ready is
// uninstalled so the next run starts clean; what does not depend on it is installed.
func TestFailedFirstInstallRemoved(t *testing.T) {
	e := newEnv(t)
	extra := map[string]string{"components/valkey/component.yaml": slowComponent(t)}
	rep := e.reconcileMayFail(e.plan(e.workplaceDir(map[string]string{"  dataPolicy: Retain\n": "  dataPolicy: Retain\n" + unschedulable}, extra)))
	byRelease := map[string]string{}
	for _, o := range rep.Result.Outcomes {
		byRelease[o.Release] = o.Err
	}
	if msg := byRelease["demo-valkey"]; !strings.Contains(msg, "install") || !strings.Contains(msg, "node") {
		t.Errorf("demo-valkey: %q, want the install failure with the scheduling reason", msg)
	}
	if msg := byRelease["demo-nextcloud"]; !strings.Contains(msg, "demo-valkey is not ready") {
		t.Errorf("demo-nextcloud: %q, want it not started", msg)
	}
	for _, ok := range []string{"demo-postgresql", "demo-keycloak", "demo-collabora"} {
		if byRelease[ok] != "" {
			t.Errorf("%s failed too: %s", ok, byRelease[ok])
		}
	}
	if _, installed := revisions(t, e, "demo")["valkey"]; installed {
		t.Error("the failed first install of valkey is still there")
	}
	if e.events.index("demo-valkey", "uninstall") < 0 {
		t.Error("no uninstall step reported")
	}
}

// TestRenderFailureAppliesNothing: a patch that matches nothing stops the reconcile
// before anything is created, with the workplace file and field in the error.
func TestRenderFailureAppliesNothing(t *testing.T) {
	e := newEnv(t)
	p := e.plan(e.workplaceDir(map[string]string{"  dataPolicy: Retain\n": `  dataPolicy: Retain
  patches:
    keycloak:
      - target: {kind: Deployment, name: nope}
        patch: '[{"op": "add", "path": "/metadata/labels/x", "value": "y"}]'
`}, nil))
	e.count.reset()
	_, err := e.rec.Reconcile(t.Context(), p)
	if err == nil || !strings.Contains(err.Error(), "nothing was applied") || !strings.Contains(err.Error(), "spec.patches.keycloak[0].target") {
		t.Fatalf("error %v, want the render failure naming spec.patches.keycloak[0].target", err)
	}
	if _, mutating := e.count.snapshot(); len(mutating) > 0 {
		t.Errorf("a failed render wrote to the cluster: %v", mutating)
	}
	if len(revisions(t, e, "demo")) != 0 {
		t.Error("releases were installed despite the render failure")
	}
}

// TestAPIServerRestartMidReconcile restarts kube-apiserver while the example is being
// installed: that reconcile ends with a clear error instead of hanging, and the next one
// converges (releases left pending are recovered).
func TestAPIServerRestartMidReconcile(t *testing.T) {
	c := cluster.FromTest(t)
	if c.RunDir() == "" {
		t.Skip("needs the local control plane (restarts its API server)")
	}
	e := newEnv(t)
	p := e.plan(e.workplaceDir(nil, nil))
	done := make(chan error, 1)
	var rep *reconciler.Report
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		var err error
		rep, err = e.rec.Reconcile(ctx, p)
		done <- err
	}()
	// Restart once the first releases are being installed.
	for e.events.index("demo-postgresql", "install") < 0 {
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.RestartAPIServer(t.Context()); err != nil {
		t.Fatal(err)
	}
	err := <-done
	switch {
	case err != nil:
		t.Logf("reconcile during the restart: %v", err)
	case rep.Failed():
		for _, o := range rep.Result.Failed() {
			t.Logf("during the restart: %s: %s", o.Release, o.Err)
		}
	default:
		t.Log("the reconcile rode out the restart")
	}
	rep = e.reconcile(p)
	for _, o := range rep.Result.Outcomes {
		if !o.Ready {
			t.Errorf("after the restart: %s not ready: %s", o.Release, o.Err)
		}
	}
}

// TestKilledMidUpgradeRecovered runs `platzwart apply` as a process, SIGKILLs it while
// it waits for an upgrade that cannot become ready, and checks that the next reconcile
// recovers: the interrupted revision is rolled back and the workplace is ready again.
func TestKilledMidUpgradeRecovered(t *testing.T) {
	e := newEnv(t)
	bin := buildCLI(t)
	slow := strings.Replace(slowComponent(t), "timeout: 5s", "timeout: 20s", 1)
	extra := map[string]string{"components/valkey/component.yaml": slow}
	e.reconcile(e.plan(e.workplaceDir(nil, extra)))

	dir := e.workplaceDir(map[string]string{"  dataPolicy: Retain\n": "  dataPolicy: Retain\n" + unschedulable}, extra)
	// Kill it once it waits for the upgraded valkey (Helm has recorded the revision).
	cmd, _ := applyUntilWaiting(t, bin, dir, "demo-valkey")
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	// The next run (the plan with the bad patch, as the repository still says). The
	// killed process's lease names a process of this host that has ended: it is taken
	// over at once, without waiting for the lease to expire.
	rep, err := e.rec.Reconcile(t.Context(), e.plan(dir))
	if err != nil {
		t.Fatalf("reconcile after the kill: %v (the dead holder's lease must be taken over at once)", err)
	}
	failed := rep.Result.Failed()
	if len(failed) != 1 || failed[0].Release != "demo-valkey" || !strings.Contains(failed[0].Err, "rolled back") {
		t.Fatalf("want demo-valkey's interrupted revision rolled back, got %+v", failed)
	}
	for _, s := range revisionsAndReady(t, e) {
		if !s.Ready {
			t.Errorf("%s not ready after recovery: %s", s.Component, s.Message)
		}
	}
}

// buildCLI builds the platzwart binary for a test.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "platzwart")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "../cmd/platzwart")
	build.Env = append(os.Environ(), "GOTOOLCHAIN=auto")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building platzwart: %v\n%s", err, out)
	}
	return bin
}

// applyUntilWaiting starts `platzwart apply dir` and returns once it waits for rel to
// become ready, with the scanner of the rest of its progress output.
func applyUntilWaiting(t *testing.T, bin, dir, rel string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd, scan := applyUntil(t, bin, dir, func(line string) bool { return strings.Contains(line, rel) && strings.Contains(line, " wait ") })
	if cmd == nil {
		t.Fatalf("apply ended before waiting for %s", rel)
	}
	return cmd, scan
}

// applyUntil starts `platzwart apply dir` and reads its progress until a line
// matches; it returns the running process and the rest of its output, or nil when
// the process ended first.
func applyUntil(t *testing.T, bin, dir string, match func(line string) bool) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, "apply", dir, "--kubeconfig", cluster.FromTest(t).KubeconfigPath())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scan := bufio.NewScanner(stderr)
	for scan.Scan() {
		line := scan.Text()
		t.Log("apply: " + line)
		if match(line) {
			return cmd, scan
		}
	}
	_ = cmd.Wait()
	return nil, nil
}

// revisionsAndReady returns the releases of the test's workplace.
func revisionsAndReady(t *testing.T, e *env) []release.State {
	t.Helper()
	states, err := e.rec.Engine.Status(t.Context(), e.ns, "demo")
	if err != nil {
		t.Fatal(err)
	}
	return states
}
