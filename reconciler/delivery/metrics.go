package delivery

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names; docs/metrics.md describes each.
const (
	MetricDeployments        = "platzwart_deployments_total"
	MetricLeadTime           = "platzwart_lead_time_seconds"
	MetricChangeFailureRatio = "platzwart_change_failure_ratio"
	MetricTimeToRestore      = "platzwart_time_to_restore_seconds"
	MetricLastDeployment     = "platzwart_last_deployment_timestamp_seconds"
	MetricReconcileDuration  = "platzwart_reconcile_duration_seconds"
	MetricReconcileErrors    = "platzwart_reconcile_errors_total"
	MetricHelmActions        = "platzwart_helm_actions_total"
	MetricWorkplaceReady     = "platzwart_workplace_ready"
)

// Labels every series carries.
const (
	labelNamespace = "namespace"
	labelName      = "workplace"
)

// Label values of result and action.
const (
	ResultSuccess = "success"
	ResultFailure = "failure" // deployments
	ResultError   = "error"   // reconciles

	ActionInstall   = "install"
	ActionUpgrade   = "upgrade"
	ActionRollback  = "rollback"
	ActionUninstall = "uninstall"
	// ActionOther stands for any other action passed to [Metrics.HelmAction], so that
	// a caller's mistake cannot grow the label set without bound.
	ActionOther = "other"
)

// Bucket bounds in seconds. Functions, not variables: the package keeps no mutable
// state.
func leadTimeBuckets() []float64 {
	// 10 s … 1 day; longer lead times land in +Inf.
	return []float64{10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 16 * 3600, 24 * 3600}
}

func timeToRestoreBuckets() []float64 {
	// 30 s … 1 week.
	return []float64{30, 60, 120, 300, 600, 1200, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 3 * 24 * 3600, 7 * 24 * 3600}
}

func reconcileBuckets() []float64 {
	// 50 ms (nothing changed) … 30 min (a first install of everything).
	return []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}
}

// Metrics holds platzwart's Prometheus collectors, all labelled with the workplace's
// namespace and name. It is safe for concurrent use. A nil *Metrics discards every
// observation, so a caller without metrics (the CLI) needs no checks.
type Metrics struct {
	deployments       *prometheus.CounterVec
	leadTime          *prometheus.HistogramVec
	changeFailure     *prometheus.GaugeVec
	timeToRestore     *prometheus.HistogramVec
	lastDeployment    *prometheus.GaugeVec
	reconcileDuration *prometheus.HistogramVec
	reconcileErrors   *prometheus.CounterVec
	helmActions       *prometheus.CounterVec
	ready             *prometheus.GaugeVec

	vecs []*prometheus.MetricVec // every collector's vec, for Forget
}

// NewMetrics creates the collectors and registers them on reg (pass controller-runtime's
// metrics.Registry; tests pass prometheus.NewRegistry()). On error nothing stays
// registered.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("delivery: no registerer")
	}
	wp := []string{labelNamespace, labelName}
	with := func(extra ...string) []string { return append(append([]string(nil), wp...), extra...) }
	m := &Metrics{
		deployments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDeployments,
			Help: "Deployments of a new revision of the workplace, by result (success: Ready=True; failure: Ready=False, rolled back).",
		}, with("result")),
		leadTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricLeadTime,
			Help:    "Lead time for changes: from the commit time of a revision to the workplace being Ready with it.",
			Buckets: leadTimeBuckets(),
		}, with()),
		changeFailure: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricChangeFailureRatio,
			Help: "Failed deployments / all deployments in the workplace's deployment history (its last records, see status).",
		}, with()),
		timeToRestore: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricTimeToRestore,
			Help:    "Time from the first failed deployment to the next successful one.",
			Buckets: timeToRestoreBuckets(),
		}, with()),
		lastDeployment: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricLastDeployment,
			Help: "Unix time at which the newest successful deployment of the workplace became Ready.",
		}, with()),
		reconcileDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricReconcileDuration,
			Help:    "Duration of reconciles of the workplace, by result (success, error).",
			Buckets: reconcileBuckets(),
		}, with("result")),
		reconcileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricReconcileErrors,
			Help: "Reconciles of the workplace that returned an error.",
		}, with()),
		helmActions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricHelmActions,
			Help: "Helm actions taken on the workplace's releases, by action (install, upgrade, rollback, uninstall, other).",
		}, with("action")),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricWorkplaceReady,
			Help: "1 when the workplace's Ready condition is True after its last reconcile, else 0.",
		}, with()),
	}
	m.vecs = []*prometheus.MetricVec{
		m.deployments.MetricVec, m.leadTime.MetricVec, m.changeFailure.MetricVec,
		m.timeToRestore.MetricVec, m.lastDeployment.MetricVec, m.reconcileDuration.MetricVec,
		m.reconcileErrors.MetricVec, m.helmActions.MetricVec, m.ready.MetricVec,
	}
	collectors := []prometheus.Collector{
		m.deployments, m.leadTime, m.changeFailure, m.timeToRestore,
		m.lastDeployment, m.reconcileDuration, m.reconcileErrors, m.helmActions, m.ready,
	}
	for i, c := range collectors {
		if err := reg.Register(c); err != nil {
			for _, done := range collectors[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("delivery: registering metrics: %w", err)
		}
	}
	return m, nil
}

