package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler"
	"github.com/platzwart/platzwart/reconciler/kube"
)

// secretGVK is the kind every target watches from the start: Helm's release records
// and the generated Secrets (metadata only, never their data).
var secretGVK = corev1.SchemeGroupVersion.WithKind("Secret")

// target is one cluster Workplaces are reconciled into: the controller's own, or one
// a Workplace names with spec.kubeConfig. Each has its own clients, reconciler,
// metadata-only watches and concurrency, so that a slow or unreachable cluster
// holds only its own slots.
type target struct {
	// name is "" for the controller's own cluster, else the kubeConfig Secret
	// ("<namespace>/<name>").
	name string
	// version is the resourceVersion of the kubeConfig Secret the clients were built
	// from.
	version string
	kube    *kube.Cluster
	rec     *reconciler.Reconciler
	// meta holds the metadata-only informers of the kinds the releases manage.
	meta   cache.Cache
	cancel context.CancelFunc
	// slots bound the full reconciles running against this cluster at once.
	slots chan struct{}

	watchMu sync.Mutex
	watched map[schema.GroupVersionKind]watchState
	// kinds holds the kinds of the last revision seen of each release (by namespace
	// and name), parsed once per revision.
	kinds map[types.NamespacedName]revisionKinds

	mu sync.Mutex
	// line holds the Workplaces waiting for a slot, in order, once each (queued).
	line      []types.NamespacedName
	queued    map[types.NamespacedName]bool
	probed    time.Time
	downUntil time.Time
	downFor   time.Duration
	downErr   error
}

// String names the target in logs and conditions.
func (t *target) String() string {
	if t.name == "" {
		return "the controller's cluster"
	}
	return "the cluster of kubeConfig Secret " + t.name
}

// tryAcquire takes a slot without waiting. When none is free, w is put in line and
// woken when a slot is released: it holds no worker meanwhile, and is not polled.
func (t *target) tryAcquire(w types.NamespacedName) bool {
	select {
	case t.slots <- struct{}{}:
		return true
	default:
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// A slot may have been released between the two steps: try once more under
	// the lock release takes too.
	select {
	case t.slots <- struct{}{}:
		return true
	default:
	}
	if t.queued == nil {
		t.queued = map[types.NamespacedName]bool{}
	}
	if !t.queued[w] {
		t.queued[w] = true
		t.line = append(t.line, w)
	}
	return false
}

// release frees a slot and returns the Workplace next in line to be woken, if any.
func (t *target) release() (types.NamespacedName, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	<-t.slots
	if len(t.line) == 0 {
		return types.NamespacedName{}, false
	}
	next := t.line[0]
	t.line = t.line[1:]
	delete(t.queued, next)
	return next, true
}

// Reachability of another cluster is probed at most this often while it answers;
// one that does not is left alone for a doubling pause (probeDown…probeDownMax).
const (
	probeEvery   = 10 * time.Second
	probeTimeout = 3 * time.Second
	probeDown    = 5 * time.Second
	probeDownMax = 2 * time.Minute
)

// reachable reports whether the cluster answered its last probe, probing its
// /readyz when the last probe is older than probeEvery. The controller's own
// cluster is not probed (nothing works without it anyway). While a cluster is
// down, it returns the last error until the pause ends, without a request.
func (t *target) reachable(ctx context.Context) error {
	if t.name == "" {
		return nil
	}
	t.mu.Lock()
	now := time.Now()
	if now.Before(t.downUntil) {
		err := t.downErr
		t.mu.Unlock()
		return err
	}
	if t.downErr == nil && now.Sub(t.probed) < probeEvery {
		t.mu.Unlock()
		return nil
	}
	t.mu.Unlock()
	return t.probe(ctx)
}

// down reports whether the last probe failed, without a request.
func (t *target) down() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.downErr != nil
}

// watchHealth probes another cluster every probeEvery until ctx is done and calls
// wentDown when it stops answering, so that its Workplaces, answered from the
// watch caches while verified, report it.
func (t *target) watchHealth(ctx context.Context, wentDown func(*target)) {
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		wasDown := t.down()
		t.mu.Lock()
		paused := time.Now().Before(t.downUntil)
		t.mu.Unlock()
		if paused {
			continue
		}
		if err := t.probe(ctx); err != nil && !wasDown && ctx.Err() == nil {
			wentDown(t)
		}
	}
}

// probe asks the cluster's /readyz, bounded by probeTimeout, and records the answer.
func (t *target) probe(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	err := t.kube.Clientset.Discovery().RESTClient().Get().AbsPath("/readyz").Do(pctx).Error()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.probed = time.Now()
	if err == nil {
		t.downErr, t.downFor, t.downUntil = nil, 0, time.Time{}
		return nil
	}
	t.downFor = min(max(2*t.downFor, probeDown), probeDownMax)
	t.downUntil = t.probed.Add(t.downFor)
	t.downErr = fmt.Errorf("%s is unreachable (next try in %s): %w", t, t.downFor, err)
	return t.downErr
}

