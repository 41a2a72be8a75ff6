package release

import (
	"context"
	"errors"
	"sync"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/clusterreader"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/engine"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/statusreaders"
	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ErrNotWatched is what a StatusReader returns for an object it does not hold: the
// engine then reads it from the API server.
var ErrNotWatched = errors.New("not watched")

// StatusReader reads the objects readiness is computed from out of watch caches
// (Options.StatusReader). Get fills obj, an Unstructured with its kind set, with
// the object as the cache holds it: at least its metadata, and its spec and status
// where kstatus needs them (see NeedsStatus). It returns ErrNotWatched (wrapped) for
// a kind it does not hold, and a NotFound error for an object that does not exist.
type StatusReader interface {
	Get(ctx context.Context, key client.ObjectKey, obj *unstructured.Unstructured) error
}

// statusKinds are the kinds whose readiness kstatus computes from their spec and
// status (github.com/fluxcd/cli-utils pkg/kstatus/status/core.go,
// legacyTypes): a StatusReader must hold them whole, or not at all. For any other
// kind of a release (ConfigMap, Secret, NetworkPolicy, Ingress, RBAC, …) kstatus's
// generic rules read only status.conditions and status.observedGeneration, which
// those kinds do not have: metadata is enough.
//
// observed marks the kinds whose controllers report status.observedGeneration: a
// cached copy older than the engine's own write would look Current while the
// roll-out has not started (see cachedReader).
var statusKinds = map[schema.GroupKind]struct{ observed bool }{
	{Kind: "Service"}:                                                 {},
	{Kind: "Pod"}:                                                     {},
	{Kind: "PersistentVolumeClaim"}:                                   {},
	{Group: "apps", Kind: "StatefulSet"}:                              {observed: true},
	{Group: "apps", Kind: "DaemonSet"}:                                {observed: true},
	{Group: "apps", Kind: "Deployment"}:                               {observed: true},
	{Group: "apps", Kind: "ReplicaSet"}:                               {observed: true},
	{Group: "policy", Kind: "PodDisruptionBudget"}:                    {observed: true},
	{Group: "batch", Kind: "Job"}:                                     {observed: true},
	{Group: "batch", Kind: "CronJob"}:                                 {},
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}: {},
}

// NeedsStatus reports whether kstatus needs the whole object of kind gk (its spec
// and status), not only its metadata.
func NeedsStatus(gk schema.GroupKind) bool {
	_, ok := statusKinds[gk]
	return ok
}

// MetadataSuffices reports whether kstatus's verdict on an object of kind gk is the
// same from its metadata alone: kinds with no status that kstatus reads. Custom
// resources are not among them (they may carry conditions).
func MetadataSuffices(gk schema.GroupKind) bool {
	switch gk.Group {
	case "":
		switch gk.Kind {
		case "ConfigMap", "Secret", "ServiceAccount", "Endpoints", "LimitRange", "ResourceQuota":
			return true
		}
	case "rbac.authorization.k8s.io":
		return true
	case "networking.k8s.io":
		return gk.Kind == "NetworkPolicy" || gk.Kind == "Ingress" || gk.Kind == "IngressClass"
	}
	return false
}

// cachedReader is the client.Reader kstatus polls through when the engine has a
// StatusReader: objects come from the watch caches, so that a poll makes no request.
// Two exceptions read the API server: kinds the StatusReader does not hold, and the
// first read of each workload with an observedGeneration (statusKinds, observed) in one
// wait. That read sets a floor: a cached copy whose generation is below it (the
// watch has not delivered the engine's own patch yet) is not trusted, the API
// server's copy stands in until the cache catches up.
type cachedReader struct {
	cache  StatusReader
	direct client.Reader

	mu     sync.Mutex
	floors map[floorKey]*unstructured.Unstructured
}

type floorKey struct {
	gk  schema.GroupKind
	key types.NamespacedName
}

var _ client.Reader = (*cachedReader)(nil)

func (r *cachedReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return r.direct.Get(ctx, key, obj, opts...)
	}
	gk := u.GroupVersionKind().GroupKind()
	kind, whole := statusKinds[gk]
	if !whole && !MetadataSuffices(gk) {
		return r.direct.Get(ctx, key, obj, opts...)
	}
	if kind.observed {
		fk := floorKey{gk: gk, key: key}
		r.mu.Lock()
		floor, seen := r.floors[fk]
		r.mu.Unlock()
		if !seen {
			if err := r.direct.Get(ctx, key, u, opts...); err != nil {
				return err
			}
			r.mu.Lock()
			r.floors[fk] = u.DeepCopy()
			r.mu.Unlock()
			return nil
		}
		cached := &unstructured.Unstructured{}
		cached.SetGroupVersionKind(u.GroupVersionKind())
		err := r.cache.Get(ctx, key, cached)
		switch {
		case errors.Is(err, ErrNotWatched):
			return r.direct.Get(ctx, key, obj, opts...)
		case err != nil:
			return err
		case cached.GetGeneration() < floor.GetGeneration():
			floor.DeepCopyInto(u)
		default:
			cached.DeepCopyInto(u)
		}
		return nil
	}
	err := r.cache.Get(ctx, key, u)
	if errors.Is(err, ErrNotWatched) {
		return r.direct.Get(ctx, key, obj, opts...)
	}
	return err
}

// List is not used by the generic status reader; it reads the API server.
func (r *cachedReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return r.direct.List(ctx, list, opts...)
}

// poller returns the kstatus poller of one wait: from the watch caches when the
// engine has a StatusReader (every kind through kstatus's generic reader, which
// reads only the object itself, never its ReplicaSets or Pods), else kstatus's
// caching reader, which lists every kind of the set in the namespace per poll.
func (e *Engine) poller() *polling.StatusPoller {
	if e.opts.StatusReader == nil {
		return polling.NewStatusPoller(e.cluster.Client, e.cluster.Mapper, polling.Options{})
	}
	r := &cachedReader{cache: e.opts.StatusReader, direct: e.cluster.Client, floors: map[floorKey]*unstructured.Unstructured{}}
	return polling.NewStatusPoller(r, e.cluster.Mapper, polling.Options{
		CustomStatusReaders:  []engine.StatusReader{statusreaders.NewGenericStatusReader(e.cluster.Mapper, status.Compute)},
		ClusterReaderFactory: engine.ClusterReaderFactoryFunc(clusterreader.NewDirectClusterReader),
	})
}
