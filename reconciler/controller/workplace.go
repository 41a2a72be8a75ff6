package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler"
	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/delivery"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/release"
)

// Condition types of a Workplace, as kstatus reads them.
const (
	ConditionReady       = "Ready"
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
)

// historyLimit bounds status.history.
const historyLimit = 20

// WorkplaceReconciler reconciles Workplace resources.
type WorkplaceReconciler struct {
	// Client reads and writes Workplaces (cached for Workplaces only).
	Client client.Client
	// Kube is the direct, uncached access to the cluster.
	Kube *kube.Cluster
	// Rec applies plans.
	Rec *reconciler.Reconciler
	// Recorder emits Kubernetes events.
	Recorder recorder.EventRecorder
	// Metrics records delivery and reconcile metrics.
	Metrics *delivery.Metrics
	// Source is what the Git source loop last loaded; nil without Git.
	Source *sourceState
	// Name is the controller install's name (the source label).
	Name string
	// Requeue is how often an unchanged Workplace is reconciled again (drift).
	Requeue time.Duration
	// Log is the logger.
	Log logr.Logger

	// synced holds the Workplaces whose metrics were exported from their status.
	synced sync.Map
}

// SetupWithManager registers the reconciler. It reacts to spec changes (generation)
// and to the source revision annotation, not to its own status writes.
func (r *WorkplaceReconciler) SetupWithManager(mgr ctrl.Manager, concurrency int) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Workplace{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		// Several controllers may run in one process (tests, or installs sharing a
		// binary); their metrics carry the same controller name.
		WithOptions(controller.Options{MaxConcurrentReconciles: concurrency, SkipNameValidation: ptr.To(true)}).
		Named("workplace").
		Complete(r)
}

