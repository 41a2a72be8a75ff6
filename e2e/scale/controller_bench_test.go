package scale_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	helmrelease "helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/storage/driver"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/controller"
	"github.com/platzwart/platzwart/reconciler/kube"
)

// Settings of the controller process under measurement.
const (
	// requeue is --requeue: every Workplace is enqueued once per interval (a cycle).
	requeue = 20 * time.Second
	// pollInterval is --interval: how often Git is polled (the converge commit is
	// picked up by a poll, not a webhook).
	pollInterval = 2 * time.Second
	// apiQPS and apiBurst are --kube-api-qps and --kube-api-burst: high enough that
	// the client-side rate limit is not what bounds the controller at 1000 workplaces.
	apiQPS, apiBurst = 500, 1000
	// defaultConcurrency is --concurrency unless PLATZWART_BENCH_CONCURRENCY says.
	defaultConcurrency = 8
)

// Settings of the benchmark.
const (
	// workplacesPerNode sizes the kwok nodes: a workplace runs three pods and keeps
	// two completed hook pods, and asks for about 1.5 GiB of memory (keycloak 1.25 GiB),
	// so a node (250 pods, 128 GiB) holds 40 with room for rolling updates.
	workplacesPerNode = 40
	// driftSamples is how many hand edits are timed, on different workplaces.
	driftSamples = 5
	// profileChunk is the length of each CPU profile taken while converging.
	profileChunk = 15 * time.Second
	// measuredCycles is how many no-op cycles are measured: the informers renew
	// their watches every 5 to 10 minutes, a request that falls into some cycles.
	measuredCycles = 3
	// scrapeInterval is how often /metrics is read while waiting for a cycle.
	scrapeInterval = 5 * time.Second
	// settleLimit bounds the wait for the install's last writes before the no-op
	// cycles are measured.
	settleLimit = 10 * time.Minute
)

// BenchmarkController measures a running `platzwart controller` process (built from
// cmd/platzwart, never the benchmark's own process) serving N workplaces from a Git
// repository on loopback, each in its own namespace with three releases (postgresql,
// valkey, keycloak): the install until every Workplace is Ready, a no-op cycle
// (duration and API requests, from the controller's metrics), drift correction
// latency after hand edits, the time to converge after one commit that changes every
// workplace, and the process's peak and resting RSS and steady CPU, with CPU and heap
// profiles saved. It runs once whatever -benchtime says; run one size at a time:
//
//	make bench-scale WORKPLACES=100
func BenchmarkController(b *testing.B) {
	bin := buildPlatzwart(b)
	for _, n := range []int{10, 100, 1000} {
		b.Run("workplaces="+strconv.Itoa(n), func(b *testing.B) {
			r := newRun(b, bin, n)
			r.install()
			r.noOpCycles()
			r.drift()
			r.converge()
			r.resources()
			r.stop()
		})
	}
}

// run is one benchmark of N workplaces against one controller process.
type run struct {
	b    *testing.B
	ctx  context.Context
	n    int
	cs   kubernetes.Interface
	dyn  dynamic.Interface
	repo *repository
	wps  *workplaces
	p    *process
	// out is where the controller's log, the profiles and progress.log go; kept.
	out      string
	progress *os.File
	// restRSS is the resident memory after a no-op cycle.
	restRSS int64
}

