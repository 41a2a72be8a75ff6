package controller

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	crsource "sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/platzwart/platzwart/reconciler/release"
)

// watchSyncTimeout bounds the first list of a newly watched kind.
const watchSyncTimeout = time.Minute

// watch makes sure the target watches every kind of the releases' objects (metadata
// only, or whole but reduced where kstatus computes readiness from spec and status:
// see watchObject) and Secrets (Helm's release records, the generated Secrets), and that
// those watches have listed what exists. An event on any object of a Workplace
// wakes it (tracker.touched): a hand edit is corrected within a second of its event,
// not at the next periodic check.
func (r *WorkplaceReconciler) watch(ctx context.Context, t *target, namespace string, steps []release.Step) error {
	t.watchMu.Lock()
	defer t.watchMu.Unlock()
	if t.watched == nil {
		t.watched = map[schema.GroupVersionKind]watchState{}
	}
	if t.kinds == nil {
		t.kinds = map[types.NamespacedName]revisionKinds{}
	}
	kinds := []schema.GroupVersionKind{secretGVK}
	for _, s := range steps {
		id := types.NamespacedName{Namespace: namespace, Name: s.Release}
		if s.Action == release.ActionUninstall {
			delete(t.kinds, id)
			continue
		}
		// A revision's manifest never changes: its kinds are parsed once.
		known, ok := t.kinds[id]
		if !ok || known.revision != s.Revision {
			ks, err := s.Kinds()
			if err != nil {
				return fmt.Errorf("release %s: %w", s.Release, err)
			}
			known = revisionKinds{revision: s.Revision, kinds: ks}
			t.kinds[id] = known
		}
		kinds = append(kinds, known.kinds...)
	}
	for _, gvk := range kinds {
		if t.watched[gvk] == watchSynced {
			continue
		}
		obj := watchObject(gvk)
		if t.watched[gvk] == watchNone {
			src := crsource.Kind[client.Object](t.meta, obj, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
				return r.tracker.touched(t, o)
			}), desiredOrReadinessChanged())
			if err := r.ctrl.Watch(src); err != nil {
				return fmt.Errorf("watching %s in %s: %w", gvk.Kind, t, err)
			}
			t.watched[gvk] = watchRegistered
		}
		// The source's informer is the cache's: wait until it has listed.
		wctx, cancel := context.WithTimeout(ctx, watchSyncTimeout)
		_, err := t.meta.GetInformer(wctx, obj)
		cancel()
		if err != nil {
			return fmt.Errorf("watching %s in %s: %w", gvk.Kind, t, err)
		}
		t.watched[gvk] = watchSynced
	}
	return nil
}

// revisionKinds are the kinds of the manifest of one revision of a release.
type revisionKinds struct {
	revision int
	kinds    []schema.GroupVersionKind
}

// watchState is how far the watch of one kind is.
type watchState int

const (
	watchNone watchState = iota
	// watchRegistered: the controller has the source, its informer may not have
	// listed yet.
	watchRegistered
	watchSynced
)