// Reconcile brings one Workplace to its plan and reports the outcome in its status.
func (r *WorkplaceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	start := time.Now()
	w := &v1alpha1.Workplace{}
	if err := r.Client.Get(ctx, req.NamespacedName, w); err != nil {
		if apierrors.IsNotFound(err) {
			r.Metrics.Forget(req.Namespace, req.Name)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	revision := w.Annotations[AnnotationRevision]
	log := r.Log.WithValues("workplace", req.NamespacedName.String(), "revision", revision)
	if w.Spec.Suspend {
		log.V(1).Info("suspended")
		return ctrl.Result{}, nil
	}
	if _, seen := r.synced.LoadOrStore(req.NamespacedName, true); !seen {
		// A restarted controller exports the gauges from the history in the status.
		r.Metrics.Sync(w.Namespace, w.Name, fromAPIHistory(w.Status.History))
	}
	orig := w.DeepCopy()
	res, rerr := r.reconcile(ctx, log, w, revision)
	r.Metrics.ObserveReconcile(w.Namespace, w.Name, time.Since(start), rerr)
	if err := r.patchStatus(ctx, orig, w); err != nil {
		return ctrl.Result{}, err
	}
	if rerr != nil {
		var stalled *stalledError
		if errors.As(rerr, &stalled) {
			// Retrying cannot help: wait for a new revision or spec.
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, rerr
	}
	return res, nil
}

// stalledError is a failure that only a change of the desired state can fix.
type stalledError struct{ err error }

func (e *stalledError) Error() string { return e.err.Error() }
func (e *stalledError) Unwrap() error { return e.err }

// reconcile does the work and sets w's status; the caller writes it.
func (r *WorkplaceReconciler) reconcile(ctx context.Context, log logr.Logger, w *v1alpha1.Workplace, revision string) (ctrl.Result, error) {
	w.Status.ObservedGeneration = w.Generation
	if revision != "" {
		w.Status.LastAttemptedRevision = revision
	}
	cat, file, err := r.catalogFor(w, revision)
	if err != nil {
		r.stalled(w, "InvalidSource", err)
		r.Recorder.Eventf(w, nil, corev1.EventTypeWarning, "InvalidSource", "Load", "%s", err.Error())
		return ctrl.Result{}, &stalledError{err}
	}
	lw := &load.Workplace{Workplace: *w.DeepCopy(), File: file}
	p, err := plan.Build(lw, cat)
	if err != nil {
		r.stalled(w, "InvalidWorkplace", err)
		r.Recorder.Eventf(w, nil, corev1.EventTypeWarning, "InvalidWorkplace", "Plan", "%s", err.Error())
		return ctrl.Result{}, &stalledError{err}
	}
	started := time.Now()
	rep, err := r.Rec.Reconcile(ctx, p)
	if err != nil {
		setCondition(w, ConditionReady, metav1.ConditionFalse, "ReconcileFailed", err.Error())
		setCondition(w, ConditionStalled, metav1.ConditionFalse, "ReconcileFailed", "")
		r.record(w, revision, started, false, err.Error())
		r.Recorder.Eventf(w, nil, corev1.EventTypeWarning, "ReconcileFailed", "Reconcile", "%s", err.Error())
		return ctrl.Result{}, err
	}
	r.report(w, rep)
	if rep.Failed() {
		var msgs []string
		for _, o := range rep.Result.Failed() {
			msgs = append(msgs, o.Release+": "+o.Err)
		}
		msg := strings.Join(msgs, "; ")
		setCondition(w, ConditionReady, metav1.ConditionFalse, "ReleaseFailed", msg)
		setCondition(w, ConditionStalled, metav1.ConditionFalse, "ReleaseFailed", "")
		meta.RemoveStatusCondition(&w.Status.Conditions, ConditionReconciling)
		r.record(w, revision, started, false, msg)
		log.Info("releases failed", "message", msg)
		return ctrl.Result{RequeueAfter: backoff(w)}, nil
	}
	setCondition(w, ConditionReady, metav1.ConditionTrue, "Reconciled", readyMessage(p, revision))
	meta.RemoveStatusCondition(&w.Status.Conditions, ConditionStalled)
	meta.RemoveStatusCondition(&w.Status.Conditions, ConditionReconciling)
	if revision != "" && revision != w.Status.LastAppliedRevision {
		r.record(w, revision, started, true, "")
		w.Status.LastAppliedRevision = revision
	}
	return ctrl.Result{RequeueAfter: r.Requeue}, nil
}

// catalogFor returns the catalog a Workplace is planned with and the file its
// document came from: the Git source's (with the repository's own components,
// profiles and charts) for Workplaces of this source, the built-in one otherwise.
func (r *WorkplaceReconciler) catalogFor(w *v1alpha1.Workplace, revision string) (*catalog.Catalog, string, error) {
	file := w.Annotations[AnnotationFile]
	if file == "" {
		file = fmt.Sprintf("workplace %s/%s", w.Namespace, w.Name)
	}
	if r.Source != nil && w.Labels[LabelSource] == r.Name {
		newest, repo, repoRev, loadErr, _ := r.Source.snapshot()
		if loadErr != nil && newest == revision {
			return nil, file, fmt.Errorf("revision %s: %w", revision, loadErr)
		}
		if repo != nil && repoRev == revision {
			return repo.Catalog, file, nil
		}
		if repo == nil {
			return nil, file, fmt.Errorf("revision %s is not loaded yet", revision)
		}
		return repo.Catalog, file, nil
	}
	cat, err := catalog.Load(catalog.Layer{FS: platzwart.Builtin(), Label: "builtin"})
	return cat, file, err
}

// stalled marks w as not ready with a failure only a new revision or spec can fix.
func (r *WorkplaceReconciler) stalled(w *v1alpha1.Workplace, reason string, err error) {
	setCondition(w, ConditionReady, metav1.ConditionFalse, reason, "nothing was changed in the cluster: "+err.Error())
	setCondition(w, ConditionStalled, metav1.ConditionTrue, reason, err.Error())
	meta.RemoveStatusCondition(&w.Status.Conditions, ConditionReconciling)
}

// report copies the outcome per component into the status and emits events.
func (r *WorkplaceReconciler) report(w *v1alpha1.Workplace, rep *reconciler.Report) {
	now := metav1.Now()
	prev := map[string]v1alpha1.ComponentStatus{}
	for _, c := range w.Status.Components {
		prev[c.Release] = c
	}
	var comps []v1alpha1.ComponentStatus
	for _, o := range rep.Result.Outcomes {
		if o.Action == release.ActionUninstall && o.Err == "" {
			r.Recorder.Eventf(w, nil, corev1.EventTypeNormal, "Uninstalled", "Uninstall", "release %s uninstalled: component %s no longer selected", o.Release, o.Component)
			r.Metrics.HelmAction(w.Namespace, w.Name, "uninstall")
			continue
		}
		rev := o.NewRevision
		if rev == 0 {
			rev = o.Revision
		}
		c := v1alpha1.ComponentStatus{Component: o.Component, Release: o.Release, Revision: rev, Ready: o.Ready, Message: o.Err}
		if p := o.Planned(); p != nil {
			c.Capability = p.Capability
			c.Chart = p.ChartName + "-" + p.ChartVersion
			c.Digest = p.Digest
		}
		if p, ok := prev[o.Release]; ok && p.Ready == c.Ready && p.LastTransitionTime != nil {
			c.LastTransitionTime = p.LastTransitionTime
		} else {
			c.LastTransitionTime = &now
		}
		comps = append(comps, c)
		switch {
		case o.Err != "":
			r.Recorder.Eventf(w, nil, corev1.EventTypeWarning, "ReleaseFailed", string(o.Action), "release %s: %s", o.Release, o.Err)
		case o.Action == release.ActionInstall || o.Action == release.ActionUpgrade:
			r.Recorder.Eventf(w, nil, corev1.EventTypeNormal, "Release"+strings.ToUpper(string(o.Action[:1]))+string(o.Action[1:]), string(o.Action),
				"release %s %sed to revision %d in %s", o.Release, strings.TrimSuffix(string(o.Action), "e"), rev, o.Duration.Round(time.Millisecond))
		}
		if o.Action == release.ActionInstall || o.Action == release.ActionUpgrade {
			r.Metrics.HelmAction(w.Namespace, w.Name, string(o.Action))
		}
		if strings.Contains(o.Err, "rolled back") {
			r.Metrics.HelmAction(w.Namespace, w.Name, "rollback")
		}
		if len(o.Drifted) > 0 {
			r.Recorder.Eventf(w, nil, corev1.EventTypeWarning, "DriftCorrected", "Correct", "release %s: %s", o.Release, strings.Join(o.Drifted, "; "))
		}
	}
	sort.Slice(comps, func(i, j int) bool { return comps[i].Release < comps[j].Release })
	w.Status.Components = comps
	for _, v := range rep.KeptVolumes {
		name := v[strings.Index(v, "/")+1:]
		found := false
		for _, k := range w.Status.KeptVolumes {
			if k.Name == name {
				found = true
			}
		}
		if !found {
			w.Status.KeptVolumes = append(w.Status.KeptVolumes, v1alpha1.KeptVolume{Component: componentOf(rep, v), Name: name, Since: &now})
		}
	}
}

// componentOf finds the component whose release left a volume.
func componentOf(rep *reconciler.Report, volume string) string {
	for _, o := range rep.Result.Outcomes {
		if o.Action == release.ActionUninstall && strings.Contains(volume, "/"+o.Release) {
			return o.Component
		}
	}
	return ""
}

// record appends a deployment of a new revision to the history and the metrics.
func (r *WorkplaceReconciler) record(w *v1alpha1.Workplace, revision string, started time.Time, ok bool, msg string) {
	if revision == "" {
		return
	}
	rec := delivery.Record{Revision: revision, Started: started, Finished: time.Now(), Succeeded: ok, Message: msg}
	if t, err := time.Parse(time.RFC3339, w.Annotations[AnnotationCommitTime]); err == nil {
		rec.CommitTime = t
	}
	before := fromAPIHistory(w.Status.History)
	r.Metrics.ObserveDeployment(w.Namespace, w.Name, before, rec)
	w.Status.History = toAPIHistory(delivery.Append(before, rec, historyLimit))
	w.Status.Delivery = toAPIMetrics(fromAPIHistory(w.Status.History), time.Now())
}

// patchStatus writes the status when it changed: a reconcile where nothing changed
// writes nothing.
func (r *WorkplaceReconciler) patchStatus(ctx context.Context, orig, w *v1alpha1.Workplace) error {
	if equalStatus(orig.Status, w.Status) {
		return nil
	}
	if err := r.Client.Status().Patch(ctx, w, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("status of workplace %s/%s: %w", w.Namespace, w.Name, err)
	}
	return nil
}

// setCondition sets a condition, keeping its transition time when the status is
// unchanged.
func setCondition(w *v1alpha1.Workplace, typ string, status metav1.ConditionStatus, reason, msg string) {
	if len(msg) > 32000 {
		msg = msg[:32000]
	}
	meta.SetStatusCondition(&w.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: w.Generation,
	})
}

// readyMessage says what is ready.
func readyMessage(p *plan.Plan, revision string) string {
	msg := fmt.Sprintf("%d releases ready", len(p.Releases))
	if revision != "" {
		msg += " at " + revision
	}
	return msg
}

// backoff grows the retry interval of a failing Workplace with its failures in a row.
func backoff(w *v1alpha1.Workplace) time.Duration {
	fails := 0
	for i := len(w.Status.History) - 1; i >= 0 && !w.Status.History[i].Succeeded; i-- {
		fails++
	}
	d := 30 * time.Second << min(fails, 5)
	return min(d, 15*time.Minute)
}