func newRun(b *testing.B, bin string, n int) *run {
	c := cluster.FromTest(b)
	cs, err := kubernetes.NewForConfig(c.Config())
	if err != nil {
		b.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.Config())
	if err != nil {
		b.Fatal(err)
	}
	r := &run{b: b, ctx: b.Context(), n: n, cs: cs, dyn: dyn, out: outputDir(b, n)}
	if r.progress, err = os.Create(filepath.Join(r.out, "progress.log")); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.progress.Close() })
	r.logf("output (controller log, profiles, this log) in %s", r.out)

	if c.RunDir() != "" {
		nodes := n/workplacesPerNode + 2
		if err := c.EnsureNodes(r.ctx, nodes); err != nil {
			b.Fatal(err)
		}
		r.logf("%d kwok nodes Ready", nodes)
	} else {
		r.logf("attached cluster: it must hold %d workplaces (about %d pods, %d GiB of memory requests)", n, 3*n, 3*n/2)
	}

	name := "scale-" + strconv.Itoa(n)
	r.repo = newRepository(b, name, n)
	b.Cleanup(r.deleteNamespaces) // after the process is killed: cleanups run last first
	// The process installs it too (--install-crds); the informer needs it first.
	kc, err := kube.Connect(kube.Options{Kubeconfig: c.KubeconfigPath()})
	if err != nil {
		b.Fatal(err)
	}
	if err := controller.InstallCRD(r.ctx, kc); err != nil {
		b.Fatal(err)
	}
	r.wps = watchWorkplaces(b, c, name, r.logf)

	concurrency := defaultConcurrency
	if s := os.Getenv("PLATZWART_BENCH_CONCURRENCY"); s != "" {
		if concurrency, err = strconv.Atoi(s); err != nil || concurrency < 1 {
			b.Fatalf("PLATZWART_BENCH_CONCURRENCY=%q: want a positive number", s)
		}
	}
	metrics := freeAddr(b)
	args := []string{"--kubeconfig", c.KubeconfigPath(), "--repo", r.repo.url, "--branch", "main",
		"--name", name, "--cache-dir", b.TempDir(),
		"--interval", pollInterval.String(), "--requeue", requeue.String(), "--concurrency", strconv.Itoa(concurrency),
		"--retry-interval", "5s", "--metrics-addr", metrics, "--probe-addr", "0", "--log-format", "text", "--install-crds",
		"--kube-api-qps", strconv.Itoa(apiQPS), "--kube-api-burst", strconv.Itoa(apiBurst), "--pprof",
		// The checks probe public URLs that do not resolve on the local control plane:
		// each would wait for its timeouts after every reconcile.
		"--functional-checks=false"}
	r.logf("platzwart controller %s", strings.Join(args, " "))
	r.p = startProcess(b, bin, filepath.Join(r.out, "controller.log"), metrics, args...)
	return r
}

// outputDir is $PLATZWART_BENCH_PROFILES/workplaces=N, or a new directory under the
// system's temporary directory; it is kept after the benchmark.
func outputDir(b *testing.B, n int) string {
	b.Helper()
	var dir string
	var err error
	if base := os.Getenv("PLATZWART_BENCH_PROFILES"); base != "" {
		dir = filepath.Join(base, "workplaces="+strconv.Itoa(n))
		err = os.MkdirAll(dir, 0o755)
	} else {
		dir, err = os.MkdirTemp("", "platzwart-scale-"+strconv.Itoa(n)+"-")
	}
	if err != nil {
		b.Fatal(err)
	}
	return dir
}

// logf logs to the benchmark and, timestamped, to progress.log (to follow a long run).
func (r *run) logf(format string, args ...any) {
	r.b.Helper()
	msg := fmt.Sprintf(format, args...)
	r.b.Log(msg)
	fmt.Fprintf(r.progress, "%s %s\n", time.Now().Format(time.TimeOnly), msg)
}

// report reports a figure and logs it (a later failure loses the reported ones).
func (r *run) report(v float64, unit string) {
	r.b.Helper()
	r.b.ReportMetric(v, unit)
	r.logf("%s: %.4g", unit, v)
}

func (r *run) fatal(err error) {
	r.b.Helper()
	r.logf("FAILED: %v", err)
	r.b.Fatal(err)
}

// install waits until every Workplace is Ready at the repository's commit, timed from
// the start of the process.
func (r *run) install() {
	took, err := r.wps.waitAll(r.ctx, r.p, r.n, "Ready at the first commit", 10*time.Minute+time.Duration(r.n)*4*time.Second, readyAt(r.repo.head()))
	if err != nil {
		r.fatal(err)
	}
	r.logf("install: %d workplaces Ready %s after the process started", r.n, took.Round(time.Millisecond))
	r.report(took.Seconds(), "install-s")
}

