package scale_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/controller"
)

// workplaces watches the Workplaces a controller install applies from Git (an
// informer: waiting costs the API server nothing per poll).
type workplaces struct {
	cache cache.Cache
	logf  func(format string, args ...any)

	mu sync.Mutex
	// writes counts the changes of Workplaces seen; before and after are the last
	// one (the informer's objects: never modified).
	writes        int
	before, after *v1alpha1.Workplace
}

// watchWorkplaces starts an informer for the Workplaces labelled with the source
// name of a controller install, until the benchmark ends.
func watchWorkplaces(b *testing.B, c *cluster.Cluster, source string, logf func(string, ...any)) *workplaces {
	b.Helper()
	s := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(s); err != nil {
		b.Fatal(err)
	}
	ca, err := cache.New(c.Config(), cache.Options{
		Scheme:           s,
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.Workplace{}: {Label: labels.SelectorFromSet(labels.Set{controller.LabelSource: source})},
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := ca.Start(ctx); err != nil {
			b.Errorf("workplace informer: %v", err)
		}
	}()
	b.Cleanup(func() { cancel(); <-done })
	w := &workplaces{cache: ca, logf: logf}
	inf, err := ca.GetInformer(b.Context(), &v1alpha1.Workplace{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{UpdateFunc: w.updated}); err != nil {
		b.Fatal(err)
	}
	if !ca.WaitForCacheSync(b.Context()) {
		b.Fatal("the workplace informer did not sync")
	}
	return w
}

// updated records a change of a Workplace.
func (w *workplaces) updated(oldObj, newObj any) {
	before, ok1 := oldObj.(*v1alpha1.Workplace)
	after, ok2 := newObj.(*v1alpha1.Workplace)
	if !ok1 || !ok2 || before.ResourceVersion == after.ResourceVersion {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	w.before, w.after = before, after
}

// changes returns how many changes of Workplaces were seen, and the last one as the
// JSON of the status before and after.
func (w *workplaces) changes() (int, [2]string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.after == nil {
		return w.writes, [2]string{}
	}
	b, _ := json.Marshal(w.before.Status)
	a, _ := json.Marshal(w.after.Status)
	return w.writes, [2]string{string(b), string(a)}
}

// waitAll waits until n Workplaces satisfy cond and returns the time it took. It
// gives up after timeout, or at once when the controller process exits.
func (w *workplaces) waitAll(ctx context.Context, p *process, n int, what string, timeout time.Duration, cond func(*v1alpha1.Workplace) bool) (time.Duration, error) {
	start := time.Now()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	logged := start
	for {
		// Read-only: the informer's own objects, not copies of a thousand Workplaces
		// twice a second on a machine the controller needs.
		var list v1alpha1.WorkplaceList
		if err := w.cache.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		var pending *v1alpha1.Workplace
		done := 0
		for i := range list.Items {
			if cond(&list.Items[i]) {
				done++
			} else if pending == nil {
				pending = &list.Items[i]
			}
		}
		if done >= n {
			return time.Since(start), nil
		}
		if err := p.exited(); err != nil {
			return 0, fmt.Errorf("%s: %d of %d: %w", what, done, n, err)
		}
		if time.Since(start) > timeout {
			return 0, fmt.Errorf("%s: %d of %d after %s; for example %s", what, done, n, timeout, describe(pending))
		}
		if time.Since(logged) >= time.Minute {
			logged = time.Now()
			w.logf("%s: %d of %d after %s", what, done, n, time.Since(start).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tick.C:
		}
	}
}

// describe names a Workplace and its conditions.
func describe(w *v1alpha1.Workplace) string {
	if w == nil {
		return "none listed yet"
	}
	var conds []string
	for _, c := range w.Status.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s (%s: %s)", c.Type, c.Status, c.Reason, c.Message))
	}
	return fmt.Sprintf("%s/%s at %q: %s", w.Namespace, w.Name, w.Status.LastAppliedRevision, strings.Join(conds, "; "))
}

// readyAt holds when the Workplace is Ready and its last applied revision is commit.
func readyAt(commit string) func(*v1alpha1.Workplace) bool {
	return func(w *v1alpha1.Workplace) bool {
		return meta.IsStatusConditionTrue(w.Status.Conditions, controller.ConditionReady) &&
			strings.HasSuffix(w.Status.LastAppliedRevision, commit)
	}
}
