package controller

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/secrets"
)

// Helm's annotations on every object of a release (helm.sh/helm/v3 pkg/action
// validate.go, setMetadataVisitor).
const (
	helmReleaseName      = "meta.helm.sh/release-name"
	helmReleaseNamespace = "meta.helm.sh/release-namespace"
)

// planInput is everything a Workplace's plan is built from: equal inputs give an
// equal plan, so a Workplace whose input did not change needs no new plan.
type planInput struct {
	uid        types.UID
	generation int64
	revision   string
	// catalog is the catalog instance the plan was built with: one per Git revision,
	// or the built-in one.
	catalog *catalog.Catalog
	// target is the cluster the Workplace is reconciled into (rebuilt when its
	// kubeconfig Secret changes).
	target *target
}

// tracker knows which Workplaces are verified: a full reconcile found nothing to
// change and everything ready, and no watch event touched any of their objects since
// that reconcile started. A verified Workplace whose plan input is unchanged is
// answered from memory, without a request to any API server (ADR 0015).
type tracker struct {
	mu    sync.Mutex
	state map[types.NamespacedName]*trackState
	// releases maps, per target, a release (namespace/name) to its Workplace, for
	// events on objects that carry Helm's annotations but not platzwart's label.
	releases map[*target]map[types.NamespacedName]types.NamespacedName
}

type trackState struct {
	target *target
	// seq counts the watch events on the Workplace's objects.
	seq uint64
	// verified is seq when the last verifying reconcile started; ok says whether
	// there was one since the last failure or change.
	verified uint64
	ok       bool
	input    planInput
	at       time.Time
}

func newTracker() *tracker {
	return &tracker{state: map[types.NamespacedName]*trackState{}, releases: map[*target]map[types.NamespacedName]types.NamespacedName{}}
}

func (t *tracker) get(w types.NamespacedName) *trackState {
	s := t.state[w]
	if s == nil {
		s = &trackState{}
		t.state[w] = s
	}
	return s
}

// begin records the cluster and releases of a Workplace whose full reconcile
// starts now (so that events on its objects find it from now on) and returns its
// event count.
func (t *tracker) begin(w types.NamespacedName, tg *target, releases []string, namespace string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.get(w)
	if s.target != nil {
		t.dropReleases(s.target, w)
	}
	s.target = tg
	idx := t.releases[tg]
	if idx == nil {
		idx = map[types.NamespacedName]types.NamespacedName{}
		t.releases[tg] = idx
	}
	for _, rel := range releases {
		idx[types.NamespacedName{Namespace: namespace, Name: rel}] = w
	}
	return s.seq
}

// verify records that a full reconcile that started at seq found nothing to change
// and everything ready, with its plan input.
func (t *tracker) verify(w types.NamespacedName, seq uint64, in planInput) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.get(w)
	s.verified, s.ok, s.input, s.at = seq, true, in, time.Now()
}

// invalidate forgets that a Workplace was verified: the next reconcile is a full one.
func (t *tracker) invalidate(w types.NamespacedName) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.state[w]; s != nil {
		s.ok = false
	}
}

// forget drops a deleted Workplace.
func (t *tracker) forget(w types.NamespacedName) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.state[w]; s != nil && s.target != nil {
		t.dropReleases(s.target, w)
	}
	delete(t.state, w)
}

func (t *tracker) dropReleases(tg *target, w types.NamespacedName) {
	for rel, owner := range t.releases[tg] {
		if owner == w {
			delete(t.releases[tg], rel)
		}
	}
}

// clean reports whether a Workplace may be answered without a full reconcile: it
// was verified with the same plan input, no event touched its objects since, and
// the verification is younger than maxAge.
func (t *tracker) clean(w types.NamespacedName, in planInput, maxAge time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.state[w]
	return s != nil && s.ok && s.seq == s.verified && s.input == in && time.Since(s.at) < maxAge
}

// touched maps a watch event on an object of target tg to the Workplace it belongs
// to, counting the event: the Workplace's label (generated Secrets, Helm's release
// records) or Helm's release annotations (every object of a release). Objects of
// no known Workplace map to nothing.
func (t *tracker) touched(tg *target, obj client.Object) []reconcile.Request {
	t.mu.Lock()
	defer t.mu.Unlock()
	var w types.NamespacedName
	if name := obj.GetLabels()[secrets.LabelWorkplace]; name != "" {
		w = types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}
	} else if rel := obj.GetAnnotations()[helmReleaseName]; rel != "" {
		ns := obj.GetAnnotations()[helmReleaseNamespace]
		if ns == "" {
			ns = obj.GetNamespace()
		}
		owner, ok := t.releases[tg][types.NamespacedName{Namespace: ns, Name: rel}]
		if !ok {
			return nil
		}
		w = owner
	} else {
		return nil
	}
	s := t.state[w]
	if s == nil || (s.target != nil && s.target != tg) {
		// Not a Workplace of this cluster (yet): its first reconcile is a full one.
		return nil
	}
	s.seq++
	return []reconcile.Request{{NamespacedName: w}}
}

// onTarget returns the Workplaces last reconciled into tg, counting an event for
// each (their cluster changed: they need a full reconcile).
func (t *tracker) onTarget(tg *target) []types.NamespacedName {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []types.NamespacedName
	for w, s := range t.state {
		if s.target == tg {
			s.seq++
			out = append(out, w)
		}
	}
	return out
}