// ObserveDeployment records one deployment of workplace ns/wp. before is the
// workplace's history before rec is appended to it (call this, then [Append]):
//
//	m.ObserveDeployment(ns, name, wp.Status.History, rec)
//	wp.Status.History = delivery.Append(wp.Status.History, rec, delivery.DefaultMaxHistory)
//
// Unless rec repeats the newest record of before ([IsRepeat]: a retry that failed
// again, a revision that succeeded again), it counts the deployment by result, and for
// a success observes its lead time (when rec has a commit time) and, when it ends
// failures, its time to restore. Either way it sets the gauges from the history with
// rec appended ([Metrics.Sync]; the ratio covers before plus rec, which may be one
// record more than the bounded history). Everything it needs comes from the history
// in the status, so a restarted controller observes the same.
func (m *Metrics) ObserveDeployment(ns, wp string, before []Record, rec Record) {
	if m == nil {
		return
	}
	after := Append(before, rec, len(before)+1)
	defer m.Sync(ns, wp, after)
	if IsRepeat(before, rec) {
		return
	}
	if !rec.Succeeded {
		m.deployments.WithLabelValues(ns, wp, ResultFailure).Inc()
		return
	}
	m.deployments.WithLabelValues(ns, wp, ResultSuccess).Inc()
	if d, ok := LeadTime(rec); ok {
		m.leadTime.WithLabelValues(ns, wp).Observe(d.Seconds())
	}
	if since, failing := FailingSince(before); failing {
		m.timeToRestore.WithLabelValues(ns, wp).Observe(max(rec.end().Sub(since), 0).Seconds())
	}
}

// Sync sets the series derived from a workplace's history: the change failure ratio
// and the last deployment timestamp (when the history has a success). It also creates,
// at 0 and without changing them, both result series of the deployment counter (so
// that a ratio of the two exists from the start), the lead time and time to restore
// histograms and the install, upgrade, rollback and uninstall series of the Helm
// action counter: increase() over a series that appears with its first observation
// does not see that observation (the first rollback after a restart would not alert).
// Call it when the controller first sees a workplace, so a restarted controller
// exports the gauges before the next deployment; [Metrics.ObserveDeployment] calls it
// itself.
func (m *Metrics) Sync(ns, wp string, history []Record) {
	if m == nil {
		return
	}
	m.deployments.WithLabelValues(ns, wp, ResultSuccess)
	m.deployments.WithLabelValues(ns, wp, ResultFailure)
	m.leadTime.WithLabelValues(ns, wp)
	m.timeToRestore.WithLabelValues(ns, wp)
	for _, a := range []string{ActionInstall, ActionUpgrade, ActionRollback, ActionUninstall} {
		m.helmActions.WithLabelValues(ns, wp, a)
	}
	m.changeFailure.WithLabelValues(ns, wp).Set(ChangeFailureRate(history))
	if last, ok := LastSuccess(history); ok {
		m.lastDeployment.WithLabelValues(ns, wp).Set(float64(last.end().UnixNano()) / 1e9)
	}
}

// ObserveReconcile records one reconcile of workplace ns/wp that took d; err is what
// it returned (nil: result success, else error and the error counter counts it).
func (m *Metrics) ObserveReconcile(ns, wp string, d time.Duration, err error) {
	if m == nil {
		return
	}
	result := ResultSuccess
	errs := m.reconcileErrors.WithLabelValues(ns, wp)
	if err != nil {
		result = ResultError
		errs.Inc()
	}
	m.reconcileDuration.WithLabelValues(ns, wp, result).Observe(d.Seconds())
}

// HelmAction counts one Helm action on a release of workplace ns/wp: install, upgrade,
// rollback or uninstall; anything else counts as other.
func (m *Metrics) HelmAction(ns, wp, action string) {
	if m == nil {
		return
	}
	switch action {
	case ActionInstall, ActionUpgrade, ActionRollback, ActionUninstall:
	default:
		action = ActionOther
	}
	m.helmActions.WithLabelValues(ns, wp, action).Inc()
}

// SetReady sets the readiness of workplace ns/wp: ready is whether its Ready
// condition is True after a reconcile (False and Unknown are both not ready).
func (m *Metrics) SetReady(ns, wp string, ready bool) {
	if m == nil {
		return
	}
	v := 0.0
	if ready {
		v = 1
	}
	m.ready.WithLabelValues(ns, wp).Set(v)
}

// Forget deletes every series of workplace ns/wp, for a Workplace that was deleted.
// It returns how many series it deleted.
func (m *Metrics) Forget(ns, wp string) int {
	if m == nil {
		return 0
	}
	n := 0
	labels := prometheus.Labels{labelNamespace: ns, labelName: wp}
	for _, v := range m.vecs {
		n += v.DeletePartialMatch(labels)
	}
	return n
}
