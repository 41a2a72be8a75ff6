package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/controller"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/source"
)

// smallWorkplace is the example reduced to identity and its infrastructure
// (postgres, valkey, keycloak), in its own namespace with its own domain.
func smallWorkplace(t testing.TB, ns string) string {
	t.Helper()
	return workplaceDoc(t, ns, merge(uniqueDomain(ns), map[string]string{
		"    video: jitsi ":      "    video: none\n    chat: none\n    files: none\n    mail: none #",
		"    office: collabora ": "    office: none #",
		"    portal: portal ":    "    portal: none #",
	}))
}

// TestNoOpCycleServedFromTheWatches: once a Workplace was found as planned and ready,
// the periodic check answers it from the watch caches: whole cycles pass without a
// single request to the API server. Before, every check listed each kind (about a
// dozen requests per Workplace).
func TestNoOpCycleServedFromTheWatches(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	repo := newGitRepo(t, smallWorkplace(t, ns))
	head := repo.git("rev-parse", "HEAD")
	reqs := &cluster.Requests{}
	reg := prometheus.NewRegistry()
	startController(t, c, controller.Options{
		Name:       "noop",
		Selector:   testSelector(t, ns),
		Source:     source.Options{URL: repo.url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()},
		Interval:   time.Hour,
		Requeue:    time.Second,
		FullResync: time.Hour,
		Registry:   reg,
		Cluster:    kube.Options{WrapConfig: reqs.Wrap},
	})
	cl := workplaceClient(t, c)
	waitWorkplace(t, cl, ns, "demo", "Ready", 3*time.Minute, readyAt(head))

	cycles := func() float64 { return metricValue(t, reg, "platzwart_controller_cycles_total", nil) }
	var last []string
	err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		n := cycles()
		reqs.Reset()
		// Two whole cycles: the second starts and ends inside the window.
		if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, time.Minute, false, func(context.Context) (bool, error) {
			return cycles() >= n+2, nil
		}); err != nil {
			return false, err
		}
		last = reqs.List()
		return len(last) == 0, nil
	})
	if err != nil {
		t.Fatalf("no two periodic checks in a row without API requests; the last two made %d: %v", len(last), last[:min(len(last), 20)])
	}
	if got := metricValue(t, reg, "platzwart_controller_cycle_workplaces", nil); got != 1 {
		t.Errorf("platzwart_controller_cycle_workplaces = %v, want 1", got)
	}
	t.Logf("last cycle: %.4fs", metricValue(t, reg, "platzwart_controller_cycle_duration_seconds", nil))

	// A hand edit is still seen: its watch event wakes the Workplace at once.
	cs := clientsetOf(t, c)
	if _, err := cs.AppsV1().Deployments(ns).Patch(t.Context(), "demo-valkey", types.MergePatchType, []byte(`{"spec":{"replicas":2}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitReplicas(t, cs, ns, "demo-valkey", 1, time.Minute)
}

// TestDriftCorrectedAtItsWatchEvent: with no periodic check due for an hour, hand
// edits are corrected at their watch events: a Deployment scaled, a ConfigMap's data
// changed, a Service deleted. The time from each
// edit until the controller put it back is logged (the target, ≤ 1 s, is measured by
// `make bench-scale`).
func TestDriftCorrectedAtItsWatchEvent(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	cs := clientsetOf(t, c)
	ns := c.NewNamespace(t)
	repo := newGitRepo(t, smallWorkplace(t, ns))
	head := repo.git("rev-parse", "HEAD")
	startController(t, c, controller.Options{
		Name:       "events",
		Selector:   testSelector(t, ns),
		Source:     source.Options{URL: repo.url, Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()},
		Interval:   time.Hour,
		Requeue:    time.Hour,
		FullResync: time.Hour,
	})
	cl := workplaceClient(t, c)
	waitWorkplace(t, cl, ns, "demo", "Ready", 3*time.Minute, readyAt(head))
	before := snapshot(t, cs, ns)

	for i := range 3 {
		start := time.Now()
		if _, err := cs.AppsV1().Deployments(ns).Patch(t.Context(), "demo-valkey", types.MergePatchType, []byte(`{"spec":{"replicas":3}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		waitReplicas(t, cs, ns, "demo-valkey", 1, time.Minute)
		t.Logf("scale %d corrected after %s", i+1, time.Since(start).Round(time.Millisecond))
	}

	cms, err := cs.CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=demo-keycloak"})
	if err != nil || len(cms.Items) == 0 {
		t.Fatalf("no ConfigMap of demo-keycloak: %v", err)
	}
	cm := cms.Items[0]
	key := ""
	for k := range cm.Data {
		key = k
		break
	}
	if key == "" {
		t.Fatalf("ConfigMap %s has no data", cm.Name)
	}
	want := cm.Data[key]
	start := time.Now()
	patch := []byte(`{"data":{"` + key + `":"edited by hand"}}`)
	if _, err := cs.CoreV1().ConfigMaps(ns).Patch(t.Context(), cm.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "ConfigMap "+cm.Name+" restored", time.Minute, func(ctx context.Context) bool {
		got, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, cm.Name, metav1.GetOptions{})
		return err == nil && got.Data[key] == want
	})
	t.Logf("ConfigMap %s corrected after %s", cm.Name, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	if err := cs.CoreV1().Services(ns).Delete(t.Context(), "demo-valkey", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "Service demo-valkey recreated", time.Minute, func(ctx context.Context) bool {
		_, err := cs.CoreV1().Services(ns).Get(ctx, "demo-valkey", metav1.GetOptions{})
		return err == nil
	})
	t.Logf("deleted Service recreated after %s", time.Since(start).Round(time.Millisecond))

	w := waitWorkplace(t, cl, ns, "demo", "Ready", time.Minute, readyNow)
	if w.Status.LastAppliedRevision == "" || !strings.HasSuffix(w.Status.LastAppliedRevision, head) {
		t.Errorf("lastAppliedRevision %q, want %s", w.Status.LastAppliedRevision, head)
	}
	assertKept(t, cs, ns, before)
}

func waitReplicas(t *testing.T, cs kubernetes.Interface, ns, name string, want int32, timeout time.Duration) {
	t.Helper()
	poll(t, fmt.Sprintf("Deployment %s back to %d replicas", name, want), timeout, func(ctx context.Context) bool {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && ptr.Deref(d.Spec.Replicas, 0) == want
	})
}

// poll waits until cond holds, polling every 20 ms.
func poll(t *testing.T, what string, timeout time.Duration, cond func(ctx context.Context) bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		return cond(ctx), nil
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
