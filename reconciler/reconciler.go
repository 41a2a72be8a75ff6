// Package reconciler makes one workplace in a cluster match its plan: it generates the
// workplace's Secrets once, takes the workplace's lock when something must change,
// acts on each release (reconciler/release) and removes or keeps the data of
// components that were swapped out, as the workplace's dataPolicy says.
package reconciler

import (
	"context"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler/guard"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/preflight"
	"github.com/platzwart/platzwart/reconciler/release"
	"github.com/platzwart/platzwart/reconciler/render"
	"github.com/platzwart/platzwart/reconciler/secrets"
)

// Reconciler applies plans to one cluster.
type Reconciler struct {
	// Cluster is where the workplaces live.
	Cluster *kube.Cluster
	// Engine acts on Helm releases.
	Engine *release.Engine
	// Holder identifies this process in the workplace's Lease.
	Holder string
	// Owner, when set, becomes the owner of generated Secrets (the Workplace object).
	Owner func(p *plan.Plan) *metav1.OwnerReference
	// Grace is how long Helm actions already running may go on once the caller's
	// context is done (SIGTERM, Ctrl-C): no new release starts, nothing is rolled back
	// or uninstalled because of the stop, and an action still running when the grace
	// period ends is cancelled and left failed for the next reconcile to recover. The
	// controller sets it below its pod's terminationGracePeriodSeconds.
	Grace time.Duration
	// Started, when set, is called once the workplace's Lease is taken because
	// something must change, with the steps decided under it (the controller sets
	// Reconciling=True there). A no-op reconcile never calls it.
	Started func(ctx context.Context, p *plan.Plan, steps []release.Step)
	// Render holds the tenancy guard's settings the preflight renders with (denied
	// namespaces, cluster-scoped objects, the cluster's REST mapper for kinds it does
	// not know offline).
	Render render.Options
}

// New returns a reconciler for the cluster.
func New(c *kube.Cluster, opts release.Options, holder string) *Reconciler {
	return &Reconciler{Cluster: c, Engine: release.New(c, opts), Holder: holder}
}

// Report is what one reconcile did.
type Report struct {
	// Steps decided per release.
	Steps []release.Step `json:"steps"`
	// Result of carrying them out.
	Result *release.Result `json:"result"`
	// Secrets lists the Secrets created or completed (names only).
	Secrets []string `json:"secrets,omitempty"`
	// KeptVolumes are PersistentVolumeClaims of uninstalled releases left in place.
	KeptVolumes []string `json:"keptVolumes,omitempty"`
	// DeletedVolumes are claims deleted because dataPolicy is Delete.
	DeletedVolumes []string `json:"deletedVolumes,omitempty"`
	// Locked is true when the workplace's lock was taken (something had to change).
	Locked bool `json:"locked"`
}

// Failed reports whether any release failed.
func (r *Report) Failed() bool { return r.Result != nil && len(r.Result.Failed()) > 0 }

