package reconciler_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/release"
)

func TestMain(m *testing.M) { os.Exit(cluster.RunTests(m)) }

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
	t       *testing.T
	cluster *kube.Cluster
	rec     *reconciler.Reconciler
	count   *counter
	ns      string
	events  *eventLog
}

type eventLog struct {
	mu     sync.Mutex
	events []release.Event
}

func (l *eventLog) add(e release.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
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

func newEnv(t *testing.T) *env {
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
	return &env{t: t, cluster: kc, rec: rec, count: cnt, ns: ns, events: log}
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

func (e *env) reconcile(p *plan.Plan) *reconciler.Report {
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
	rep := e.reconcile(p)
	if rep.Failed() {
		t.Fatalf("swap failed: %+v", rep.Result.Failed())
	}
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