// noOpCycles measures cycles in which nothing changed: their duration, the API
// requests of the process during them, and the process's CPU and memory at rest.
func (r *run) noOpCycles() {
	first, err := r.p.scrape(r.ctx)
	if err != nil {
		r.fatal(err)
	}
	if !first.hasCycles {
		r.fatal(errors.New("the controller exports no platzwart_controller_cycles_total"))
	}
	settled, err := r.settle()
	if err != nil {
		r.fatal(err)
	}
	// The cycle in progress may have started before the writes stopped: measured
	// are the ones after it.
	s1, err := r.nextCycle(settled.cycles)
	if err != nil {
		r.fatal(err)
	}
	w1, _ := r.wps.changes()
	s2 := s1
	var durations []float64
	for range measuredCycles {
		if s2, err = r.nextCycle(s2.cycles); err != nil {
			r.fatal(err)
		}
		durations = append(durations, s2.cycleSeconds)
		if int(s2.cycleWorkplaces) != r.n {
			r.b.Errorf("a cycle covered %.0f Workplaces, want %d", s2.cycleWorkplaces, r.n)
		}
	}
	if w2, last := r.wps.changes(); w2 > w1 {
		r.logf("the Workplaces changed %d times in the cycles; the last change of a status, before and after:\n%s\n%s", w2-w1, last[0], last[1])
	}
	cycles := s2.cycles - s1.cycles
	r.logf("no-op cycles: %v s over %d Workplaces; in %.0f cycles (%s): %.0f API requests (%s), %.0f reconciles",
		durations, r.n, cycles, s2.at.Sub(s1.at).Round(time.Millisecond), s2.requests-s1.requests, requestsBetween(s1, s2), s2.reconciles-s1.reconciles)
	var sum float64
	for _, d := range durations {
		sum += d
	}
	r.report(sum/float64(len(durations)), "s/cycle")
	r.report(slices.Max(durations), "s/cycle-max")
	r.report((s2.requests-s1.requests)/cycles, "requests/cycle")
	r.report((s2.writes-s1.writes)/cycles, "writes/cycle")

	// Steady CPU over two cycles and the idle time between them, without scraping:
	// the metrics of a thousand Workplaces cost a scrape a good part of a second.
	u1, err := r.p.usage()
	if err != nil {
		r.fatal(err)
	}
	if err := sleep(r.ctx, 2*requeue); err != nil {
		r.fatal(err)
	}
	u2, err := r.p.usage()
	if err != nil {
		r.fatal(err)
	}
	r.logf("steady CPU: %s of CPU time in %s", u2.cpu-u1.cpu, u2.at.Sub(u1.at).Round(time.Millisecond))
	r.report((u2.cpu-u1.cpu).Seconds()/u2.at.Sub(u1.at).Seconds(), "cpu-cores")
	r.restRSS = u2.rss
	r.report(mib(u2.rss), "rss-rest-MiB")
	// What one scrape of /metrics costs the process (as a Prometheus would).
	s3, err := r.p.scrape(r.ctx)
	if err != nil {
		r.fatal(err)
	}
	u3, err := r.p.usage()
	if err != nil {
		r.fatal(err)
	}
	r.logf("one /metrics scrape: %d KiB in %s; %s of CPU time from the end of the idle window to its end",
		s3.size>>10, u3.at.Sub(s3.at).Round(time.Millisecond), u3.cpu-u2.cpu)
	r.report(float64(s3.size)/(1<<20), "metrics-MiB")

	// A profile of the next cycle (and the idle time to the one after), then the heap.
	cpu := filepath.Join(r.out, "noop-cpu.pb.gz")
	if err := r.p.profile(r.ctx, cpu, "profile", "seconds="+strconv.Itoa(int(requeue.Seconds()))); err != nil {
		r.fatal(err)
	}
	heap := filepath.Join(r.out, "heap-rest.pb.gz")
	if err := r.p.profile(r.ctx, heap, "heap", "gc=1"); err != nil {
		r.fatal(err)
	}
	r.logTop("no-op cycle CPU", cpu)
	r.logTop("heap at rest (inuse_space)", heap)
}

// settle waits until the process has made no write request for a --requeue interval:
// after the install its Event recorder is still writing (a second Event of a kind on
// a Workplace is a PATCH of the Event's series), which is not the work of a cycle.
// It gives up waiting after settleLimit and says so; the cycles are measured anyway.
// It returns the last sample.
func (r *run) settle() (sample, error) {
	start := time.Now()
	prev, err := r.p.scrape(r.ctx)
	if err != nil {
		return prev, err
	}
	for {
		if err := sleep(r.ctx, requeue); err != nil {
			return prev, err
		}
		cur, err := r.p.scrape(r.ctx)
		if err != nil {
			return prev, err
		}
		if cur.writes == prev.writes {
			r.logf("settled: no write request for %s, %s after the install", requeue, time.Since(start).Round(time.Second))
			return cur, nil
		}
		r.logf("still writing after the install: %s in %s", requestsBetween(prev, cur), cur.at.Sub(prev.at).Round(time.Millisecond))
		if time.Since(start) > settleLimit {
			r.logf("the writes did not stop within %s: measuring the cycles anyway", settleLimit)
			return cur, nil
		}
		prev = cur
	}
}