// Reconcile brings the cluster to the plan. When nothing changed it only reads: the
// Secrets exist, every release digest matches and its resources are ready.
func (r *Reconciler) Reconcile(ctx context.Context, p *plan.Plan) (*Report, error) {
	rep := &Report{}
	var owner *metav1.OwnerReference
	if r.Owner != nil {
		owner = r.Owner(p)
	}
	sec := &secrets.Manager{Client: r.Cluster.Clientset}
	// Digests cover the content of the Secrets each release references, so a Secret
	// regenerated or rotated upgrades its provider and rolls its consumers.
	planned := p
	p, versions, err := withSecretVersions(ctx, sec, planned)
	if err != nil {
		return rep, err
	}
	steps, err := r.Engine.Decide(ctx, p)
	if err != nil {
		return rep, fmt.Errorf("workplace %s/%s: %w", p.Namespace, p.Workplace, err)
	}
	// A Secret that an installed component read only at its first start is never
	// replaced by a new value: that would lock it out. Refused before anything is written.
	if err := secrets.CheckLost(p, versions, installed(steps)); err != nil {
		return rep, err
	}
	// Render the releases that change (unchanged ones are taken from Helm's storage)
	// and check the whole workplace against the cluster (server-side dry runs, hosts,
	// NodePorts) before touching anything: a chart or patch that does not render, or
	// an object the cluster would refuse, stops the reconcile with nothing written.
	if changes(steps) {
		if err := r.preflight(ctx, p, steps); err != nil {
			return rep, fmt.Errorf("workplace %s/%s: nothing was applied: %w", p.Namespace, p.Workplace, err)
		}
	}
	// Writes run under the workplace's Lease, whose context outlives ctx by the grace
	// period: see Grace.
	hard, stop := graceContext(ctx, r.Grace)
	defer stop()
	guard := r.Engine.Guard(hard, p.Namespace, p.Workplace, r.Holder)
	defer func() { _ = guard.Release(context.WithoutCancel(ctx)) }()
	if changes(steps) {
		if _, err := guard.Acquire(ctx); err != nil {
			return rep, err
		}
		rep.Locked = true
		// Decide again under the lock: another reconcile may have finished meanwhile.
		if steps, err = r.Engine.Decide(ctx, p); err != nil {
			return rep, fmt.Errorf("workplace %s/%s: %w", p.Namespace, p.Workplace, err)
		}
		if r.Started != nil && changes(steps) {
			r.Started(ctx, p, steps)
		}
	}
	res, err := sec.Ensure(ctx, p, owner)
	if err != nil {
		return rep, fmt.Errorf("workplace %s/%s: secrets: %w", p.Namespace, p.Workplace, err)
	}
	rep.Secrets = res.Changed()
	if len(rep.Secrets) > 0 {
		// Generated values are known now: digests and pod annotations take them in.
		if p, _, err = withSecretVersions(ctx, sec, planned); err != nil {
			return rep, err
		}
		if steps, err = r.Engine.Decide(ctx, p); err != nil {
			return rep, fmt.Errorf("workplace %s/%s: %w", p.Namespace, p.Workplace, err)
		}
	}
	rep.Steps = steps
	rep.Result, err = r.Engine.Apply(ctx, p, steps, guard)
	rep.Locked = guard.Held()
	if err != nil {
		return rep, fmt.Errorf("workplace %s/%s: %w", p.Namespace, p.Workplace, err)
	}
	for _, o := range rep.Result.Outcomes {
		if o.Action != release.ActionUninstall || o.Err != "" {
			continue
		}
		kept, deleted, err := r.volumes(ctx, p, o.Release)
		if err != nil {
			return rep, err
		}
		rep.KeptVolumes = append(rep.KeptVolumes, kept...)
		rep.DeletedVolumes = append(rep.DeletedVolumes, deleted...)
	}
	return rep, nil
}

// graceContext returns a context that is not cancelled with ctx but grace after it.
func graceContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	hard, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-hard.Done():
		}
	})
	return hard, func() { stop(); cancel() }
}

// WithSecretVersions returns p with the content versions of its Secrets, as they are
// in the cluster, folded into the digests and pod templates of the releases
// referencing them (only hashes; see secrets.WithVersions). It only reads. Whatever
// compares a plan with the cluster (`platzwart plan`) must use it, as Reconcile does.
func WithSecretVersions(ctx context.Context, c *kube.Cluster, p *plan.Plan) (*plan.Plan, error) {
	out, _, err := withSecretVersions(ctx, &secrets.Manager{Client: c.Clientset}, p)
	return out, err
}

func withSecretVersions(ctx context.Context, sec *secrets.Manager, p *plan.Plan) (*plan.Plan, secrets.Versions, error) {
	v, err := sec.Versions(ctx, p)
	if err != nil {
		return nil, nil, fmt.Errorf("workplace %s/%s: secrets: %w", p.Namespace, p.Workplace, err)
	}
	out, err := secrets.WithVersions(p, v)
	if err != nil {
		return nil, nil, fmt.Errorf("workplace %s/%s: secrets: %w", p.Namespace, p.Workplace, err)
	}
	return out, v, nil
}

// installed reports which releases have a revision in Helm's storage, by the steps
// Decide returned.
func installed(steps []release.Step) func(string) bool {
	set := make(map[string]bool, len(steps))
	for _, s := range steps {
		if s.Installed() {
			set[s.Release] = true
		}
	}
	return func(rel string) bool { return set[rel] }
}

// preflight renders the releases that change and checks them against the cluster
// (reconciler/preflight); a refusal is a *preflight.Error listing every finding.
func (r *Reconciler) preflight(ctx context.Context, p *plan.Plan, steps []release.Step) error {
	change := map[string]bool{}
	var own []string
	for _, s := range steps {
		own = append(own, s.Release)
		if s.Action == release.ActionInstall || s.Action == release.ActionUpgrade {
			change[s.Release] = true
		}
	}
	return r.check(ctx, p, steps, change, own)
}

