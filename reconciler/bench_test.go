package reconciler_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/release"
	"github.com/platzwart/platzwart/reconciler/secrets"
)

// BenchmarkNoOpReconcile measures a reconcile of the installed example where nothing
// changed: wall time per op, API requests per op, mutating requests and Helm actions
// per op (both must be 0).
func BenchmarkNoOpReconcile(b *testing.B) {
	e := newEnv(b)
	p := e.plan(e.workplaceDir(nil, nil))
	e.reconcile(p)
	e.count.reset()
	actions := 0
	for b.Loop() {
		rep := e.reconcile(p)
		for _, o := range rep.Result.Outcomes {
			if o.Action != release.ActionUnchanged {
				actions++
			}
		}
	}
	all, mutating := e.count.snapshot()
	b.ReportMetric(float64(all)/float64(b.N), "requests/op")
	b.ReportMetric(float64(len(mutating))/float64(b.N), "mutating/op")
	b.ReportMetric(float64(actions)/float64(b.N), "helm-actions/op")
}

// BenchmarkFirstInstall installs the whole example with platzwart, then the same
// rendered charts and values one after another with `helm upgrade --install --wait`
// in dependency order (the way helmfile-based stacks deploy), on the same control
// plane, and reports both times and their ratio. Run it with -benchtime=1x.
func BenchmarkFirstInstall(b *testing.B) {
	helm := helmBinary(b)
	var pw, cli time.Duration
	for b.Loop() {
		e := newEnv(b)
		p := e.plan(e.workplaceDir(nil, nil))
		start := time.Now()
		rep := e.reconcile(p)
		pw += time.Since(start)
		if rep.Failed() {
			b.Fatalf("platzwart: %+v", rep.Result.Failed())
		}

		// The same workplace, by hand, in a second namespace (and with its own JVB
		// NodePort): secrets first (both sides need them), then each release in the
		// plan's order.
		c := cluster.FromTest(b)
		h := newEnv(b)
		ns := h.ns
		hp := h.plan(h.workplaceDir(nil, nil))
		if _, err := (&secrets.Manager{Client: h.cluster.Clientset}).Ensure(b.Context(), hp, nil); err != nil {
			b.Fatal(err)
		}
		tmp := b.TempDir()
		start = time.Now()
		for _, r := range hp.Releases {
			values, err := json.Marshal(r.Values)
			if err != nil {
				b.Fatal(err)
			}
			vf := filepath.Join(tmp, r.Name+".json")
			if err := os.WriteFile(vf, values, 0o600); err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
			cmd := exec.CommandContext(ctx, helm, "upgrade", "--install", r.Name, filepath.Join("..", r.ChartPath),
				"-n", ns, "-f", vf, "--wait", "--timeout", r.Timeout.String(), "--kubeconfig", c.KubeconfigPath())
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil {
				b.Fatalf("helm upgrade --install %s: %v\n%s", r.Name, err, out)
			}
		}
		cli += time.Since(start)
	}
	b.ReportMetric(pw.Seconds()/float64(b.N), "platzwart-s/op")
	b.ReportMetric(cli.Seconds()/float64(b.N), "helm-cli-s/op")
	b.ReportMetric(pw.Seconds()/cli.Seconds(), "ratio")
}

// helmBinary returns the helm CLI the Makefile builds, building it when missing.
func helmBinary(b *testing.B) string {
	b.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(cache, "platzwart", "bin", "helm")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	cmd := exec.CommandContext(b.Context(), "go", "build", "-o", bin, "helm.sh/helm/v3/cmd/helm")
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=auto")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building helm: %v\n%s", err, out)
	}
	return bin
}
