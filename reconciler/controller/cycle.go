package controller

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/platzwart/platzwart/api/v1alpha1"
)

// cycle enqueues every Workplace the controller serves once per interval (the
// periodic check that replaces a requeue timer per Workplace) and measures how long
// it takes until each of them was reconciled: with nothing changed, that is the
// no-op cycle of docs/benchmarks.md, answered from the watch caches.
type cycle struct {
	every  time.Duration
	client client.Reader // the manager's cached client: listing costs no request
	wake   chan<- event.GenericEvent
	m      *cycleMetrics
	log    logr.Logger

	mu      sync.Mutex
	pending map[types.NamespacedName]bool
	size    int
	started time.Time
}

// NeedLeaderElection is true: only the leader reconciles.
func (c *cycle) NeedLeaderElection() bool { return true }

// Start runs a cycle every interval until ctx is done.
func (c *cycle) Start(ctx context.Context) error {
	t := time.NewTicker(c.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c.run(ctx)
		}
	}
}

// run starts a cycle unless the previous one is still running.
func (c *cycle) run(ctx context.Context) {
	var list v1alpha1.WorkplaceList
	if err := c.client.List(ctx, &list); err != nil {
		c.log.Error(err, "listing Workplaces for the periodic check")
		return
	}
	c.mu.Lock()
	if len(c.pending) > 0 {
		n := len(c.pending)
		c.mu.Unlock()
		c.log.Info("the previous periodic check is still running; skipping this one", "left", n)
		return
	}
	var due []types.NamespacedName
	for i := range list.Items {
		if !waitsForNewInput(&list.Items[i]) {
			due = append(due, client.ObjectKeyFromObject(&list.Items[i]))
		}
	}
	c.pending = make(map[types.NamespacedName]bool, len(due))
	for _, w := range due {
		c.pending[w] = true
	}
	c.size = len(c.pending)
	c.started = time.Now()
	c.mu.Unlock()
	for _, key := range due {
		w := &v1alpha1.Workplace{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
		select {
		case c.wake <- event.GenericEvent{Object: w}:
		case <-ctx.Done():
			return
		}
	}
}

// done records that a Workplace's reconcile concluded; the last one of a cycle
// ends it.
func (c *cycle) done(w types.NamespacedName) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.pending[w] {
		return
	}
	delete(c.pending, w)
	if len(c.pending) == 0 {
		c.m.observe(time.Since(c.started), c.size)
	}
}

// cycleMetrics are the periodic check's figures.
type cycleMetrics struct {
	duration   prometheus.Gauge
	workplaces prometheus.Gauge
	total      prometheus.Counter
}

func newCycleMetrics(reg prometheus.Registerer) (*cycleMetrics, error) {
	m := &cycleMetrics{
		duration: prometheus.NewGauge(prometheus.GaugeOpts{Name: "platzwart_controller_cycle_duration_seconds",
			Help: "Duration of the last completed periodic check: from enqueueing every Workplace until the last of them was reconciled."}),
		workplaces: prometheus.NewGauge(prometheus.GaugeOpts{Name: "platzwart_controller_cycle_workplaces",
			Help: "Workplaces in the last completed periodic check."}),
		total: prometheus.NewCounter(prometheus.CounterOpts{Name: "platzwart_controller_cycles_total",
			Help: "Completed periodic checks."}),
	}
	for _, c := range []prometheus.Collector{m.duration, m.workplaces, m.total} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering the cycle metrics: %w", err)
		}
	}
	return m, nil
}

func (m *cycleMetrics) observe(d time.Duration, n int) {
	m.duration.Set(d.Seconds())
	m.workplaces.Set(float64(n))
	m.total.Inc()
}

// jitter spreads the full checks of many Workplaces over half an interval more,
// so that they do not all fall due in the same cycle.
func jitter(w types.NamespacedName, d time.Duration) time.Duration {
	h := fnv.New32a()
	_, _ = h.Write([]byte(w.String()))
	return d + time.Duration(uint64(d/2)*uint64(h.Sum32()%1000)/1000)
}

// waitsForNewInput reports whether a Workplace is suspended or Stalled by something
// only a new revision or spec can fix (its retries are used up, its document or
// source is invalid): the periodic check leaves it alone, as a requeue timer did.
func waitsForNewInput(w *v1alpha1.Workplace) bool {
	if w.Spec.Suspend {
		return true
	}
	c := meta.FindStatusCondition(w.Status.Conditions, ConditionStalled)
	if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != w.Generation {
		return false
	}
	switch c.Reason {
	case "RetriesExhausted", "InvalidWorkplace", "InvalidSource":
		return w.Annotations[AnnotationRevision] == w.Status.LastAttemptedRevision
	}
	return false
}
