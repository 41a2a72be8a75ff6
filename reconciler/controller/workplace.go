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
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	crsource "sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler"
	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/check"
	"github.com/platzwart/platzwart/reconciler/delivery"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/release"
	"github.com/platzwart/platzwart/reconciler/render"
	"github.com/platzwart/platzwart/reconciler/secrets"
)

// Condition types of a Workplace, as kstatus reads them.
const (
	ConditionReady       = "Ready"
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
	// ConditionFunctional reports `platzwart check` run by the controller after a
	// successful apply: whether people can use the workplace through its public URLs.
	// It never changes Ready (kstatus ignores it).
	ConditionFunctional = "Functional"
)

// historyLimit bounds status.history.
const historyLimit = 20

// DefaultRetries is how many failed reconciles in a row of one generation and
// revision are retried before a Workplace is Stalled, unless spec.retries says.
const DefaultRetries = 5

// WorkplaceReconciler reconciles Workplace resources.
type WorkplaceReconciler struct {
	// Client reads and writes Workplaces (cached for Workplaces only).
	Client client.Client
	// APIReader reads Workplaces from the API server, uncached: status writes
	// retried after a conflict start from it.
	APIReader client.Reader
	// targets are the clusters Workplaces are reconciled into, each with its own
	// clients, reconciler and watches.
	targets *targets
	// tracker knows which Workplaces are verified and unchanged since (watch events).
	tracker *tracker
	// cycle is the periodic check; nil without one.
	cycle *cycle
	// ctrl is the controller, for the watches added as kinds appear in releases.
	ctrl controller.Controller
	// FullResync is how long a Workplace is answered from the watch caches before a
	// full reconcile checks it against the cluster anyway (default 1h, spread over
	// half as much again).
	FullResync time.Duration
	// Recorder emits Kubernetes events.
	Recorder recorder.EventRecorder
	// Metrics records delivery and reconcile metrics.
	Metrics *delivery.Metrics
	// Source is what the Git source loop last loaded; nil without Git.
	Source *sourceState
	// Wake receives an event per Workplace the source loop asks to reconcile.
	Wake <-chan event.GenericEvent
	// wakeup sends into Wake: a Workplace whose turn for a slot came.
	wakeup chan<- event.GenericEvent
	// Name is the controller install's name (the source label).
	Name string
	// RetryInterval is the first retry delay of a failing Workplace; it doubles with
	// every failure in a row, up to 15 minutes.
	RetryInterval time.Duration
	// Functional, when set, makes the controller run the checks of `platzwart check`
	// after each successful reconcile that changed something, and at least every
	// FunctionalInterval, and report them as the Functional condition.
	Functional *check.Options
	// FunctionalInterval is how often the checks run without a change (default 10m).
	FunctionalInterval time.Duration
	// Log is the logger.
	Log logr.Logger

	// synced holds the Workplaces whose metrics were exported from their status.
	synced sync.Map
	// reconciling holds, per Workplace, its copy as setReconciling wrote it during
	// the reconcile in progress, so that the status written at its end starts from
	// that copy instead of conflicting with it (a rejected patch and a read saved).
	reconciling sync.Map
	// hosts are the hosts of the Workplaces being reconciled or applied.
	hosts hostClaims

	builtinOnce sync.Once
	builtin     *catalog.Catalog
	builtinErr  error
}