// nextCycle waits until the controller has completed a cycle more than after, and
// returns the metrics right after.
func (r *run) nextCycle(after float64) (sample, error) {
	deadline := time.Now().Add(3*requeue + 5*time.Minute)
	for {
		s, err := r.p.scrape(r.ctx)
		if err != nil {
			return s, err
		}
		if s.cycles > after {
			return s, nil
		}
		if err := r.p.exited(); err != nil {
			return s, err
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("no cycle completed within %s (cycles: %.0f)", 3*requeue+5*time.Minute, s.cycles)
		}
		// A scrape costs the controller CPU (its metrics grow with the Workplaces):
		// every few seconds; the figures read after a cycle ended include the idle
		// time since, when nothing is requested.
		if err := sleep(r.ctx, scrapeInterval); err != nil {
			return s, err
		}
	}
}

func (r *run) sampleNow() (sample, usage, error) {
	s, err := r.p.scrape(r.ctx)
	if err != nil {
		return s, usage{}, err
	}
	u, err := r.p.usage()
	return s, u, err
}

// driftTarget is an object of every workplace edited by hand.
type driftTarget struct{ resource, name string }

var driftTargets = []driftTarget{{"deployments", "demo-valkey"}, {"statefulsets", "demo-postgresql"}, {"deployments", "demo-keycloak"}}

// drift scales Deployments and StatefulSets of different workplaces by hand and times
// until the controller has put spec.replicas back (watched, not polled).
func (r *run) drift() {
	samples := min(driftSamples, r.n)
	var all []time.Duration
	for i := range samples {
		ns := r.repo.namespaces[i*r.n/samples]
		t := driftTargets[i%len(driftTargets)]
		took, err := r.driftLatency(ns, t, 3*requeue+time.Minute)
		if err != nil {
			r.fatal(err)
		}
		r.logf("drift: %s %s/%s scaled by hand, put back after %s", t.resource, ns, t.name, took.Round(time.Millisecond))
		all = append(all, took)
		// Let the correction's own rollout settle before the next edit.
		if err := sleep(r.ctx, time.Second); err != nil {
			r.fatal(err)
		}
	}
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	r.report(float64(sum.Milliseconds())/float64(len(all)), "drift-ms")
	r.report(float64(slices.Max(all).Milliseconds()), "drift-max-ms")
}

// driftLatency sets spec.replicas of the target one higher with a merge patch (as
// kubectl scale or edit would) and watches the object until the controller has put it
// back; the time runs from the patch's answer.
func (r *run) driftLatency(ns string, t driftTarget, timeout time.Duration) (time.Duration, error) {
	res := r.dyn.Resource(appsv1.SchemeGroupVersion.WithResource(t.resource)).Namespace(ns)
	cur, err := res.Get(r.ctx, t.name, metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("drift: %w", err)
	}
	want, _, err := unstructured.NestedInt64(cur.Object, "spec", "replicas")
	if err != nil {
		return 0, fmt.Errorf("drift: %s %s/%s: %w", t.resource, ns, t.name, err)
	}
	patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, want+1)
	edited, err := res.Patch(r.ctx, t.name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "scale-benchmark"})
	if err != nil {
		return 0, fmt.Errorf("drift: %w", err)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.ctx, timeout)
	defer cancel()
	w, err := res.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + t.name, ResourceVersion: edited.GetResourceVersion()})
	if err != nil {
		return 0, fmt.Errorf("drift: watch %s %s/%s: %w", t.resource, ns, t.name, err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if ev.Type == watch.Error || !ok {
			return 0, fmt.Errorf("drift: watch %s %s/%s: %v", t.resource, ns, t.name, ev.Object)
		}
		if got, _, _ := unstructured.NestedInt64(u.Object, "spec", "replicas"); got == want {
			return time.Since(start), nil
		}
	}
	return 0, fmt.Errorf("drift: %s %s/%s still has %d replicas %s after the edit (want %d back)", t.resource, ns, t.name, want+1, timeout, want)
}