// Check runs the preflight on every release of p, as if each were installed or
// upgraded now, and writes nothing. `platzwart rotate` runs it before it changes a
// Secret, so that a rotation is never left without its roll-out.
func (r *Reconciler) Check(ctx context.Context, p *plan.Plan) error {
	steps, err := r.Engine.Decide(ctx, p)
	if err != nil {
		return fmt.Errorf("workplace %s/%s: %w", p.Namespace, p.Workplace, err)
	}
	change := map[string]bool{}
	var own []string
	for _, s := range steps {
		own = append(own, s.Release)
		if s.Action != release.ActionUninstall {
			change[s.Release] = true
		}
	}
	if err := r.check(ctx, p, steps, change, own); err != nil {
		return fmt.Errorf("workplace %s/%s: %w", p.Namespace, p.Workplace, err)
	}
	return nil
}

func (r *Reconciler) check(ctx context.Context, p *plan.Plan, steps []release.Step, change map[string]bool, own []string) error {
	opts := r.Render
	if opts.Guard.Scope == nil {
		opts.Guard.Scope = guard.RESTMapperScope(r.Cluster.Mapper)
	}
	ms, err := render.PlanReusing(ctx, p, storedManifests(steps, change), opts)
	if err != nil {
		return err
	}
	in := preflight.Input{Workplace: p.Workplace, Namespace: p.Namespace, Own: own, Previous: map[string]string{}}
	for _, s := range steps {
		if m := s.CurrentManifest(); m != "" && change[s.Release] {
			in.Previous[s.Release] = m
		}
	}
	for _, m := range ms {
		if change[m.Release] {
			in.Manifests = append(in.Manifests, m)
		}
	}
	return (&preflight.Checker{Cluster: r.Cluster}).Check(ctx, in)
}

// storedManifests are the manifests the preflight takes from Helm's storage instead
// of rendering them: those of the releases that stay unchanged. Their digest equals
// the plan's, so the newest stored revision is what a render would give (and what the
// cluster holds); the guards still see them (render.PlanReusing), the server-side dry
// run does not need them. A release in change (every release for Check) is rendered.
//
// An unconfirmed release (its newest revision was never seen ready) is taken from
// storage too: that revision carries the plan's digest, so it is the render, and it
// is what Apply waits for. Should it not become ready, Apply rolls it back to an
// earlier revision, which the cluster held before; a render would not describe that
// revision either.
func storedManifests(steps []release.Step, change map[string]bool) map[string]render.Stored {
	out := map[string]render.Stored{}
	for _, s := range steps {
		if s.Action != release.ActionUnchanged || change[s.Release] || !s.Installed() {
			continue
		}
		out[s.Release] = render.Stored{Manifest: s.CurrentManifest(), Hooks: s.CurrentHooks()}
	}
	return out
}

// changes reports whether any step may change the cluster (a revision never confirmed
// ready may be rolled back).
func changes(steps []release.Step) bool {
	for _, s := range steps {
		if s.Action != release.ActionUnchanged || s.Unconfirmed() {
			return true
		}
	}
	return false
}

// volumes lists the claims an uninstalled release left behind and deletes them when
// the workplace's dataPolicy is Delete.
func (r *Reconciler) volumes(ctx context.Context, p *plan.Plan, rel string) (kept, deleted []string, err error) {
	pvcs, err := r.Cluster.Clientset.CoreV1().PersistentVolumeClaims(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + rel})
	if err != nil {
		return nil, nil, fmt.Errorf("volumes of release %s/%s: %w", p.Namespace, rel, err)
	}
	items := pvcs.Items
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	for _, pvc := range items {
		name := p.Namespace + "/" + pvc.Name
		if p.DataPolicy != v1alpha1.DataPolicyDelete {
			kept = append(kept, name)
			continue
		}
		if err := r.deletePVC(ctx, pvc); err != nil {
			return kept, deleted, err
		}
		deleted = append(deleted, name)
	}
	return kept, deleted, nil
}

func (r *Reconciler) deletePVC(ctx context.Context, pvc corev1.PersistentVolumeClaim) error {
	err := r.Cluster.Clientset.CoreV1().PersistentVolumeClaims(pvc.Namespace).Delete(ctx, pvc.Name, metav1.DeleteOptions{})
	if err != nil {
		return fmt.Errorf("deleting volume %s/%s (dataPolicy Delete): %w", pvc.Namespace, pvc.Name, err)
	}
	return nil
}
