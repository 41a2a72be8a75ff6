package release

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// resourceManager is fluxcd/pkg/ssa's manager with platzwart as field manager.
func (e *Engine) resourceManager() *ssa.ResourceManager {
	poller := polling.NewStatusPoller(e.cluster.Client, e.cluster.Mapper, polling.Options{})
	return ssa.NewResourceManager(e.cluster.Client, poller, ssa.Owner{Field: "platzwart", Group: "platzwart.io"})
}

// liveCache lists the live objects of one kind in one namespace once per Apply, so
// the drift check of every release costs one List per kind instead of requests per
// object.
type liveCache struct {
	e  *Engine
	mu sync.Mutex
	m  map[string]*liveList
}

type liveList struct {
	once  sync.Once
	items map[string]*unstructured.Unstructured
	err   error
}

func newLiveCache(e *Engine) *liveCache { return &liveCache{e: e, m: map[string]*liveList{}} }

// get returns the live object like obj, or nil when it does not exist.
func (c *liveCache) get(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	gvk := obj.GroupVersionKind()
	key := gvk.String() + "|" + obj.GetNamespace()
	c.mu.Lock()
	l, ok := c.m[key]
	if !ok {
		l = &liveList{}
		c.m[key] = l
	}
	c.mu.Unlock()
	l.once.Do(func() {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		var opts []client.ListOption
		if obj.GetNamespace() != "" {
			opts = append(opts, client.InNamespace(obj.GetNamespace()))
		}
		if err := c.e.cluster.Client.List(ctx, list, opts...); err != nil {
			l.err = fmt.Errorf("listing %s: %w", gvk.Kind, err)
			return
		}
		l.items = make(map[string]*unstructured.Unstructured, len(list.Items))
		for i := range list.Items {
			l.items[list.Items[i].GetName()] = &list.Items[i]
		}
	})
	if l.err != nil {
		return nil, l.err
	}
	return l.items[obj.GetName()], nil
}

// detectDrift compares every resource of a release manifest (parsed by objects) with
// the cluster and
// returns the resources changed or deleted by hand, each described ("Deployment
// demo/demo-keycloak: changed"). A resource whose manifest fields are all present
// with equal values in the live object is unchanged; any other is confirmed by a
// server-side apply dry-run (fluxcd/pkg/ssa), so defaulting never counts as drift.
func (e *Engine) detectDrift(ctx context.Context, live *liveCache, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, []string, error) {
	var drifted []*unstructured.Unstructured
	var what []string
	var rm *ssa.ResourceManager
	for _, obj := range objs {
		cur, err := live.get(ctx, obj)
		if err != nil {
			return nil, nil, err
		}
		id := fmt.Sprintf("%s %s/%s", obj.GetKind(), obj.GetNamespace(), obj.GetName())
		if cur == nil {
			drifted = append(drifted, obj)
			what = append(what, id+": deleted")
			continue
		}
		if contains(cur.Object, obj.Object) {
			continue
		}
		if rm == nil {
			rm = e.resourceManager()
		}
		entry, _, _, err := rm.Diff(ctx, obj.DeepCopy(), ssa.DiffOptions{})
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", id, err)
		}
		switch entry.Action {
		case ssa.CreatedAction:
			drifted = append(drifted, obj)
			what = append(what, id+": deleted")
		case ssa.ConfiguredAction:
			drifted = append(drifted, obj)
			what = append(what, id+": changed")
		}
	}
	sort.Strings(what)
	return drifted, what, nil
}

// contains reports whether every field of want is in have with an equal value
// (quantities compared by value, numbers by value).
func contains(have, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			if k == "status" {
				continue
			}
			hv, ok := h[k]
			if !ok {
				if wv == nil {
					continue
				}
				if m, isMap := wv.(map[string]any); isMap && len(m) == 0 {
					continue
				}
				return false
			}
			if !contains(hv, wv) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for i := range w {
			if !contains(h[i], w[i]) {
				return false
			}
		}
		return true
	}
	return scalarEqual(have, want)
}

// scalarEqual compares two decoded scalars, numbers and resource quantities by value.
func scalarEqual(a, b any) bool {
	if a == b {
		return true
	}
	af, aok := number(a)
	bf, bok := number(b)
	if aok && bok {
		return af == bf
	}
	as, aok := a.(string)
	bs, bok := b.(string)
	if aok && bok {
		qa, err1 := resource.ParseQuantity(as)
		qb, err2 := resource.ParseQuantity(bs)
		return err1 == nil && err2 == nil && qa.Cmp(qb) == 0
	}
	if aok != bok {
		// "1" in a manifest may come back as a quantity-normalized number, or the reverse.
		s, n := as, b
		if bok {
			s, n = bs, a
		}
		if nf, ok := number(n); ok {
			q, err := resource.ParseQuantity(s)
			return err == nil && q.AsApproximateFloat64() == nf
		}
	}
	return false
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

// correctDrift applies the release's own version of drifted resources (server-side
// apply, taking back the fields changed by hand) and recreates deleted ones.
func (e *Engine) correctDrift(ctx context.Context, drifted []*unstructured.Unstructured) error {
	if _, err := e.resourceManager().ApplyAll(ctx, drifted, ssa.DefaultApplyOptions()); err != nil {
		return fmt.Errorf("correcting drift: %w", err)
	}
	return nil
}

// allCurrent reports whether every resource of a manifest (parsed by objects, not
// changed since) is Current by kstatus,
// judged from the objects the live cache listed (no further requests). When it is not,
// the caller waits with polling.
func (e *Engine) allCurrent(ctx context.Context, live *liveCache, objs []*unstructured.Unstructured) bool {
	for _, obj := range objs {
		cur, err := live.get(ctx, obj)
		if err != nil || cur == nil {
			return false
		}
		res, err := status.Compute(cur)
		if err != nil || res.Status != status.CurrentStatus {
			return false
		}
	}
	return true
}