// converge pushes one commit that changes valkey's values in the profile every
// workplace uses and waits until every Workplace is Ready at it, profiling the CPU of
// the process meanwhile.
func (r *run) converge() {
	before, ub, err := r.sampleNow()
	if err != nil {
		r.fatal(err)
	}
	commit := r.repo.changeProfile(1)
	pushed := time.Now()
	var (
		wg       sync.WaitGroup
		profiles []string
	)
	profiling, stopProfiling := context.WithCancel(r.ctx)
	defer stopProfiling()
	wg.Go(func() {
		for i := 0; profiling.Err() == nil; i++ {
			path := filepath.Join(r.out, fmt.Sprintf("converge-cpu-%02d.pb.gz", i))
			// The chunk in progress finishes after the converge: r.ctx, not profiling.
			if err := r.p.profile(r.ctx, path, "profile", "seconds="+strconv.Itoa(int(profileChunk.Seconds()))); err != nil {
				r.b.Errorf("converge profile: %v", err)
				return
			}
			profiles = append(profiles, path)
		}
	})
	_, err = r.wps.waitAll(r.ctx, r.p, r.n, "Ready at the converge commit", 10*time.Minute+time.Duration(r.n)*1500*time.Millisecond, readyAt(commit))
	took := time.Since(pushed)
	after, ua, serr := r.sampleNow()
	stopProfiling()
	wg.Wait()
	if err != nil {
		r.fatal(err)
	}
	if serr != nil {
		r.fatal(serr)
	}
	reconciles := after.reconciles - before.reconciles
	r.logf("converge: %d workplaces Ready at %s %s after the push; meanwhile %.0f reconciles (%.2f s each on average), %.0f API requests (%s), %s of CPU time",
		r.n, commit[:12], took.Round(time.Millisecond), reconciles, (after.reconcileSeconds-before.reconcileSeconds)/max(reconciles, 1),
		after.requests-before.requests, requestsBetween(before, after), (ua.cpu - ub.cpu).Round(time.Millisecond))
	r.report(took.Seconds(), "converge-s")
	// The change is in the cluster: valkey's configuration of a few workplaces.
	want := "maxmemory " + maxmemory(1)
	for _, i := range []int{0, r.n / 2, r.n - 1} {
		ns := r.repo.namespaces[i]
		cm, err := r.cs.CoreV1().ConfigMaps(ns).Get(r.ctx, "demo-valkey-config", metav1.GetOptions{})
		if err != nil {
			r.fatal(err)
		}
		found := false
		for _, v := range cm.Data {
			found = found || strings.Contains(v, want)
		}
		if !found {
			r.b.Errorf("%s/demo-valkey-config has no %q after the converge: %v", ns, want, cm.Data)
		}
	}
	if len(profiles) > 0 {
		r.logTop("converge CPU", profiles...)
	}
}

// resources reports the peak RSS and the resting RSS per object the workplaces' Helm
// releases manage.
func (r *run) resources() {
	u, err := r.p.usage()
	if err != nil {
		r.fatal(err)
	}
	r.report(mib(u.hwm), "rss-peak-MiB")
	objects, hooks, err := r.releaseObjects()
	if err != nil {
		r.fatal(err)
	}
	r.logf("the %d workplaces' deployed Helm releases hold %d objects (and %d hooks)", r.n, objects, hooks)
	r.report(float64(objects), "objects")
	if objects > 0 {
		r.report(float64(r.restRSS)/1024/float64(objects), "rss-rest-KiB/object")
	}
}

// releaseObjects counts the objects in the manifests of the deployed Helm releases of
// every workplace, and their hooks.
func (r *run) releaseObjects() (objects, hooks int, err error) {
	for _, ns := range r.repo.namespaces {
		rels, err := driver.NewSecrets(r.cs.CoreV1().Secrets(ns)).List(func(rel *helmrelease.Release) bool {
			return rel.Info != nil && rel.Info.Status == helmrelease.StatusDeployed
		})
		if err != nil {
			return 0, 0, fmt.Errorf("helm releases in %s: %w", ns, err)
		}
		for _, rel := range rels {
			objects += len(releaseutil.SplitManifests(rel.Manifest))
			hooks += len(rel.Hooks)
		}
	}
	return objects, hooks, nil
}

// stop sends SIGTERM and waits for the process to exit.
func (r *run) stop() {
	start := time.Now()
	if err := r.p.sigterm(2 * time.Minute); err != nil {
		r.b.Errorf("controller: %v", err)
	}
	r.logf("the controller stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
}

// deleteNamespaces deletes the workplaces' namespaces without waiting for them to go.
func (r *run) deleteNamespaces() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, ns := range r.repo.namespaces {
		err := r.cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			r.b.Logf("delete namespace %s: %v", ns, err)
			return
		}
	}
}

// logTop logs the top entries of profiles, by flat and by cumulative value.
func (r *run) logTop(what string, paths ...string) {
	for _, cum := range []bool{false, true} {
		top, err := pprofTop(r.ctx, 25, cum, paths...)
		if err != nil {
			r.b.Errorf("%s: %v", what, err)
			return
		}
		r.logf("%s profile (cum %v, %s):\n%s", what, cum, strings.Join(paths, " "), top)
	}
}

func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
