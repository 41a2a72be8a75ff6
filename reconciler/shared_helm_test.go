package reconciler_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/release"
)

// fetchCounter counts the requests that fetch what every Helm action of a cluster
// can share (the server version, discovery, OpenAPI documents), by path.
type fetchCounter struct {
	mu     sync.Mutex
	byPath map[string]int
}

// kind returns what a request fetches: "version", "discovery", "openapi" or "".
func fetchKind(r *http.Request) string {
	if r.Method != http.MethodGet {
		return ""
	}
	p := strings.TrimSuffix(r.URL.Path, "/")
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	switch {
	case p == "/version":
		return "version"
	case strings.HasPrefix(p, "/openapi/"):
		return "openapi"
	case p == "/api" || p == "/apis",
		parts[0] == "api" && len(parts) == 2,
		parts[0] == "apis" && len(parts) <= 3:
		return "discovery"
	}
	return ""
}

func (c *fetchCounter) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			if k := fetchKind(r); k != "" {
				c.mu.Lock()
				c.byPath[k+" "+r.URL.Path]++
				c.mu.Unlock()
			}
			return rt.RoundTrip(r)
		})
	})
	return cfg
}

// take returns the counts so far by path and starts again.
func (c *fetchCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.byPath
	c.byPath = map[string]int{}
	return out
}

// total sums the counts of one kind.
func total(counts map[string]int, kind string) int {
	n := 0
	for p, v := range counts {
		if strings.HasPrefix(p, kind+" ") {
			n += v
		}
	}
	return n
}

// TestHelmWorkIsSharedAcrossWorkplaces installs, then upgrades, two workplaces of
// three releases each at once through one Reconciler, as the controller does for
// the workplaces of one cluster, and counts what the Helm actions fetch: discovery
// and the OpenAPI documents (client-side validation of every install and upgrade)
// are fetched once for the cluster, not once per workplace, Apply or action. The
// server version is asked once per Helm action (Helm's own reachability check).
// After a discovery reset they are fetched again, once. Uninstalls use the same
// shared parts.
func TestHelmWorkIsSharedAcrossWorkplaces(t *testing.T) {
	c := cluster.FromTest(t)
	fetches := &fetchCounter{byPath: map[string]int{}}
	kc, err := kube.Connect(kube.Options{Kubeconfig: c.KubeconfigPath(), WrapConfig: fetches.wrap})
	if err != nil {
		t.Fatal(err)
	}
	var actions sync.Map // release → number of Helm install/upgrade actions
	rec := reconciler.New(kc, release.Options{Progress: func(e release.Event) {
		if e.Step == "install" || e.Step == "upgrade" {
			n, _ := actions.LoadOrStore(e.Release+" "+e.Step, 0)
			actions.Store(e.Release+" "+e.Step, n.(int)+1)
		}
	}}, "test")

	reduced := func(e *env, ns, round string) *plan.Plan {
		return e.plan(e.workplaceDir(map[string]string{
			"namespace: " + e.ns: "namespace: " + ns,
			"    video: jitsi ":  "    video: none #",
			// Mail off: its node ports are derived from the random namespace and
			// could collide with another parallel test's.
			"    office: collabora ": "    office: none\n    chat: none\n    files: none\n    mail: none #",
			"    bigbluebutton:\n":   fmt.Sprintf("    valkey: {podAnnotations: {round: %q}}\n    bigbluebutton:\n", round),
		}, nil))
	}
	e := &env{t: t, cluster: kc, rec: rec, ns: c.NewNamespace(t), events: &eventLog{}}
	namespaces := []string{e.ns, c.NewNamespace(t)}
	reconcileAll := func(round string) (releases int) {
		var wg sync.WaitGroup
		reports := make([]*reconciler.Report, len(namespaces))
		for i, ns := range namespaces {
			p := reduced(e, ns, round)
			releases += len(p.Releases)
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
				defer cancel()
				rep, err := rec.Reconcile(ctx, p)
				if err != nil {
					t.Errorf("workplace in %s: %v", ns, err)
					return
				}
				reports[i] = rep
			}()
		}
		wg.Wait()
		for _, rep := range reports {
			if rep == nil {
				t.FailNow()
			}
			for _, o := range rep.Result.Outcomes {
				if o.Err != "" {
					t.Errorf("release %s: %s", o.Release, o.Err)
				}
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		return releases
	}
	report := func(phase string, counts map[string]int) {
		paths := slices.Sorted(func(yield func(string) bool) {
			for p := range counts {
				if !yield(p) {
					return
				}
			}
		})
		for _, p := range paths {
			t.Logf("%s: %3d × %s", phase, counts[p], p)
		}
	}

	// The first Apply of the cluster fetches what is shared.
	releases := reconcileAll("1")
	install := fetches.take()
	report("install", install)
	if total(install, "openapi") == 0 {
		t.Error("installs fetched no OpenAPI document: is client-side validation still on?")
	}
	for p, n := range install {
		if !strings.HasPrefix(p, "version ") && n > 1 {
			t.Errorf("install of %d releases in 2 workplaces fetched %s %d times; want once", releases, p, n)
		}
	}

	// Upgrades of both workplaces: nothing shared is fetched again.
	reconcileAll("2")
	upgrade := fetches.take()
	report("upgrade", upgrade)
	upgrades := 0
	actions.Range(func(k, v any) bool {
		if strings.HasSuffix(k.(string), " upgrade") {
			upgrades += v.(int)
		}
		return true
	})
	if upgrades < len(namespaces) {
		t.Fatalf("%d upgrades; want at least one per workplace", upgrades)
	}
	if n := total(upgrade, "openapi") + total(upgrade, "discovery"); n > 0 {
		t.Errorf("%d upgrades in 2 workplaces fetched discovery or OpenAPI %d times; want 0 (fetched once for the cluster)", upgrades, n)
	}
	if n := total(upgrade, "version"); n > upgrades {
		t.Errorf("%d upgrades asked the server version %d times; want at most once per Helm action", upgrades, n)
	}
	t.Logf("%d releases installed, %d upgraded; server version asked %d times while upgrading", releases, upgrades, total(upgrade, "version"))

	// Discovery reset (CRDs added): the next upgrades derive capabilities and the
	// validator again, once for both workplaces.
	kc.ResetMapper()
	reconcileAll("3")
	refreshed := fetches.take()
	report("after reset", refreshed)
	if total(refreshed, "discovery") == 0 || total(refreshed, "openapi") == 0 {
		t.Error("upgrades after a discovery reset fetched no discovery or OpenAPI: capabilities and validator were not derived again")
	}
	for p, n := range refreshed {
		if !strings.HasPrefix(p, "version ") && n > 1 {
			t.Errorf("upgrades after a discovery reset fetched %s %d times; want once", p, n)
		}
	}

	// Uninstalls run on the same shared parts.
	for _, ns := range namespaces {
		gone, err := rec.Engine.Uninstall(t.Context(), ns, "demo")
		if err != nil {
			t.Fatalf("uninstall in %s: %v", ns, err)
		}
		states, err := rec.Engine.Status(t.Context(), ns, "demo")
		if err != nil || len(states) != 0 || len(gone) == 0 {
			t.Errorf("after uninstalling %v in %s: %d releases left, %v", gone, ns, len(states), err)
		}
	}
	if n := total(fetches.take(), "openapi"); n > 0 {
		t.Errorf("uninstalls fetched OpenAPI documents %d times; want 0", n)
	}
}