// SetupWithManager registers the reconciler. It reacts to spec changes (generation),
// to the source revision annotation and to the source loop's wake-ups, not to its own
// status writes.
func (r *WorkplaceReconciler) SetupWithManager(mgr ctrl.Manager, concurrency int) error {
	b := ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Workplace{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		// Several controllers may run in one process (tests, or installs sharing a
		// binary); their metrics carry the same controller name.
		WithOptions(controller.Options{MaxConcurrentReconciles: concurrency, SkipNameValidation: ptr.To(true)}).
		Named("workplace")
	if r.Wake != nil {
		b = b.WatchesRawSource(crsource.Channel(r.Wake, &handler.EnqueueRequestForObject{}))
	}
	c, err := b.Build(r)
	if err != nil {
		return err
	}
	r.ctrl = c
	return nil
}

// Reconcile brings one Workplace to its plan and reports the outcome in its status.
func (r *WorkplaceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	start := time.Now()
	deferred := false
	defer func() {
		if !deferred {
			r.cycle.done(req.NamespacedName)
		}
	}()
	gone := func() {
		r.Metrics.Forget(req.Namespace, req.Name)
		r.hosts.forget(req.NamespacedName)
		r.tracker.forget(req.NamespacedName)
	}
	w := &v1alpha1.Workplace{}
	if err := r.Client.Get(ctx, req.NamespacedName, w); err != nil {
		if apierrors.IsNotFound(err) {
			gone()
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if w.Spec.Suspend {
		return ctrl.Result{}, nil
	}
	if r.answered(ctx, w) {
		r.Metrics.ObserveReconcile(w.Namespace, w.Name, time.Since(start), nil)
		return ctrl.Result{}, nil
	}
	// The work below starts from the API server's copy: the cache may not have this
	// controller's own last status write yet, and a status computed from a stale copy
	// would, for one, record a deployment twice.
	if err := r.APIReader.Get(ctx, req.NamespacedName, w); err != nil {
		if apierrors.IsNotFound(err) {
			gone()
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	revision := w.Annotations[AnnotationRevision]
	log := r.Log.WithValues("workplace", req.NamespacedName.String(), "revision", revision)
	if w.Spec.Suspend {
		// Suspended since the cached copy was read.
		log.V(1).Info("suspended")
		return ctrl.Result{}, nil
	}
	if _, seen := r.synced.LoadOrStore(req.NamespacedName, true); !seen {
		// A restarted controller exports the gauges from the history in the status.
		r.Metrics.Sync(w.Namespace, w.Name, fromAPIHistory(w.Status.History))
	}
	orig := w.DeepCopy()
	res, rerr := r.reconcile(ctx, log, w, revision)
	if errors.Is(rerr, errNoSlot) {
		// The Workplace's cluster has as many reconciles running as it may: it waits
		// in line, woken when a slot is free, without holding a worker that another
		// cluster's Workplace could use.
		deferred = true
		return ctrl.Result{}, nil
	}
	r.Metrics.ObserveReconcile(w.Namespace, w.Name, time.Since(start), rerr)
	r.Metrics.SetReady(w.Namespace, w.Name, meta.IsStatusConditionTrue(w.Status.Conditions, ConditionReady))
	// The status is written even when the process is stopping (ctx cancelled), so
	// that an interrupted reconcile says so.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := r.writeStatus(sctx, orig, w); err != nil {
		return ctrl.Result{}, err
	}
	return res, rerr
}

// answered reports whether a Workplace is answered from the watch caches: verified
// with the same plan input, untouched by any watch event since, its cluster
// answering, and no functional check due. It makes no request.
func (r *WorkplaceReconciler) answered(ctx context.Context, w *v1alpha1.Workplace) bool {
	revision := w.Annotations[AnnotationRevision]
	cat, _, err := r.catalogFor(w, revision)
	if err != nil {
		return false
	}
	t, err := r.targets.For(ctx, w)
	if err != nil || t.down() {
		return false
	}
	id := types.NamespacedName{Namespace: w.Namespace, Name: w.Name}
	in := planInput{uid: w.UID, generation: w.Generation, revision: revision, catalog: cat, target: t}
	return r.tracker.clean(id, in, jitter(id, r.fullResync())) && !r.functionalDue(w, false)
}

// reconcile does the work and sets w's status; the caller writes it. It returns an
// error only for failures of the controller itself; a failing Workplace is reported
// in its status and retried with a backoff of its own.
func (r *WorkplaceReconciler) reconcile(ctx context.Context, log logr.Logger, w *v1alpha1.Workplace, revision string) (ctrl.Result, error) {
	if w.Status.ObservedGeneration != w.Generation || (revision != "" && revision != w.Status.LastAttemptedRevision) {
		// A new input: the retry budget starts again.
		w.Status.Failures = 0
	}
	w.Status.ObservedGeneration = w.Generation
	if revision != "" {
		w.Status.LastAttemptedRevision = revision
	}
	cat, file, err := r.catalogFor(w, revision)
	var notLoaded *notLoadedError
	if errors.As(err, &notLoaded) {
		r.progressing(w, "SourceNotLoaded", err.Error())
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	}
	if err != nil {
		r.stalled(w, "InvalidSource", err)
		r.Recorder.Eventf(w, nil, corev1.EventTypeWarning, "InvalidSource", "Load", "%s", err.Error())
		return ctrl.Result{}, nil
	}
	t, err := r.targets.For(ctx, w)
	var kcErr *kubeConfigError
	switch {
	case errors.As(err, &kcErr) && kcErr.missing:
		r.progressing(w, "KubeConfigNotFound", err.Error())
		return ctrl.Result{RequeueAfter: time.Minute}, nil
	case errors.As(err, &kcErr):
		r.stalled(w, "InvalidKubeConfig", err)
		r.Recorder.Eventf(w, nil, corev1.EventTypeWarning, "InvalidKubeConfig", "Connect", "%s", err.Error())
		return ctrl.Result{RequeueAfter: time.Minute}, nil
	case err != nil:
		return ctrl.Result{}, err
	}
	id := types.NamespacedName{Namespace: w.Namespace, Name: w.Name}
	in := planInput{uid: w.UID, generation: w.Generation, revision: revision, catalog: cat, target: t}
	if !t.down() && r.tracker.clean(id, in, jitter(id, r.fullResync())) {
		// Nothing the plan is made from changed, and no watch event touched the
		// Workplace's objects since a full reconcile found them as planned and ready:
		// answered from memory, without a request.
		if r.functionalDue(w, false) {
			lw := &load.Workplace{Workplace: *w.DeepCopy(), File: file}
			if p, err := plan.Build(lw, cat); err == nil {
				r.functional(ctx, w, p, cat, t, false)
			}
		}
		return ctrl.Result{}, nil
	}
	if err := t.reachable(ctx); err != nil {
		r.tracker.invalidate(id)
		r.progressing(w, "ClusterUnreachable", err.Error())
		return ctrl.Result{RequeueAfter: probeDown}, nil
	}
	if !t.tryAcquire(id) {
		return ctrl.Result{}, errNoSlot
	}
	defer func() {
		if next, ok := t.release(); ok {
			r.wake(ctx, next)
		}
	}()
	// Whatever happens below, only a full reconcile that finds everything as planned
	// verifies the Workplace again.
	r.tracker.invalidate(id)
	lw := &load.Workplace{Workplace: *w.DeepCopy(), File: file}
	// Workplaces created with kubectl get the checks Git-sourced ones got at load.
	if err := load.Validate(lw); err != nil {
		r.stalled(w, "InvalidWorkplace", err)
		r.Recorder.Eventf(w, nil, corev1.EventTypeWarning, "InvalidWorkplace", "Validate", "%s", err.Error())
		return ctrl.Result{}, nil
	}
	if ns := t.rec.Render.Guard.DeniedNamespace(w.Namespace); ns != "" {
		err := lw.Errorf("metadata.namespace", "namespace %q is not allowed for Workplaces (denied: %s)", w.Namespace, ns)
		r.stalled(w, "InvalidWorkplace", err)
		r.Recorder.Eventf(w, nil, corev1.EventTypeWarning, "InvalidWorkplace", "Validate", "%s", err.Error())
		return ctrl.Result{}, nil
	}
	p, err := plan.Build(lw, cat)
	if err != nil {
		r.stalled(w, "InvalidWorkplace", err)
		r.Recorder.Eventf(w, nil, corev1.EventTypeWarning, "InvalidWorkplace", "Plan", "%s", err.Error())
		return ctrl.Result{}, nil
	}
	seq := r.tracker.begin(id, t, releaseNames(p), p.Namespace)
	if err := r.hosts.claim(id, render.PlanHostClaims(p)); err != nil {
		// Another Workplace of this controller claims a host: it may go away, so look
		// again later; nothing was written.
		r.stalled(w, "HostCollision", err)
		r.Recorder.Eventf(w, nil, corev1.EventTypeWarning, "HostCollision", "Plan", "%s", err.Error())
		return ctrl.Result{RequeueAfter: time.Minute}, nil
	}
	if t.name != "" {
		// The Workplace's namespace on the other cluster (the source loop creates it
		// on the controller's own).
		if _, err := kube.EnsureNamespace(ctx, t.kube.Clientset, w.Namespace, fieldOwner); err != nil {
			return r.failed(w, revision, time.Now(), "ReconcileFailed", fmt.Sprintf("%s: %v", t, err)), nil
		}
	}
	started := time.Now()
	rep, err := t.rec.Reconcile(ctx, p)
	if err != nil && (rep == nil || (rep.Result == nil && len(rep.Secrets) == 0)) {
		// Refused before anything was written (preflight, a lost Secret, the Lease):
		// the hosts are not taken yet.
		r.hosts.forget(id)
	}
	var locked *release.LockedError
	var lost *secrets.LostError
	switch {
	case errors.As(err, &lost):
		// Waits for an operator to restore the Secret: not a failed deployment, and
		// retrying soon is cheap (it only reads) and notices the restored Secret.
		r.stalled(w, "SecretLost", err)
		r.Recorder.Eventf(w, nil, corev1.EventTypeWarning, "SecretLost", "Reconcile", "%s", err.Error())
		return ctrl.Result{RequeueAfter: time.Minute}, nil
	case errors.As(err, &locked):
		// Contention, not a failure: another process is changing this workplace.
		r.progressing(w, "LeaseHeld", err.Error())
		log.Info("waiting for the workplace lease", "holder", locked.Holder)
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	case err == nil && rep.Result != nil && rep.Result.Locked() != nil:
		// Drift to correct, but another process holds the Lease: correct it later.
		r.report(w, rep)
		r.progressing(w, "LeaseHeld", rep.Result.Locked().Err)
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	case ctx.Err() != nil || (rep != nil && rep.Result != nil && rep.Result.Interrupted()):
		if rep != nil && rep.Result != nil {
			r.report(w, rep)
		}
		msg := "interrupted (the controller is stopping or lost the workplace lease); the next reconcile goes on"
		if err != nil {
			msg += ": " + err.Error()
		}
		r.progressing(w, "Interrupted", msg)
		return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
	case err != nil:
		return r.failed(w, revision, started, "ReconcileFailed", err.Error()), nil
	}
	r.report(w, rep)
	if rep.Failed() {
		var msgs []string
		for _, o := range rep.Result.Failed() {
			msgs = append(msgs, o.Release+": "+o.Err)
		}
		msg := strings.Join(msgs, "; ")
		log.Info("releases failed", "message", msg)
		return r.failed(w, revision, started, "ReleaseFailed", msg), nil
	}
	setCondition(w, ConditionReady, metav1.ConditionTrue, "Reconciled", readyMessage(p, revision))
	meta.RemoveStatusCondition(&w.Status.Conditions, ConditionStalled)
	meta.RemoveStatusCondition(&w.Status.Conditions, ConditionReconciling)
	w.Status.Failures = 0
	if r.functionalDue(w, rep.Locked) {
		r.functional(ctx, w, p, cat, t, rep.Locked)
	}
	if revision != "" && revision != w.Status.LastAppliedRevision {
		r.record(w, revision, started, true, "")
		w.Status.LastAppliedRevision = revision
	}
	// Watch every kind the releases have (a first install's kinds are seen by the
	// reconcile its own writes wake); only a reconcile that found everything as
	// planned verifies the Workplace.
	if err := r.watch(ctx, t, p.Namespace, rep.Steps); err != nil {
		log.Error(err, "watching the Workplace's objects; it is checked in full until the watches run")
	} else if verified(rep) {
		r.tracker.verify(id, seq, in)
	}
	// The periodic check (cycle) and watch events bring the Workplace back.
	return ctrl.Result{}, nil
}

// wake enqueues a Workplace (through the channel source the cycle uses).
func (r *WorkplaceReconciler) wake(ctx context.Context, w types.NamespacedName) {
	if r.wakeup == nil {
		return
	}
	select {
	case r.wakeup <- event.GenericEvent{Object: &v1alpha1.Workplace{ObjectMeta: metav1.ObjectMeta{Namespace: w.Namespace, Name: w.Name}}}:
	case <-ctx.Done():
	}
}

// errNoSlot says that the Workplace's cluster runs as many reconciles as it may.
var errNoSlot = errors.New("no reconcile slot free for the cluster")

// verified reports whether a reconcile found everything as planned: nothing had to
// change (the Lease was never taken, no Secret was created, no drift corrected)
// and every release is ready.
func verified(rep *reconciler.Report) bool {
	if rep == nil || rep.Result == nil || rep.Locked || len(rep.Secrets) > 0 || rep.Failed() {
		return false
	}
	for _, o := range rep.Result.Outcomes {
		if o.Action != release.ActionUnchanged || !o.Ready || len(o.Drifted) > 0 {
			return false
		}
	}
	return true
}

func releaseNames(p *plan.Plan) []string {
	out := make([]string, 0, len(p.Releases))
	for _, rel := range p.Releases {
		out = append(out, rel.Name)
	}
	return out
}

// fullResync is FullResync with its default.
func (r *WorkplaceReconciler) fullResync() time.Duration {
	if r.FullResync <= 0 {
		return time.Hour
	}
	return r.FullResync
}

// functional runs the checks of `platzwart check` and sets the Functional condition,
// after a reconcile that changed something, when the condition is missing or for an
// older generation, or when it is older than FunctionalInterval. The checks are
// bounded (each probe by its timeout, all of them by a minute) and their outcome
// never changes Ready.
func (r *WorkplaceReconciler) functional(ctx context.Context, w *v1alpha1.Workplace, p *plan.Plan, cat *catalog.Catalog, t *target, changed bool) {
	if !r.functionalDue(w, changed) {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	opts := *r.Functional
	// The checks read the CA and the OIDC client secrets from the Workplace's own
	// cluster, directly (never cached).
	opts.Secrets = check.KubeSecrets{Reader: t.kube.Client}
	rep, err := check.Run(cctx, p, cat, opts)
	if err != nil {
		setCondition(w, ConditionFunctional, metav1.ConditionUnknown, "CheckError", err.Error())
		return
	}
	failed := rep.Failed()
	if len(failed) == 0 {
		setCondition(w, ConditionFunctional, metav1.ConditionTrue, "ChecksPassed",
			fmt.Sprintf("%d checks passed through the public URLs", len(rep.Checks)))
		return
	}
	msgs := make([]string, 0, len(failed))
	for _, f := range failed {
		msgs = append(msgs, fmt.Sprintf("%s %s: %s (%s)", f.Name, f.Target, f.Message, f.Reason))
	}
	reason := string(failed[0].Reason)
	if reason == "" {
		reason = "ChecksFailed"
	}
	setCondition(w, ConditionFunctional, metav1.ConditionFalse, reason,
		fmt.Sprintf("%d of %d checks failed (run `platzwart check` for the fixes): %s", len(failed), len(rep.Checks), strings.Join(msgs, "; ")))
}

// functionalDue reports whether the functional checks should run now.
func (r *WorkplaceReconciler) functionalDue(w *v1alpha1.Workplace, changed bool) bool {
	if r.Functional == nil {
		return false
	}
	every := r.FunctionalInterval
	if every <= 0 {
		every = 10 * time.Minute
	}
	c := meta.FindStatusCondition(w.Status.Conditions, ConditionFunctional)
	return c == nil || changed || c.ObservedGeneration != w.Generation || time.Since(c.LastTransitionTime.Time) >= every || c.Status != metav1.ConditionTrue
}

// failed records a failed attempt and schedules the retry with exponential backoff,
// or marks the Workplace Stalled once spec.retries attempts in a row failed.
func (r *WorkplaceReconciler) failed(w *v1alpha1.Workplace, revision string, started time.Time, reason, msg string) ctrl.Result {
	w.Status.Failures++
	r.record(w, revision, started, false, msg)
	r.Recorder.Eventf(w, nil, corev1.EventTypeWarning, reason, "Reconcile", "%s", msg)
	setCondition(w, ConditionReady, metav1.ConditionFalse, reason, msg)
	retries := int32(DefaultRetries)
	if w.Spec.Retries != nil {
		retries = *w.Spec.Retries
	}
	if w.Status.Failures > retries {
		setCondition(w, ConditionStalled, metav1.ConditionTrue, "RetriesExhausted",
			fmt.Sprintf("%d attempts in a row failed (spec.retries: %d); a new revision or spec change retries: %s", w.Status.Failures, retries, msg))
		meta.RemoveStatusCondition(&w.Status.Conditions, ConditionReconciling)
		return ctrl.Result{}
	}
	wait := r.backoff(w.Status.Failures)
	meta.RemoveStatusCondition(&w.Status.Conditions, ConditionStalled)
	setCondition(w, ConditionReconciling, metav1.ConditionTrue, "RetryScheduled",
		fmt.Sprintf("attempt %d of %d failed; retrying in %s", w.Status.Failures, retries+1, wait))
	return ctrl.Result{RequeueAfter: wait}
}

// progressing marks work as pending without a verdict on the change.
func (r *WorkplaceReconciler) progressing(w *v1alpha1.Workplace, reason, msg string) {
	setCondition(w, ConditionReconciling, metav1.ConditionTrue, reason, msg)
	meta.RemoveStatusCondition(&w.Status.Conditions, ConditionStalled)
	if meta.FindStatusCondition(w.Status.Conditions, ConditionReady) == nil {
		setCondition(w, ConditionReady, metav1.ConditionUnknown, reason, msg)
	}
}

// notLoadedError says that the source has not loaded a Workplace's revision yet;
// the Workplace is retried, not stalled.
type notLoadedError struct{ revision string }

func (e *notLoadedError) Error() string {
	return fmt.Sprintf("revision %s is not loaded yet; waiting for the Git source", e.revision)
}

// catalogFor returns the catalog a Workplace is planned with and the file its
// document came from: the catalog of the Workplace's own source revision (with the
// repository's own components, profiles and charts) for Workplaces of this source,
// the built-in one otherwise.
func (r *WorkplaceReconciler) catalogFor(w *v1alpha1.Workplace, revision string) (*catalog.Catalog, string, error) {
	file := w.Annotations[AnnotationFile]
	if file == "" {
		file = fmt.Sprintf("workplace %s/%s", w.Namespace, w.Name)
	}
	if r.Source != nil && w.Labels[LabelSource] == r.Name {
		repo, newest, loadErr := r.Source.at(revision)
		if loadErr != nil {
			return nil, file, fmt.Errorf("revision %s: %w", revision, loadErr)
		}
		if repo == nil && newest != nil && !declares(newest, w) {
			return nil, file, fmt.Errorf("the Git source no longer declares workplace %s/%s (it was read from revision %s); delete it or add it back",
				w.Namespace, w.Name, revision)
		}
		if repo == nil {
			return nil, file, &notLoadedError{revision: revision}
		}
		return repo.Catalog, file, nil
	}
	// The built-in catalog is loaded once: charts are parsed once for every
	// Workplace created in the cluster by other means.
	r.builtinOnce.Do(func() {
		r.builtin, r.builtinErr = catalog.Load(catalog.Layer{FS: platzwart.Builtin(), Label: "builtin"})
	})
	return r.builtin, file, r.builtinErr
}

// declares reports whether repo holds w's document.
func declares(repo *load.Repository, w *v1alpha1.Workplace) bool {
	for _, d := range repo.Workplaces {
		if d.Namespace == w.Namespace && d.Name == w.Name {
			return true
		}
	}
	return false
}

// stalled marks w as not ready with a failure only a new revision or spec can fix.
func (r *WorkplaceReconciler) stalled(w *v1alpha1.Workplace, reason string, err error) {
	setCondition(w, ConditionReady, metav1.ConditionFalse, reason, "nothing was changed in the cluster: "+err.Error())
	setCondition(w, ConditionStalled, metav1.ConditionTrue, reason, err.Error())
	meta.RemoveStatusCondition(&w.Status.Conditions, ConditionReconciling)
}

// maxBackups bounds status.backups (the CRD's MaxItems).
const maxBackups = 20

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
		c := v1alpha1.ComponentStatus{Component: o.Component, Release: o.Release, Revision: rev, Version: o.Version, Ready: o.Ready, Message: o.Err}
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
		if o.Failure == release.FailureRolledBack {
			r.Metrics.HelmAction(w.Namespace, w.Name, "rollback")
		}
		if len(o.Drifted) > 0 {
			r.Recorder.Eventf(w, nil, corev1.EventTypeWarning, "DriftCorrected", "Correct", "release %s: %s", o.Release, strings.Join(o.Drifted, "; "))
		}
		for _, b := range o.Backups {
			finished := metav1.NewTime(b.Finished)
			w.Status.Backups = append(w.Status.Backups, v1alpha1.Backup{Component: o.Component, Version: b.Version, Database: b.Database,
				Claim: b.Claim, File: b.File, Location: b.Location.DeepCopy(), Job: b.Job, Bytes: b.Bytes, SHA256: b.SHA256, Finished: &finished})
			r.Recorder.Eventf(w, nil, corev1.EventTypeNormal, "BackupTaken", "Backup", "database %s backed up before %s %s: %s %s",
				b.Database, o.Component, b.Version, b.File, b.Where())
		}
	}
	if n := len(w.Status.Backups); n > maxBackups {
		w.Status.Backups = w.Status.Backups[n-maxBackups:]
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

// writeStatus writes the status when it changed (a reconcile where nothing changed
// writes nothing), with optimistic concurrency: on a conflict it starts again from
// the API server's copy. The conditions other writers own (SourceReady, written by
// the source loop) are taken from that copy, never from the possibly stale one this
// reconcile started with.
func (r *WorkplaceReconciler) writeStatus(ctx context.Context, orig, w *v1alpha1.Workplace) error {
	cur := orig
	if v, ok := r.reconciling.LoadAndDelete(client.ObjectKeyFromObject(w)); ok {
		if written := v.(*v1alpha1.Workplace); written.UID == orig.UID {
			cur = written
		}
	}
	if equalStatus(cur.Status, w.Status) {
		return nil
	}
	want := w.Status.DeepCopy()
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		next := cur.DeepCopy()
		next.Status = *want.DeepCopy()
		meta.RemoveStatusCondition(&next.Status.Conditions, ConditionSourceReady)
		if c := meta.FindStatusCondition(cur.Status.Conditions, ConditionSourceReady); c != nil {
			next.Status.Conditions = append(next.Status.Conditions, *c)
		}
		err := r.Client.Status().Patch(ctx, next, client.MergeFromWithOptions(cur, client.MergeFromWithOptimisticLock{}))
		if apierrors.IsConflict(err) {
			fresh := &v1alpha1.Workplace{}
			if gerr := r.APIReader.Get(ctx, client.ObjectKeyFromObject(w), fresh); gerr != nil {
				return gerr
			}
			cur = fresh
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("status of workplace %s/%s: %w", w.Namespace, w.Name, err)
	}
	return nil
}

// setReconciling writes Reconciling=True at once, while the work goes on (kstatus
// InProgress): called when the Lease is taken because something must change.
func (r *WorkplaceReconciler) setReconciling(ctx context.Context, p *plan.Plan, steps []release.Step) {
	key := client.ObjectKey{Namespace: p.Namespace, Name: p.Workplace}
	var what []string
	for _, s := range steps {
		if s.Action != release.ActionUnchanged {
			what = append(what, fmt.Sprintf("%s %s", s.Action, s.Release))
		}
	}
	msg := "applying: " + strings.Join(what, ", ")
	for _, s := range steps {
		if len(s.Versions) > 1 {
			msg += fmt.Sprintf("; %s versions %s", s.Release, strings.Join(s.Versions, " → "))
		}
	}
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur := &v1alpha1.Workplace{}
		if err := r.APIReader.Get(ctx, key, cur); err != nil {
			return err
		}
		next := cur.DeepCopy()
		setCondition(next, ConditionReconciling, metav1.ConditionTrue, "Progressing", msg)
		if err := r.Client.Status().Patch(ctx, next, client.MergeFromWithOptions(cur, client.MergeFromWithOptimisticLock{})); err != nil {
			return err
		}
		r.reconciling.Store(key, next)
		return nil
	})
	if err != nil {
		r.Log.Error(err, "setting Reconciling", "workplace", key.String())
	}
}

// pathProgress shows the step of an upgrade path in progress in the Reconciling
// condition while the work goes on, and raises an Event as each step starts.
func (r *WorkplaceReconciler) pathProgress(ctx context.Context, ev release.Event) {
	p := ev.Path
	if p == nil {
		return
	}
	key := client.ObjectKey{Namespace: p.Namespace, Name: p.Workplace}
	msg := fmt.Sprintf("upgrading %s: step %d of %d to version %s: %s (%s)", ev.Release, p.Step, p.Steps, p.Version, p.Phase, ev.Elapsed.Round(time.Second))
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur := &v1alpha1.Workplace{}
		if err := r.APIReader.Get(ctx, key, cur); err != nil {
			return err
		}
		if p.Phase == "start" {
			r.Recorder.Eventf(cur, nil, corev1.EventTypeNormal, "UpgradeStep", "Upgrade", "release %s: step %d of %d to version %s", ev.Release, p.Step, p.Steps, p.Version)
		}
		next := cur.DeepCopy()
		setCondition(next, ConditionReconciling, metav1.ConditionTrue, "UpgradeStep", msg)
		return r.Client.Status().Patch(ctx, next, client.MergeFromWithOptions(cur, client.MergeFromWithOptimisticLock{}))
	})
	if err != nil {
		r.Log.Error(err, "showing the upgrade step", "workplace", key.String())
	}
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

// backoff is the retry delay after fails failures in a row: RetryInterval doubled
// per failure, at most 15 minutes.
func (r *WorkplaceReconciler) backoff(fails int32) time.Duration {
	base := r.RetryInterval
	if base <= 0 {
		base = 30 * time.Second
	}
	d := base << min(max(fails-1, 0), 10)
	return min(d, 15*time.Minute)
}
