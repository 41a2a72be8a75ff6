// Package reconciler makes one workplace in a cluster match its plan: it generates the
// workplace's Secrets once, takes the workplace's lock when something must change,
// acts on each release (reconciler/release) and removes or keeps the data of
// components that were swapped out, as the workplace's dataPolicy says.
package reconciler

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/plan"
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
	steps, err := r.Engine.Decide(ctx, p)
	if err != nil {
		return rep, fmt.Errorf("workplace %s/%s: %w", p.Namespace, p.Workplace, err)
	}
	// Render every release before touching anything: a chart or patch that does not
	// render stops the reconcile with nothing written.
	if changes(steps) {
		if _, err := render.Plan(ctx, p); err != nil {
			return rep, fmt.Errorf("workplace %s/%s: nothing was applied: %w", p.Namespace, p.Workplace, err)
		}
	}
	sec := &secrets.Manager{Client: r.Cluster.Clientset}
	res, err := sec.Ensure(ctx, p, owner)
	if err != nil {
		return rep, fmt.Errorf("workplace %s/%s: secrets: %w", p.Namespace, p.Workplace, err)
	}
	rep.Secrets = res.Changed()
	if changes(steps) {
		lock, err := r.Engine.Lock(ctx, p.Namespace, p.Workplace, r.Holder)
		if err != nil {
			return rep, err
		}
		rep.Locked = true
		defer func() { _ = lock.Unlock(context.WithoutCancel(ctx)) }()
		// Decide again under the lock: another reconcile may have finished meanwhile.
		if steps, err = r.Engine.Decide(ctx, p); err != nil {
			return rep, fmt.Errorf("workplace %s/%s: %w", p.Namespace, p.Workplace, err)
		}
	}
	rep.Steps = steps
	rep.Result, err = r.Engine.Apply(ctx, p, steps)
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