// targets are the clusters of one controller, built on first use and rebuilt when
// a kubeConfig Secret changes.
type targets struct {
	// local is the controller's own cluster.
	local *target
	// reader reads kubeConfig Secrets from the controller's cluster (uncached: their
	// data is never held in a cache).
	reader client.Reader
	// newTarget builds a target's clients and reconciler from its cluster.
	newTarget func(name, version string, kc *kube.Cluster) (*target, error)
	// connect builds clients from kubeconfig bytes.
	connect func(data []byte) (*kube.Cluster, error)
	// wentDown is called when another cluster stops answering its probes.
	wentDown func(*target)
	log      logr.Logger

	// ctx is the manager's: the targets' informers live as long as the controller.
	ready chan struct{}
	ctx   context.Context

	mu     sync.Mutex
	remote map[string]*target
}

// Start keeps the targets' informers running until ctx is done (a manager Runnable).
func (ts *targets) Start(ctx context.Context) error {
	ts.ctx = ctx
	close(ts.ready)
	<-ctx.Done()
	return nil
}

// NeedLeaderElection is true: only the leader reconciles.
func (ts *targets) NeedLeaderElection() bool { return true }

// kubeConfigError says why a Workplace's spec.kubeConfig cannot be used; nothing
// was written anywhere.
type kubeConfigError struct {
	secret types.NamespacedName
	key    string
	err    error
	// missing is true when the Secret or key does not exist (yet).
	missing bool
}

func (e *kubeConfigError) Error() string {
	return fmt.Sprintf("spec.kubeConfig.secretRef: %v", e.err)
}

func (e *kubeConfigError) Unwrap() error { return e.err }

// For returns the cluster w is reconciled into. The kubeConfig Secret's version is
// read from the metadata cache, so an unchanged Secret costs no request; a changed
// one is read once and its clients rebuilt.
func (ts *targets) For(ctx context.Context, w *v1alpha1.Workplace) (*target, error) {
	select {
	case <-ts.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	ref := w.Spec.KubeConfig
	if ref == nil {
		return ts.local, nil
	}
	key := types.NamespacedName{Namespace: w.Namespace, Name: ref.SecretRef.Name}
	dataKey := ref.SecretRef.Key
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(secretGVK)
	if err := ts.local.meta.Get(ctx, key, m); err != nil {
		return nil, &kubeConfigError{secret: key, key: dataKey, err: err, missing: apierrors.IsNotFound(err)}
	}
	name := key.String()
	ts.mu.Lock()
	t := ts.remote[name]
	ts.mu.Unlock()
	if t != nil && t.version == m.ResourceVersion {
		return t, nil
	}
	var s corev1.Secret
	if err := ts.reader.Get(ctx, key, &s); err != nil {
		return nil, &kubeConfigError{secret: key, key: dataKey, err: err, missing: apierrors.IsNotFound(err)}
	}
	data, err := kube.KubeconfigFromSecret(&s, dataKey)
	if err != nil {
		return nil, &kubeConfigError{secret: key, key: dataKey, err: err, missing: true}
	}
	kc, err := ts.connect(data)
	if err != nil {
		return nil, &kubeConfigError{secret: key, key: dataKey, err: err}
	}
	nt, err := ts.newTarget(name, s.ResourceVersion, kc)
	if err != nil {
		return nil, fmt.Errorf("spec.kubeConfig: Secret %s: %w", key, err)
	}
	cctx, cancel := context.WithCancel(ts.ctx)
	nt.cancel = cancel
	go func() {
		if err := nt.meta.Start(cctx); err != nil {
			ts.log.Error(err, "watch cache stopped", "target", name)
		}
	}()
	go nt.watchHealth(cctx, ts.wentDown)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if cur := ts.remote[name]; cur != nil {
		if cur.version == nt.version {
			// Another reconcile built it meanwhile.
			nt.cancel()
			return cur, nil
		}
		// The kubeconfig changed: the old clients' informers stop. Their watches stay
		// registered with the controller but deliver nothing more.
		cur.cancel()
	}
	if ts.remote == nil {
		ts.remote = map[string]*target{}
	}
	ts.remote[name] = nt
	ts.log.Info("connected to a cluster", "target", name, "host", kc.Config.Host)
	return nt, nil
}

// metadataOnly keeps of a watched object only what the controller maps events with
// (name, namespace, versions, labels, Helm's release annotations), bounding the
// memory per object.
func metadataOnly(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	out := &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta}
	out.Name, out.Namespace, out.UID = m.Name, m.Namespace, m.UID
	out.ResourceVersion, out.Generation = m.ResourceVersion, m.Generation
	out.Labels = m.Labels
	if rel := m.Annotations[helmReleaseName]; rel != "" {
		out.Annotations = map[string]string{helmReleaseName: rel, helmReleaseNamespace: m.Annotations[helmReleaseNamespace]}
	}
	return out, nil
}

// newMetadataCache returns the informer cache of one target: metadata only (what
// metadataOnly keeps), or for the kinds kstatus reads whole what statusOnly keeps;
// in the given namespaces, or all when none.
func newMetadataCache(kc *kube.Cluster, scheme *runtime.Scheme, namespaces []string) (cache.Cache, error) {
	opts := cache.Options{Scheme: scheme, Mapper: kc.Mapper, DefaultTransform: reduce}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	// Watches are long-lived: the config without the request timeout.
	c, err := cache.New(kc.WatchConfig(), opts)
	if err != nil {
		return nil, fmt.Errorf("watch cache of %s: %w", kc.Config.Host, err)
	}
	return c, nil
}
