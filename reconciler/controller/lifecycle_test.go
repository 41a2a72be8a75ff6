package controller_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	kstatus "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/controller"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/release"
	"github.com/platzwart/platzwart/reconciler/source"
)

// startController starts the controller in process and returns a function that
// stops it (as SIGTERM does: the context is cancelled) and waits until it returned.
func startController(t testing.TB, c *cluster.Cluster, opts controller.Options) (stop func()) {
	t.Helper()
	opts.Cluster = kube.Options{Kubeconfig: c.KubeconfigPath(), WrapConfig: opts.Cluster.WrapConfig}
	if opts.MetricsAddr == "" {
		opts.MetricsAddr = "0"
	}
	opts.ProbeAddr = "0"
	if tt, ok := t.(*testing.T); ok && os.Getenv("PLATZWART_TEST_LOG") != "" && opts.Logger.GetSink() == nil {
		// The controller's log in the test's output, for debugging a failure.
		opts.Logger = testr.NewWithOptions(tt, testr.Options{Verbosity: 1})
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	kc, err := kube.Connect(opts.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	if err := controller.InstallCRD(t.Context(), kc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- controller.Run(ctx, opts) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("controller: %v", err)
				}
			case <-time.After(2 * time.Minute):
				t.Error("controller did not stop within two minutes")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// state is what must survive every fault: claims, generated Secrets byte for byte,
// and Helm's release history.
type state struct {
	PVCs    []string
	Secrets map[string]map[string][]byte
	Helm    map[string]string // storage Secret name → uid and status
}

func snapshot(t *testing.T, cs kubernetes.Interface, ns string) state {
	t.Helper()
	st := state{Secrets: map[string]map[string][]byte{}, Helm: map[string]string{}}
	pvcs, err := cs.CoreV1().PersistentVolumeClaims(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pvcs.Items {
		st.PVCs = append(st.PVCs, p.Name)
	}
	sort.Strings(st.PVCs)
	secs, err := cs.CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secs.Items {
		if s.Type == "helm.sh/release.v1" {
			st.Helm[s.Name] = string(s.UID) + " " + s.Labels["status"]
			continue
		}
		st.Secrets[s.Name] = s.Data
	}
	return st
}

// assertKept fails when anything of before is gone or changed: a claim deleted, a
// Secret regenerated, a Helm revision removed or replaced (uninstalled and installed
// again), or a revision recorded as a rollback.
func assertKept(t *testing.T, cs kubernetes.Interface, ns string, before state) state {
	t.Helper()
	after := snapshot(t, cs, ns)
	have := map[string]bool{}
	for _, p := range after.PVCs {
		have[p] = true
	}
	for _, p := range before.PVCs {
		if !have[p] {
			t.Errorf("volume %s/%s was deleted", ns, p)
		}
	}
	for name, data := range before.Secrets {
		if !reflect.DeepEqual(after.Secrets[name], data) {
			t.Errorf("Secret %s/%s changed or was deleted", ns, name)
		}
	}
	for name, v := range before.Helm {
		uid := strings.Fields(v)[0]
		got, ok := after.Helm[name]
		if !ok || strings.Fields(got)[0] != uid {
			t.Errorf("Helm revision %s was removed or replaced (uninstalled?)", name)
		}
	}
	cfgs := helmHistory(t, ns)
	for rel, revs := range cfgs {
		for _, r := range revs {
			if strings.HasPrefix(r.description, "Rollback") {
				t.Errorf("release %s revision %d is a rollback: %s", rel, r.version, r.description)
			}
		}
	}
	return after
}

type revision struct {
	version     int
	status      string
	description string
	ready       bool
}

// helmHistory reads every revision of every release in ns from Helm's storage.
func helmHistory(t *testing.T, ns string) map[string][]revision {
	t.Helper()
	c := cluster.FromTest(t)
	kc, err := kube.Connect(kube.Options{Kubeconfig: c.KubeconfigPath()})
	if err != nil {
		t.Fatal(err)
	}
	hist, err := release.New(kc, release.Options{}).History(t.Context(), ns)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]revision{}
	for _, r := range hist {
		out[r.Name] = append(out[r.Name], revision{version: r.Version, status: r.Status, description: r.Description, ready: r.Ready})
	}
	return out
}

// latest returns the newest revision of a release.
func latest(t *testing.T, ns, rel string) revision {
	t.Helper()
	revs := helmHistory(t, ns)[rel]
	if len(revs) == 0 {
		return revision{}
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i].version < revs[j].version })
	return revs[len(revs)-1]
}

// unschedulableUntil is a patch that keeps valkey's new pods Pending until a node
// carries the label key=yes: an upgrade (or install) that is about to succeed.
func unschedulableUntil(key string) string {
	return fmt.Sprintf(`  patches:
    valkey:
      - target: {kind: Deployment, name: demo-valkey}
        patch: |
          - op: add
            path: /spec/template/spec/nodeSelector
            value: {%q: "yes"}
`, key)
}

// labelNode puts key=yes on one node until the test ends.
func labelNode(t *testing.T, cs kubernetes.Interface, key string) {
	t.Helper()
	nodes, err := cs.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		t.Fatalf("nodes: %v", err)
	}
	name := nodes.Items[0].Name
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"yes"}}}`, key)
	if _, err := cs.CoreV1().Nodes().Patch(t.Context(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		patch := fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, key)
		_, _ = cs.CoreV1().Nodes().Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	})
}

// uniqueDomain gives each test's workplace its own domain (hosts must be unique in
// the cluster) and a label naming its test: the tests run in parallel, each with a
// controller selecting only its own Workplaces.
func uniqueDomain(ns string) map[string]string {
	return map[string]string{
		"domain: 192.168.49.2.sslip.io": "domain: " + ns + ".192.168.49.2.sslip.io",
		"  name: demo\n":                "  name: demo\n  labels: {platzwart.io/test: " + ns + "}\n",
	}
}

// testSelector selects the Workplaces labelled by uniqueDomain for these namespaces.
func testSelector(t *testing.T, ns ...string) labels.Selector {
	t.Helper()
	sel, err := labels.Parse("platzwart.io/test in (" + strings.Join(ns, ",") + ")")
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func clientsetOf(t *testing.T, c *cluster.Cluster) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func readyNow(w *v1alpha1.Workplace) bool {
	c := meta.FindStatusCondition(w.Status.Conditions, "Ready")
	return c != nil && c.Status == "True" && c.ObservedGeneration == w.Generation
}

// TestRestartConvergesWithoutCommit: a controller restarted with installed
// Workplaces brings them all to Ready without a new commit, corrects a hand edit made
// while it was down, and loses nothing.
func TestRestartConvergesWithoutCommit(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	cs := clientsetOf(t, c)
	ns1, ns2 := c.NewNamespace(t), c.NewNamespace(t)
	repo := newGitRepo(t, workplaceDoc(t, ns1, uniqueDomain(ns1))+"---\n"+workplaceDoc(t, ns2, uniqueDomain(ns2)))
	head := repo.git("rev-parse", "HEAD")
	opts := controller.Options{
		Name:     "restart",
		Selector: testSelector(t, ns1, ns2),
		Source:   source.Options{URL: repo.url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()},
		Interval: time.Hour, // only the fetch at start
		Requeue:  time.Hour, // drift is corrected by the start-up reconcile, not a timer
	}
	stop := startController(t, c, opts)
	cl := workplaceClient(t, c)
	for _, ns := range []string{ns1, ns2} {
		waitWorkplace(t, cl, ns, "demo", "Ready", 3*time.Minute, readyAt(head))
	}
	before := map[string]state{ns1: snapshot(t, cs, ns1), ns2: snapshot(t, cs, ns2)}
	stop()

	// While it is down: a hand edit.
	scale := []byte(`{"spec":{"replicas":3}}`)
	if _, err := cs.AppsV1().Deployments(ns1).Patch(t.Context(), "demo-valkey", types.MergePatchType, scale, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	startController(t, c, opts)
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns1).Get(ctx, "demo-valkey", metav1.GetOptions{})
		return err == nil && ptr.Deref(d.Spec.Replicas, 0) == 1, nil
	})
	if err != nil {
		t.Fatalf("the hand edit made while the controller was down was not corrected: %v", err)
	}
	t.Logf("hand edit corrected %s after the restart", time.Since(started).Round(time.Millisecond))
	for _, ns := range []string{ns1, ns2} {
		w := waitWorkplace(t, cl, ns, "demo", "Ready after the restart", time.Minute, readyAt(head))
		if s := meta.FindStatusCondition(w.Status.Conditions, "Stalled"); s != nil {
			t.Errorf("%s: Stalled after a restart: %+v", ns, s)
		}
		after := assertKept(t, cs, ns, before[ns])
		if len(after.Helm) != len(before[ns].Helm) {
			t.Errorf("%s: the restart made Helm revisions: %d → %d", ns, len(before[ns].Helm), len(after.Helm))
		}
	}
}

// buildPlatzwart builds the CLI once per test.
func buildPlatzwart(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "platzwart")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "../../cmd/platzwart")
	build.Env = append(os.Environ(), "GOTOOLCHAIN=auto")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building platzwart: %v\n%s", err, out)
	}
	return bin
}

// proc is a `platzwart controller` process.
type proc struct {
	cmd  *exec.Cmd
	done chan error
}

// startProcess runs `platzwart controller` with args; its log goes to the test log.
func startProcess(t *testing.T, bin, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"controller"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		s := bufio.NewScanner(stderr)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			t.Logf("%s[%d]: %s", name, cmd.Process.Pid, s.Text())
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() { <-logged; p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	})
	return p
}

// sigterm stops the process as a rolling update does and returns how long it took.
func (p *proc) sigterm(t *testing.T, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Errorf("controller exited with %v after SIGTERM", err)
		}
	case <-time.After(within):
		t.Fatalf("controller did not exit within %s of SIGTERM", within)
	}
	return time.Since(start)
}

// controllerArgs are the arguments of a controller process following repo.
func controllerArgs(t *testing.T, c *cluster.Cluster, repo *gitRepo, name, ns string, extra ...string) []string {
	return append([]string{"--kubeconfig", c.KubeconfigPath(), "--repo", repo.url, "--branch", "main",
		"--name", name, "--cache-dir", t.TempDir(), "--interval", "1s", "--requeue", "1h",
		"--metrics-addr", "0", "--probe-addr", "0", "--install-crds", "--log-format", "text",
		"--shutdown-grace", "60s", "--retry-interval", "2s", "--workplace-selector", "platzwart.io/test=" + ns}, extra...)
}

// waitRevision waits until the release's newest revision is version and deployed
// (Helm's action is done; platzwart waits for readiness).
func waitRevision(t *testing.T, ns, rel string, version int) revision {
	t.Helper()
	var r revision
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		r = latest(t, ns, rel)
		return r.version == version && r.status == "deployed", nil
	})
	if err != nil {
		var w v1alpha1.Workplace
		_ = workplaceClient(t, cluster.FromTest(t)).Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "demo"}, &w)
		t.Fatalf("%s/%s: revision %d never deployed (latest %+v); workplace conditions: %+v", ns, rel, version, r, w.Status.Conditions)
	}
	return r
}

// TestSIGTERMDuringUpgrade: a single-replica controller gets SIGTERM while it waits
// for an upgrade that is about to succeed. It exits promptly without rolling the
// upgrade back; the next controller confirms the revision once it is ready.
func TestSIGTERMDuringUpgrade(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	cs := clientsetOf(t, c)
	ns := c.NewNamespace(t)
	bin := buildPlatzwart(t)
	repo := newGitRepo(t, workplaceDoc(t, ns, uniqueDomain(ns)))
	cl := workplaceClient(t, c)
	p1 := startProcess(t, bin, "controller-1", controllerArgs(t, c, repo, "sigterm", ns)...)
	waitWorkplace(t, cl, ns, "demo", "Ready", 3*time.Minute, readyAt(repo.git("rev-parse", "HEAD")))
	before := snapshot(t, cs, ns)

	label := "platzwart.io/sigterm-" + ns
	second := repo.push(workplaceDoc(t, ns, merge(uniqueDomain(ns), map[string]string{"  dataPolicy: Retain\n": "  dataPolicy: Retain\n" + unschedulableUntil(label)})), "valkey waits for a node")
	waitRevision(t, ns, "demo-valkey", 2)
	took := p1.sigterm(t, 30*time.Second)
	t.Logf("controller stopped %s after SIGTERM", took.Round(time.Millisecond))
	if r := latest(t, ns, "demo-valkey"); r.version != 2 || r.status != "deployed" || r.ready {
		t.Fatalf("after SIGTERM demo-valkey is %+v; want revision 2 deployed and unconfirmed (not rolled back)", r)
	}
	w := &v1alpha1.Workplace{}
	if err := cl.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "demo"}, w); err != nil {
		t.Fatal(err)
	}
	if r := meta.FindStatusCondition(w.Status.Conditions, "Reconciling"); r == nil || r.Status != "True" || r.Reason != "Interrupted" {
		t.Errorf("Reconciling after SIGTERM: %+v; want True, Interrupted", r)
	}
	for _, h := range w.Status.History {
		if !h.Succeeded {
			t.Errorf("the interrupted reconcile was recorded as a failed deployment: %+v", h)
		}
	}

	labelNode(t, cs, label)
	startProcess(t, bin, "controller-2", controllerArgs(t, c, repo, "sigterm", ns)...)
	waitWorkplace(t, cl, ns, "demo", "Ready at the upgrade", 2*time.Minute, readyAt(second))
	if r := latest(t, ns, "demo-valkey"); r.version != 2 || !r.ready {
		t.Errorf("demo-valkey after the restart: %+v; want revision 2 confirmed ready", r)
	}
	assertKept(t, cs, ns, before)
}

// leaseHolderPid returns the pid in the workplace Lease's holder identity.
func leaseHolderPid(t *testing.T, cs kubernetes.Interface, ns string) int {
	t.Helper()
	var pid int
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := cs.CoordinationV1().Leases(ns).Get(ctx, release.LeaseName("demo"), metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		h := ptr.Deref(l.Spec.HolderIdentity, "")
		pid, err = strconv.Atoi(h[strings.LastIndex(h, "/")+1:])
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("no workplace lease holder: %v", err)
	}
	return pid
}

// TestRollingUpdateFinishesTheJob: two replicas with leader election; the leader is
// stopped with SIGTERM during a first install and again (after a replacement replica
// joined, as in a rolling update) during an upgrade. Each time the new leader
// finishes the job: nothing is uninstalled or rolled back.
func TestRollingUpdateFinishesTheJob(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	cs := clientsetOf(t, c)
	ns := c.NewNamespace(t)
	ctl := c.NewNamespace(t) // leader election lease
	bin := buildPlatzwart(t)
	first := "platzwart.io/roll-install-" + ns
	repo := newGitRepo(t, workplaceDoc(t, ns, merge(uniqueDomain(ns), map[string]string{"  dataPolicy: Retain\n": "  dataPolicy: Retain\n" + unschedulableUntil(first)})))
	cl := workplaceClient(t, c)
	args := func() []string { return controllerArgs(t, c, repo, "roll", ns, "--leader-elect", "-n", ctl) }
	procs := map[int]*proc{}
	for i := range 2 {
		p := startProcess(t, bin, fmt.Sprintf("replica-%d", i), args()...)
		procs[p.cmd.Process.Pid] = p
	}

	// First install: valkey is installed and waits for a node.
	waitRevision(t, ns, "demo-valkey", 1)
	before := snapshot(t, cs, ns)
	leader := leaseHolderPid(t, cs, ns)
	if procs[leader] == nil {
		t.Fatalf("the workplace lease names pid %d, not a replica", leader)
	}
	t.Logf("leader during the install: %s", procs[leader].sigterm(t, 30*time.Second).Round(time.Millisecond))
	delete(procs, leader)
	p := startProcess(t, bin, "replica-2", args()...)
	procs[p.cmd.Process.Pid] = p
	if r := latest(t, ns, "demo-valkey"); r.version != 1 || r.status != "deployed" {
		t.Fatalf("after the leader stopped, demo-valkey is %+v; want revision 1 deployed (not uninstalled)", r)
	}
	labelNode(t, cs, first)
	waitWorkplace(t, cl, ns, "demo", "Ready after the install was handed over", 2*time.Minute, readyAt(repo.git("rev-parse", "HEAD")))
	before = assertKept(t, cs, ns, before)

	// An upgrade: the leader is stopped again while it waits.
	next := "platzwart.io/roll-upgrade-" + ns
	second := repo.push(workplaceDoc(t, ns, merge(uniqueDomain(ns), map[string]string{"  dataPolicy: Retain\n": "  dataPolicy: Retain\n" + unschedulableUntil(next)})), "valkey waits for another node")
	waitRevision(t, ns, "demo-valkey", 2)
	leader = leaseHolderPid(t, cs, ns)
	if procs[leader] == nil {
		t.Fatalf("the workplace lease names pid %d, not a replica", leader)
	}
	t.Logf("leader during the upgrade: %s", procs[leader].sigterm(t, 30*time.Second).Round(time.Millisecond))
	startProcess(t, bin, "replica-3", args()...)
	if r := latest(t, ns, "demo-valkey"); r.version != 2 || r.status != "deployed" {
		t.Fatalf("after the leader stopped, demo-valkey is %+v; want revision 2 deployed (not rolled back)", r)
	}
	labelNode(t, cs, next)
	waitWorkplace(t, cl, ns, "demo", "Ready after the upgrade was handed over", 2*time.Minute, readyAt(second))
	if r := latest(t, ns, "demo-valkey"); r.version != 2 || !r.ready {
		t.Errorf("demo-valkey: %+v; want revision 2 confirmed ready", r)
	}
	assertKept(t, cs, ns, before)
}

// TestDriftCorrectionWaitsForTheLease: while another process (a CLI apply) holds the
// workplace's Lease, the controller corrects no drift, reports the contention as
// Reconciling (not as a failed deployment), and corrects it once the Lease is free.
func TestDriftCorrectionWaitsForTheLease(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	cs := clientsetOf(t, c)
	ns := c.NewNamespace(t)
	repo := newGitRepo(t, workplaceDoc(t, ns, uniqueDomain(ns)))
	head := repo.git("rev-parse", "HEAD")
	startController(t, c, controller.Options{
		Name:     "writers",
		Selector: testSelector(t, ns),
		Source:   source.Options{URL: repo.url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()},
		Interval: time.Hour,
		Requeue:  time.Second, // drift checks every second
	})
	cl := workplaceClient(t, c)
	waitWorkplace(t, cl, ns, "demo", "Ready", 3*time.Minute, readyAt(head))
	before := snapshot(t, cs, ns)

	kc, err := kube.Connect(kube.Options{Kubeconfig: c.KubeconfigPath()})
	if err != nil {
		t.Fatal(err)
	}
	lock, err := release.New(kc, release.Options{}).Lock(t.Context(), context.Background(), ns, "demo", release.Holder("platzwart-cli"))
	if err != nil {
		t.Fatal(err)
	}
	scale := []byte(`{"spec":{"replicas":3}}`)
	if _, err := cs.AppsV1().Deployments(ns).Patch(t.Context(), "demo-valkey", types.MergePatchType, scale, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	w := waitWorkplace(t, cl, ns, "demo", "waiting for the lease", time.Minute, func(w *v1alpha1.Workplace) bool {
		r := meta.FindStatusCondition(w.Status.Conditions, "Reconciling")
		return r != nil && r.Status == "True" && r.Reason == "LeaseHeld"
	})
	if !strings.Contains(meta.FindStatusCondition(w.Status.Conditions, "Reconciling").Message, "platzwart-cli@") {
		t.Errorf("Reconciling does not name the holder: %+v", w.Status.Conditions)
	}
	time.Sleep(3 * time.Second) // several drift checks
	if d, err := cs.AppsV1().Deployments(ns).Get(t.Context(), "demo-valkey", metav1.GetOptions{}); err != nil || ptr.Deref(d.Spec.Replicas, 0) != 3 {
		t.Fatalf("the controller wrote while another process held the lease: replicas %v, %v", d.Spec.Replicas, err)
	}
	if err := lock.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "demo-valkey", metav1.GetOptions{})
		return err == nil && ptr.Deref(d.Spec.Replicas, 0) == 1, nil
	})
	if err != nil {
		t.Fatalf("drift not corrected after the lease was released: %v", err)
	}
	w = waitWorkplace(t, cl, ns, "demo", "Ready", time.Minute, readyNow)
	for _, h := range w.Status.History {
		if !h.Succeeded {
			t.Errorf("lease contention was recorded as a failed deployment: %+v", h)
		}
	}
	assertKept(t, cs, ns, before)
}

// TestRepositoryCatalogFollowsTheRevision: a commit adding a repository component and
// selecting it, then one changing a repository chart: each is applied with its own
// revision's catalog and the status names that revision.
func TestRepositoryCatalogFollowsTheRevision(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	cs := clientsetOf(t, c)
	ns := c.NewNamespace(t)
	repo := newGitRepo(t, workplaceDoc(t, ns, uniqueDomain(ns)))
	startController(t, c, controller.Options{
		Name:          "catalog",
		Selector:      testSelector(t, ns),
		Source:        source.Options{URL: repo.url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()},
		Interval:      500 * time.Millisecond,
		RetryInterval: time.Second,
	})
	cl := workplaceClient(t, c)
	waitWorkplace(t, cl, ns, "demo", "Ready", 3*time.Minute, readyAt(repo.git("rev-parse", "HEAD")))

	// A repository component "cache" (the built-in valkey under another name, with the
	// chart copied into the repository) selected for redis in the same commit.
	comp, err := os.ReadFile("../../components/valkey/component.yaml")
	if err != nil {
		t.Fatal(err)
	}
	compDoc := strings.Replace(strings.Replace(string(comp), "name: valkey", "name: cache", 1), "chart: charts/valkey", "chart: charts/cache", 1)
	repo.writeFile("components/cache/component.yaml", compDoc)
	copyDir(t, "../../charts/valkey", filepath.Join(repo.work, "charts/cache"))
	added := repo.commitAll(workplaceDoc(t, ns, merge(uniqueDomain(ns), map[string]string{"    office: collabora": "    office: collabora\n    redis: cache"})), "cache from the repository")
	w := waitWorkplace(t, cl, ns, "demo", "Ready with the repository component", 2*time.Minute, readyAt(added))
	if !hasComponent(w, "cache") {
		t.Fatalf("status components lack cache: %+v", w.Status.Components)
	}

	// Change the repository chart's version: the release must carry it.
	chartFile := filepath.Join(repo.work, "charts/cache/Chart.yaml")
	chart, err := os.ReadFile(chartFile)
	if err != nil {
		t.Fatal(err)
	}
	changed := regexp.MustCompile(`(?m)^version: .*$`).ReplaceAllString(string(chart), "version: 99.0.0")
	if changed == string(chart) {
		t.Fatal("charts/valkey/Chart.yaml has no version line")
	}
	repo.writeFile("charts/cache/Chart.yaml", changed)
	bumped := repo.commitAll("", "cache chart 99.x")
	w = waitWorkplace(t, cl, ns, "demo", "Ready with the changed chart", 2*time.Minute, readyAt(bumped))
	for _, comp := range w.Status.Components {
		if comp.Component == "cache" && !strings.Contains(comp.Chart, "-99.0.0") {
			t.Errorf("status says chart %s for cache, want the 99.x chart of %s", comp.Chart, bumped)
		}
	}
	st, err := release.New(mustConnect(t, c), release.Options{}).Status(t.Context(), ns, "demo")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Component == "cache" && !strings.Contains(s.Chart, "-99.0.0") {
			t.Errorf("release %s runs chart %s, want the 99.x chart", s.Release, s.Chart)
		}
	}
	_ = cs
}

func hasComponent(w *v1alpha1.Workplace, name string) bool {
	for _, c := range w.Status.Components {
		if c.Component == name {
			return true
		}
	}
	return false
}

func mustConnect(t *testing.T, c *cluster.Cluster) *kube.Cluster {
	t.Helper()
	kc, err := kube.Connect(kube.Options{Kubeconfig: c.KubeconfigPath()})
	if err != nil {
		t.Fatal(err)
	}
	return kc
}

// copyDir copies a directory tree.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// writeFile writes a file of the repository's work tree.
func (r *gitRepo) writeFile(rel, content string) {
	r.t.Helper()
	path := filepath.Join(r.work, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// commitAll commits everything (and workplace.yaml with content unless "") and pushes.
func (r *gitRepo) commitAll(workplace, message string) string {
	r.t.Helper()
	if workplace != "" {
		r.writeFile("workplace.yaml", workplace)
	}
	r.git("add", "-A")
	r.git("commit", "-m", message)
	r.git("push", "origin", "main")
	return r.git("rev-parse", "HEAD")
}

// TestSourceReadySurvivesConcurrentReconciles: while a failing Workplace is retried
// (its status written on every attempt) the source loop reports Git unreachable; the
// SourceReady=False it writes is never lost, and kstatus reads the retrying Workplace
// as InProgress, then Failed once its retries are exhausted, in line with the Ready
// condition `kubectl wait` reads.
func TestSourceReadySurvivesConcurrentReconciles(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	// A release that cannot become ready: valkey unschedulable, with a short timeout.
	repo := newGitRepo(t, workplaceDoc(t, ns, merge(uniqueDomain(ns), map[string]string{
		"  dataPolicy: Retain\n": "  dataPolicy: Retain\n  retries: 3\n" + unschedulableUntil("platzwart.io/never-"+ns)})))
	comp, err := os.ReadFile("../../components/valkey/component.yaml")
	if err != nil {
		t.Fatal(err)
	}
	repo.writeFile("components/valkey/component.yaml", strings.Replace(string(comp), "spec:\n", "spec:\n  timeout: 2s\n", 1))
	head := repo.commitAll("", "valkey times out fast")
	startController(t, c, controller.Options{
		Name:          "conditions",
		Selector:      testSelector(t, ns),
		Source:        source.Options{URL: repo.url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir(), Timeout: 2 * time.Second},
		Interval:      300 * time.Millisecond,
		RetryInterval: 300 * time.Millisecond,
	})
	cl := workplaceClient(t, c)
	w := waitWorkplace(t, cl, ns, "demo", "retrying", 3*time.Minute, func(w *v1alpha1.Workplace) bool {
		r := meta.FindStatusCondition(w.Status.Conditions, "Reconciling")
		return strings.HasSuffix(w.Status.LastAttemptedRevision, head) && r != nil && r.Status == "True" && r.Reason == "RetryScheduled"
	})
	if got := kstatusOf(t, w); got != "InProgress" {
		t.Errorf("kstatus of a Workplace waiting for its retry: %s, want InProgress", got)
	}

	repo.srv.StopHTTP()
	waitWorkplace(t, cl, ns, "demo", "SourceReady=False", time.Minute, func(w *v1alpha1.Workplace) bool {
		c := meta.FindStatusCondition(w.Status.Conditions, controller.ConditionSourceReady)
		return c != nil && c.Status == "False"
	})
	// Keep reading while the reconciler writes its retries: SourceReady=False stays.
	writes, lastRV := 0, ""
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var cur v1alpha1.Workplace
		if err := cl.Get(t.Context(), types.NamespacedName{Namespace: ns, Name: "demo"}, &cur); err != nil {
			t.Fatal(err)
		}
		if cur.ResourceVersion != lastRV {
			writes++
			lastRV = cur.ResourceVersion
		}
		if c := meta.FindStatusCondition(cur.Status.Conditions, controller.ConditionSourceReady); c == nil || c.Status != "False" {
			t.Fatalf("SourceReady=False was lost after %d status writes: %+v", writes, c)
		}
		w = &cur
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("SourceReady=False held over %d status writes", writes)
	w = waitWorkplace(t, cl, ns, "demo", "Stalled after its retries", 2*time.Minute, func(w *v1alpha1.Workplace) bool {
		s := meta.FindStatusCondition(w.Status.Conditions, "Stalled")
		return s != nil && s.Status == "True" && s.Reason == "RetriesExhausted"
	})
	if got := kstatusOf(t, w); got != "Failed" {
		t.Errorf("kstatus of a Workplace whose retries are exhausted: %s, want Failed", got)
	}
	if r := meta.FindStatusCondition(w.Status.Conditions, "Ready"); r == nil || r.Status != "False" {
		t.Errorf("Ready of a stalled Workplace: %+v (kubectl wait --for=condition=Ready must not be met)", r)
	}
	if w.Status.Failures != 4 {
		t.Errorf("failures %d, want 4 (the first attempt and 3 retries)", w.Status.Failures)
	}
	if c := meta.FindStatusCondition(w.Status.Conditions, controller.ConditionSourceReady); c == nil || c.Status != "False" {
		t.Errorf("SourceReady after stalling: %+v", c)
	}
}

// TestInvalidWorkplaceFromKubectl: Workplaces created in the cluster get the same
// checks as those from Git: the CRD refuses what its rules express, the controller
// marks the rest Stalled with the message validate gives.
func TestInvalidWorkplaceFromKubectl(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	startController(t, c, controller.Options{Name: "kubectl", Interval: time.Hour, Selector: testSelector(t, ns)})
	cl := workplaceClient(t, c)
	valid := func(name string) *v1alpha1.Workplace {
		return &v1alpha1.Workplace{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"platzwart.io/test": ns}},
			Spec:       v1alpha1.WorkplaceSpec{Domain: ns + ".example.org", Profile: "minikube", Components: map[string]string{"video": "none", "office": "none", "chat": "none", "files": "none"}},
		}
	}
	refused := []struct {
		name   string
		mutate func(w *v1alpha1.Workplace)
		want   string
	}{
		{"name", func(w *v1alpha1.Workplace) { w.Name = "a-workplace-name-longer-than-24" }, "at most 24 characters"},
		{"domain", func(w *v1alpha1.Workplace) { w.Spec.Domain = "Not_A_Domain" }, "spec.domain"},
		{"gateway", func(w *v1alpha1.Workplace) {
			w.Spec.Routing = &v1alpha1.Routing{Mode: v1alpha1.RoutingGateway}
		}, "gateway.name: required when mode is Gateway"},
		{"issuer", func(w *v1alpha1.Workplace) {
			w.Spec.Routing = &v1alpha1.Routing{TLS: &v1alpha1.TLS{Mode: v1alpha1.TLSIssuer}}
		}, "issuer.name: required when mode is Issuer"},
		{"secret", func(w *v1alpha1.Workplace) {
			w.Spec.Routing = &v1alpha1.Routing{TLS: &v1alpha1.TLS{Mode: v1alpha1.TLSSecret}}
		}, "secretName: required when mode is Secret"},
		{"registry", func(w *v1alpha1.Workplace) { w.Spec.Images = &v1alpha1.Images{Registry: "https://mirror.example.org/"} }, "spec.images.registry"},
	}
	for _, tc := range refused {
		w := valid("refused-" + tc.name)
		tc.mutate(w)
		err := cl.Create(t.Context(), w)
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: create: %v; want Invalid naming %q", tc.name, err, tc.want)
		}
	}

	stalled := []struct {
		name   string
		mutate func(w *v1alpha1.Workplace)
		want   string
	}{
		{"component", func(w *v1alpha1.Workplace) { w.Spec.Components["video"] = "jitsy" }, `spec.components.video: unknown component "jitsy"`},
		{"profile", func(w *v1alpha1.Workplace) { w.Spec.Profile = "nosuchprofile" }, "spec.profile"},
		{"namespace-label", func(w *v1alpha1.Workplace) { w.Spec.Domain = "x.example" + strings.Repeat("o", 64) + ".org" }, "spec.domain"},
		{"denied-namespace", func(w *v1alpha1.Workplace) { w.Namespace = "default" }, `metadata.namespace: namespace "default" is not allowed`},
	}
	for _, tc := range stalled {
		w := valid("stalled-" + tc.name)
		tc.mutate(w)
		if err := cl.Create(t.Context(), w); err != nil {
			t.Errorf("%s: create: %v", tc.name, err)
			continue
		}
		t.Cleanup(func() { _ = cl.Delete(context.Background(), w) })
		got := waitWorkplace(t, cl, w.Namespace, w.Name, "Stalled", time.Minute, func(w *v1alpha1.Workplace) bool {
			s := meta.FindStatusCondition(w.Status.Conditions, "Stalled")
			return s != nil && s.Status == "True"
		})
		msg := meta.FindStatusCondition(got.Status.Conditions, "Stalled").Message
		if !strings.Contains(msg, tc.want) || !strings.Contains(msg, fmt.Sprintf("Workplace %q", w.Name)) {
			t.Errorf("%s: Stalled message %q; want it to name the document and %q", tc.name, msg, tc.want)
		}
	}
}

// kstatusOf computes the Workplace's status as Flux, Argo CD and kubectl's kstatus
// readers do.
func kstatusOf(t *testing.T, w *v1alpha1.Workplace) string {
	t.Helper()
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(w)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetAPIVersion(v1alpha1.GroupVersion.String())
	u.SetKind(v1alpha1.WorkplaceKind)
	res, err := kstatus.Compute(u)
	if err != nil {
		t.Fatal(err)
	}
	return res.Status.String()
}

// TestFunctionalNeverBlocksReady: the controller runs the checks of `platzwart check`
// after a successful apply and reports them as the Functional condition. On the local
// control plane no container runs and no public host resolves, so the checks fail,
// each with its reason, in bounded time, while Ready stays True.
func TestFunctionalNeverBlocksReady(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	repo := newGitRepo(t, workplaceDoc(t, ns, uniqueDomain(ns)))
	startController(t, c, controller.Options{
		Name:             "functional",
		Selector:         testSelector(t, ns),
		Source:           source.Options{URL: repo.url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()},
		Interval:         time.Hour,
		FunctionalChecks: true,
		CheckTimeout:     time.Second,
	})
	cl := workplaceClient(t, c)
	w := waitWorkplace(t, cl, ns, "demo", "Ready with a Functional verdict", 3*time.Minute, func(w *v1alpha1.Workplace) bool {
		return readyNow(w) && meta.FindStatusCondition(w.Status.Conditions, controller.ConditionFunctional) != nil
	})
	f := meta.FindStatusCondition(w.Status.Conditions, controller.ConditionFunctional)
	if f.Status != metav1.ConditionFalse || !strings.Contains(f.Message, "checks failed") || !strings.Contains(f.Message, "tls") {
		t.Errorf("Functional on a control plane without containers: %+v; want False naming the failed checks", f)
	}
	if got := kstatusOf(t, w); got != "Current" {
		t.Errorf("kstatus %s: a failing Functional condition must not change the Workplace's health", got)
	}
}

// TestCLIApplyAndControllerTogether: `platzwart apply` upgrades a workplace the
// controller also reconciles, and a Deployment is edited by hand meanwhile. While the
// CLI holds the workplace's Lease the controller writes nothing (its upgrade is not
// reverted, the hand edit waits); once the CLI is done, the controller brings the
// workplace back to what Git says, in one consistent history without rollbacks.
func TestCLIApplyAndControllerTogether(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	cs := clientsetOf(t, c)
	ns := c.NewNamespace(t)
	bin := buildPlatzwart(t)
	doc := workplaceDoc(t, ns, uniqueDomain(ns))
	repo := newGitRepo(t, doc)
	head := repo.git("rev-parse", "HEAD")
	startController(t, c, controller.Options{
		Name:     "together",
		Selector: testSelector(t, ns),
		Source:   source.Options{URL: repo.url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()},
		Interval: time.Hour,
		Requeue:  time.Second,
	})
	cl := workplaceClient(t, c)
	waitWorkplace(t, cl, ns, "demo", "Ready", 3*time.Minute, readyAt(head))
	before := snapshot(t, cs, ns)

	// The CLI applies a local change whose valkey waits for a node.
	label := "platzwart.io/together-" + ns
	dir := t.TempDir()
	local := workplaceDoc(t, ns, merge(uniqueDomain(ns), map[string]string{"  dataPolicy: Retain\n": "  dataPolicy: Retain\n" + unschedulableUntil(label)}))
	if err := os.WriteFile(filepath.Join(dir, "workplace.yaml"), []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	apply := exec.CommandContext(t.Context(), bin, "apply", dir, "--kubeconfig", c.KubeconfigPath())
	out := &strings.Builder{}
	apply.Stdout, apply.Stderr = out, out
	if err := apply.Start(); err != nil {
		t.Fatal(err)
	}
	applied := make(chan error, 1)
	go func() { applied <- apply.Wait() }()
	waitRevision(t, ns, "demo-valkey", 2)

	// A hand edit while the CLI holds the lease.
	deps, err := cs.AppsV1().Deployments(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil || len(deps.Items) < 2 {
		t.Fatalf("deployments: %v", err)
	}
	edited := ""
	for _, d := range deps.Items {
		if d.Name != "demo-valkey" && ptr.Deref(d.Spec.Replicas, 0) == 1 {
			edited = d.Name
			break
		}
	}
	scale := []byte(`{"spec":{"replicas":2}}`)
	if _, err := cs.AppsV1().Deployments(ns).Patch(t.Context(), edited, types.MergePatchType, scale, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // several controller cycles
	if r := latest(t, ns, "demo-valkey"); r.version != 2 {
		t.Fatalf("while the CLI held the lease demo-valkey went to %+v: the controller acted on it", r)
	}
	if d, _ := cs.AppsV1().Deployments(ns).Get(t.Context(), "demo-valkey", metav1.GetOptions{}); d == nil || d.Spec.Template.Spec.NodeSelector[label] != "yes" {
		t.Fatal("the controller reverted the CLI's upgrade while the CLI held the lease")
	}
	if d, _ := cs.AppsV1().Deployments(ns).Get(t.Context(), edited, metav1.GetOptions{}); d == nil || ptr.Deref(d.Spec.Replicas, 0) != 2 {
		t.Fatal("the controller corrected drift while the CLI held the lease")
	}

	labelNode(t, cs, label)
	select {
	case err := <-applied:
		if err != nil {
			t.Fatalf("platzwart apply: %v\n%s", err, out)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("platzwart apply did not finish:\n%s", out)
	}
	t.Logf("apply:\n%s", out)

	// Git wins again, consistently: valkey without the CLI's change, the edit undone.
	err = wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		v, err1 := cs.AppsV1().Deployments(ns).Get(ctx, "demo-valkey", metav1.GetOptions{})
		e, err2 := cs.AppsV1().Deployments(ns).Get(ctx, edited, metav1.GetOptions{})
		return err1 == nil && err2 == nil && v.Spec.Template.Spec.NodeSelector[label] == "" && ptr.Deref(e.Spec.Replicas, 0) == 1, nil
	})
	if err != nil {
		t.Fatalf("the controller did not bring the workplace back to Git after the CLI: %v", err)
	}
	var r revision
	err = wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		r = latest(t, ns, "demo-valkey")
		return r.ready, nil
	})
	if err != nil || r.version != 3 {
		t.Errorf("demo-valkey: %+v; want revision 3 (Git's state after the CLI's revision 2), ready", r)
	}
	waitWorkplace(t, cl, ns, "demo", "Ready at Git's revision", time.Minute, func(w *v1alpha1.Workplace) bool {
		return readyNow(w) && meta.FindStatusCondition(w.Status.Conditions, "Reconciling") == nil
	})
	assertKept(t, cs, ns, before)
}

// TestBackupInStatus: a component with a database at its oldest version, then the
// commit that lets it follow the newest: the controller walks the version path, and
// the backup taken before the risky step is in status.backups (component, version,
// database, claim, file, Job) with an Event.
func TestBackupInStatus(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	office := merge(uniqueDomain(ns), map[string]string{"    office: collabora": "    office: steps"})
	pinned := merge(office, map[string]string{"  dataPolicy: Retain\n": "  dataPolicy: Retain\n  versions: {steps: 1.0.0}\n"})
	repo := newGitRepo(t, workplaceDoc(t, ns, pinned))
	copyDir(t, "../testdata/steps", repo.work)
	first := repo.commitAll("", "steps at 1.0.0")
	startController(t, c, controller.Options{
		Name:          "backups",
		Selector:      testSelector(t, ns),
		Source:        source.Options{URL: repo.url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()},
		Interval:      500 * time.Millisecond,
		RetryInterval: time.Second,
	})
	cl := workplaceClient(t, c)
	waitWorkplace(t, cl, ns, "demo", "Ready at 1.0.0", 3*time.Minute, readyAt(first))
	// Watch the status while the path runs: the Reconciling condition names the
	// step in progress.
	steps := watchUpgradeSteps(t, c, ns)
	newest := repo.commitAll(workplaceDoc(t, ns, office), "steps follows the newest")
	w := waitWorkplace(t, cl, ns, "demo", "Ready at the newest", 3*time.Minute, readyAt(newest))
	seen := steps()
	for _, want := range []string{"upgrading demo-steps: step 1 of 2 to version 2.0.0: backup", "upgrading demo-steps: step 1 of 2 to version 2.0.0: upgrade",
		"upgrading demo-steps: step 2 of 2 to version 3.0.0: upgrade"} {
		if !slices.ContainsFunc(seen, func(m string) bool { return strings.HasPrefix(m, want) }) {
			t.Errorf("the status never showed %q while the path ran; it showed %q", want, seen)
		}
	}
	for _, comp := range w.Status.Components {
		if comp.Component == "steps" && comp.Version != "3.0.0" {
			t.Errorf("status.components: steps at version %q, want 3.0.0", comp.Version)
		}
	}
	if len(w.Status.Backups) != 1 {
		t.Fatalf("status.backups %+v, want the one backup before 2.0.0", w.Status.Backups)
	}
	b := w.Status.Backups[0]
	if b.Component != "steps" || b.Version != "2.0.0" || b.Database != "steps" || b.Claim != "demo-backups" ||
		!strings.HasSuffix(b.File, ".dump") || b.Job == "" || b.Finished == nil {
		t.Errorf("status.backups[0] %+v", b)
	}
}

// watchUpgradeSteps watches the Workplaces of ns and returns a function giving the
// messages of every Reconciling condition with reason UpgradeStep seen so far.
func watchUpgradeSteps(t *testing.T, c *cluster.Cluster, ns string) func() []string {
	t.Helper()
	s, err := controller.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	wc, err := client.NewWithWatch(c.Config(), client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(t.Context(), &v1alpha1.WorkplaceList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	var (
		mu   sync.Mutex
		seen []string
	)
	go func() {
		for ev := range w.ResultChan() {
			wp, ok := ev.Object.(*v1alpha1.Workplace)
			if !ok {
				continue
			}
			if cond := meta.FindStatusCondition(wp.Status.Conditions, controller.ConditionReconciling); cond != nil && cond.Reason == "UpgradeStep" {
				mu.Lock()
				if len(seen) == 0 || seen[len(seen)-1] != cond.Message {
					seen = append(seen, cond.Message)
				}
				mu.Unlock()
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}
