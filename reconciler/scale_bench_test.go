package reconciler_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/plan"
)

// BenchmarkNoOpCycle reconciles N installed workplaces where nothing changed, four at
// a time like the controller's default --concurrency, and reports the wall time of
// one cycle over all of them, API requests, mutating requests (must be 0), and the
// process's resident memory at rest and at the peak of the cycles. The workplaces
// are the example reduced to identity and its infrastructure (postgres, redis,
// keycloak: 3 releases each) so that 100 of them fit the local control plane's kwok
// nodes. Run with -benchtime=3x.
func BenchmarkNoOpCycle(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(strconv.Itoa(n), func(b *testing.B) { benchmarkNoOpCycle(b, n) })
	}
}

func benchmarkNoOpCycle(b *testing.B, n int) {
	c := cluster.FromTest(b)
	e := newEnv(b)
	plans := make([]*plan.Plan, n)
	for i := range plans {
		ns := e.ns
		if i > 0 {
			ns = c.NewNamespace(b)
		}
		dir := e.workplaceDir(map[string]string{
			"namespace: " + e.ns:     "namespace: " + ns,
			"    video: jitsi ":      "    video: none #",
			"    office: collabora ": "    office: none\n    chat: none\n    files: none #",
		}, nil)
		plans[i] = e.plan(dir)
	}
	// Install them all, four at a time.
	cycle := func() time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 4)
		for _, p := range plans {
			wg.Add(1)
			go func(p *plan.Plan) {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(b.Context(), 5*time.Minute)
				defer cancel()
				rep, err := e.rec.Reconcile(ctx, p)
				if err != nil {
					b.Error(err)
					return
				}
				if rep.Failed() {
					b.Errorf("workplace %s: %+v", p.Namespace, rep.Result.Failed())
				}
			}(p)
		}
		wg.Wait()
		return time.Since(start)
	}
	install := cycle()
	b.Logf("%d workplaces installed in %s", n, install.Round(time.Millisecond))
	runtime.GC()
	rest := rss()
	e.count.reset()
	peak := rest
	var total time.Duration
	for b.Loop() {
		total += cycle()
		if r := rss(); r > peak {
			peak = r
		}
	}
	all, mutating := e.count.snapshot()
	b.ReportMetric(total.Seconds()/float64(b.N), "s/cycle")
	b.ReportMetric(float64(all)/float64(b.N), "requests/cycle")
	b.ReportMetric(float64(len(mutating))/float64(b.N), "mutating/cycle")
	b.ReportMetric(float64(rest)/(1<<20), "rss-rest-MiB")
	b.ReportMetric(float64(peak)/(1<<20), "rss-peak-MiB")
	if len(mutating) > 0 {
		b.Errorf("no-op cycles made mutating requests: %v", mutating[:min(len(mutating), 10)])
	}
}

// rss returns the resident set size of this process in bytes (Linux), 0 elsewhere.
func rss() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
