package delivery

import (
	"errors"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
)

// The tests read metrics through Gather and client_model, not prometheus/testutil:
// testutil imports github.com/kylelemons/godebug, which is not in platzwart's module
// graph.

func newMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]*dto.MetricFamily, len(fams))
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// metric returns the series of family name whose labels are exactly labels.
func metric(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	t.Helper()
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no family %s", name)
	}
	for _, m := range f.GetMetric() {
		got := labelsOf(m)
		if len(got) != len(want) {
			continue
		}
		match := true
		for k, v := range want {
			if got[k] != v {
				match = false
			}
		}
		if match {
			return m
		}
	}
	t.Fatalf("no series %s%v", name, want)
	return nil
}

func seriesCount(fams map[string]*dto.MetricFamily, ns, wp string) int {
	n := 0
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			l := labelsOf(m)
			if l["namespace"] == ns && l["workplace"] == wp {
				n++
			}
		}
	}
	return n
}

func TestObserveDeployment(t *testing.T) {
	m, reg := newMetrics(t)
	const ns, wp = "rathaus", "demo"
	var history []Record
	deploy := func(r Record) {
		m.ObserveDeployment(ns, wp, history, r)
		history = Append(history, r, DefaultMaxHistory)
	}
	deploy(ok("a", 0, 1, 1.5))   // lead 90 s
	deploy(fail("b", 2, 3, 5))   // failing since minute 5
	deploy(fail("b", 2, 6, 8))   // retry: not counted again
	deploy(fail("c", 9, 10, 11)) // another failure
	deploy(ok("d", 12, 13, 20))  // lead 8 min, restores after 15 min
	deploy(ok("d", 12, 21, 22))  // drift corrected: not a deployment

	fams := gather(t, reg)
	lbl := []string{"namespace", ns, "workplace", wp}
	if v := metric(t, fams, MetricDeployments, append(lbl, "result", "success")...).GetCounter().GetValue(); v != 2 {
		t.Errorf("successes %v, want 2", v)
	}
	if v := metric(t, fams, MetricDeployments, append(lbl, "result", "failure")...).GetCounter().GetValue(); v != 2 {
		t.Errorf("failures %v, want 2", v)
	}
	lead := metric(t, fams, MetricLeadTime, lbl...).GetHistogram()
	if lead.GetSampleCount() != 2 || lead.GetSampleSum() != 90+480 {
		t.Errorf("lead time count %d sum %v, want 2, 570", lead.GetSampleCount(), lead.GetSampleSum())
	}
	ttr := metric(t, fams, MetricTimeToRestore, lbl...).GetHistogram()
	if ttr.GetSampleCount() != 1 || ttr.GetSampleSum() != 15*60 {
		t.Errorf("time to restore count %d sum %v, want 1, 900", ttr.GetSampleCount(), ttr.GetSampleSum())
	}
	// History: a, b!x2, c!, d: 2 of 4 failed.
	if v := metric(t, fams, MetricChangeFailureRatio, lbl...).GetGauge().GetValue(); v != 0.5 {
		t.Errorf("change failure ratio %v, want 0.5", v)
	}
	if v := metric(t, fams, MetricLastDeployment, lbl...).GetGauge().GetValue(); v != float64(at(20).Unix()) {
		t.Errorf("last deployment %v, want %v", v, at(20).Unix())
	}
	// Lead time buckets: 90 s is in le=120 but not le=60; 10 s … 1 day.
	b := lead.GetBucket()
	if b[0].GetUpperBound() != 10 || b[len(b)-1].GetUpperBound() != 86400 {
		t.Errorf("lead time buckets %v … %v", b[0].GetUpperBound(), b[len(b)-1].GetUpperBound())
	}
	for _, bk := range b {
		want := uint64(0)
		switch {
		case bk.GetUpperBound() >= 480:
			want = 2
		case bk.GetUpperBound() >= 90:
			want = 1
		}
		if bk.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v: %d, want %d", bk.GetUpperBound(), bk.GetCumulativeCount(), want)
		}
	}
}

// TestFirstFailureExportsBothResults: a ratio of failures to all deployments needs the
// success series even before the first success, and vice versa.
func TestFirstFailureExportsBothResults(t *testing.T) {
	m, reg := newMetrics(t)
	m.ObserveDeployment("ns", "wp", nil, fail("a", 0, 1, 2))
	fams := gather(t, reg)
	if v := metric(t, fams, MetricDeployments, "namespace", "ns", "workplace", "wp", "result", "success").GetCounter().GetValue(); v != 0 {
		t.Errorf("successes %v", v)
	}
	if v := metric(t, fams, MetricChangeFailureRatio, "namespace", "ns", "workplace", "wp").GetGauge().GetValue(); v != 1 {
		t.Errorf("ratio %v", v)
	}
	if _, ok := fams[MetricLastDeployment]; ok {
		t.Error("last deployment timestamp without a successful deployment")
	}
	// The histograms exist, empty, so that increase() sees their first observation.
	if n := metric(t, fams, MetricTimeToRestore, "namespace", "ns", "workplace", "wp").GetHistogram().GetSampleCount(); n != 0 {
		t.Errorf("time to restore without a restore: %d observations", n)
	}
	if n := metric(t, fams, MetricLeadTime, "namespace", "ns", "workplace", "wp").GetHistogram().GetSampleCount(); n != 0 {
		t.Errorf("lead time without a success: %d observations", n)
	}
}

// TestSyncAfterRestart: a new Metrics (a restarted controller) exports the gauges from
// the history in the status, and the first deployment after it observes the restore.
func TestSyncAfterRestart(t *testing.T) {
	history := []Record{ok("a", 0, 1, 2), fail("b", 0, 3, 4)}
	m, reg := newMetrics(t)
	m.Sync("ns", "wp", history)
	fams := gather(t, reg)
	if v := metric(t, fams, MetricChangeFailureRatio, "namespace", "ns", "workplace", "wp").GetGauge().GetValue(); v != 0.5 {
		t.Errorf("ratio %v", v)
	}
	if v := metric(t, fams, MetricLastDeployment, "namespace", "ns", "workplace", "wp").GetGauge().GetValue(); v != float64(at(2).Unix()) {
		t.Errorf("last deployment %v", v)
	}
	if v := metric(t, fams, MetricDeployments, "namespace", "ns", "workplace", "wp", "result", "failure").GetCounter().GetValue(); v != 0 {
		t.Errorf("Sync counted: %v", v)
	}
	m.ObserveDeployment("ns", "wp", history, ok("c", -1, 5, 10))
	fams = gather(t, reg)
	if h := metric(t, fams, MetricTimeToRestore, "namespace", "ns", "workplace", "wp").GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() != 360 {
		t.Errorf("time to restore %d / %v, want 1 / 360", h.GetSampleCount(), h.GetSampleSum())
	}
	if n := metric(t, fams, MetricLeadTime, "namespace", "ns", "workplace", "wp").GetHistogram().GetSampleCount(); n != 0 {
		t.Errorf("lead time observed without a commit time: %d observations", n)
	}
}

func TestObserveReconcile(t *testing.T) {
	m, reg := newMetrics(t)
	m.ObserveReconcile("ns", "wp", 1500*time.Millisecond, nil)
	m.ObserveReconcile("ns", "wp", 2*time.Second, nil)
	m.ObserveReconcile("ns", "wp", 40*time.Second, errors.New("release keycloak: not ready"))
	fams := gather(t, reg)
	if v := metric(t, fams, MetricReconcileErrors, "namespace", "ns", "workplace", "wp").GetCounter().GetValue(); v != 1 {
		t.Errorf("errors %v", v)
	}
	ok := metric(t, fams, MetricReconcileDuration, "namespace", "ns", "workplace", "wp", "result", "success").GetHistogram()
	if ok.GetSampleCount() != 2 || ok.GetSampleSum() != 3.5 {
		t.Errorf("success durations %d / %v", ok.GetSampleCount(), ok.GetSampleSum())
	}
	bad := metric(t, fams, MetricReconcileDuration, "namespace", "ns", "workplace", "wp", "result", "error").GetHistogram()
	if bad.GetSampleCount() != 1 || bad.GetSampleSum() != 40 {
		t.Errorf("error durations %d / %v", bad.GetSampleCount(), bad.GetSampleSum())
	}

	// The error counter exists at 0 from the first successful reconcile.
	m2, reg2 := newMetrics(t)
	m2.ObserveReconcile("ns", "wp", time.Second, nil)
	if v := metric(t, gather(t, reg2), MetricReconcileErrors, "namespace", "ns", "workplace", "wp").GetCounter().GetValue(); v != 0 {
		t.Errorf("errors %v", v)
	}
}

func TestHelmAction(t *testing.T) {
	m, reg := newMetrics(t)
	for _, a := range []string{"install", "upgrade", "upgrade", "rollback", "uninstall", "test", "Upgrade"} {
		m.HelmAction("ns", "wp", a)
	}
	fams := gather(t, reg)
	for action, want := range map[string]float64{"install": 1, "upgrade": 2, "rollback": 1, "uninstall": 1, "other": 2} {
		if v := metric(t, fams, MetricHelmActions, "namespace", "ns", "workplace", "wp", "action", action).GetCounter().GetValue(); v != want {
			t.Errorf("%s: %v, want %v", action, v, want)
		}
	}
	if n := len(fams[MetricHelmActions].GetMetric()); n != 5 {
		t.Errorf("%d action series, want 5", n)
	}
}

// TestLabelSets checks every family's label names and type.
func TestLabelSets(t *testing.T) {
	m, reg := newMetrics(t)
	m.ObserveDeployment("ns", "wp", []Record{fail("a", 0, 1, 2)}, ok("b", 0, 3, 4))
	m.ObserveReconcile("ns", "wp", time.Second, errors.New("x"))
	m.HelmAction("ns", "wp", ActionInstall)
	m.SetReady("ns", "wp", true)
	fams := gather(t, reg)
	want := map[string]struct {
		typ    dto.MetricType
		labels string
	}{
		MetricDeployments:        {dto.MetricType_COUNTER, "namespace,result,workplace"},
		MetricLeadTime:           {dto.MetricType_HISTOGRAM, "namespace,workplace"},
		MetricChangeFailureRatio: {dto.MetricType_GAUGE, "namespace,workplace"},
		MetricTimeToRestore:      {dto.MetricType_HISTOGRAM, "namespace,workplace"},
		MetricLastDeployment:     {dto.MetricType_GAUGE, "namespace,workplace"},
		MetricReconcileDuration:  {dto.MetricType_HISTOGRAM, "namespace,result,workplace"},
		MetricReconcileErrors:    {dto.MetricType_COUNTER, "namespace,workplace"},
		MetricHelmActions:        {dto.MetricType_COUNTER, "action,namespace,workplace"},
		MetricWorkplaceReady:     {dto.MetricType_GAUGE, "namespace,workplace"},
	}
	if len(fams) != len(want) {
		names := make([]string, 0, len(fams))
		for n := range fams {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Errorf("families %v", names)
	}
	for name, w := range want {
		f, ok := fams[name]
		if !ok {
			t.Errorf("missing %s", name)
			continue
		}
		if f.GetType() != w.typ {
			t.Errorf("%s: type %v, want %v", name, f.GetType(), w.typ)
		}
		for _, s := range f.GetMetric() {
			var names []string
			for k := range labelsOf(s) {
				names = append(names, k)
			}
			slices.Sort(names)
			if got := strings.Join(names, ","); got != w.labels {
				t.Errorf("%s: labels %s, want %s", name, got, w.labels)
			}
		}
	}
	problems, err := promlint.NewWithMetricFamilies(slices.Collect(func(yield func(*dto.MetricFamily) bool) {
		for _, f := range fams {
			if !yield(f) {
				return
			}
		}
	})).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestForget(t *testing.T) {
	m, reg := newMetrics(t)
	for _, wp := range []string{"demo", "demo2"} {
		m.ObserveDeployment("rathaus", wp, []Record{fail("a", 0, 1, 2)}, ok("b", 0, 3, 4))
		m.ObserveReconcile("rathaus", wp, time.Second, errors.New("x"))
		m.ObserveReconcile("rathaus", wp, time.Second, nil)
		m.HelmAction("rathaus", wp, ActionUpgrade)
		m.SetReady("rathaus", wp, false)
	}
	m.HelmAction("other", "demo", ActionInstall) // same name, another namespace
	before := gather(t, reg)
	n := seriesCount(before, "rathaus", "demo")
	// deployments x2, lead, ratio, restore, last, duration x2, errors, helm x4, ready
	if n != 14 {
		t.Fatalf("%d series for rathaus/demo before Forget, want 14", n)
	}
	if got := m.Forget("rathaus", "demo"); got != n {
		t.Errorf("Forget deleted %d series, want %d", got, n)
	}
	after := gather(t, reg)
	if got := seriesCount(after, "rathaus", "demo"); got != 0 {
		t.Errorf("%d series left", got)
	}
	if got := seriesCount(after, "rathaus", "demo2"); got != n {
		t.Errorf("demo2 lost series: %d, want %d", got, n)
	}
	if got := seriesCount(after, "other", "demo"); got != 1 {
		t.Errorf("other/demo lost its series: %d", got)
	}
	if got := m.Forget("rathaus", "demo"); got != 0 {
		t.Errorf("second Forget deleted %d", got)
	}
}

func TestNewMetricsRegistration(t *testing.T) {
	if _, err := NewMetrics(nil); err == nil {
		t.Error("nil registerer accepted")
	}
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering twice on one registry succeeded")
	}

	// A failure on a later collector leaves nothing of ours registered.
	f := &failingRegisterer{Registerer: prometheus.NewRegistry(), failAt: 5}
	if _, err := NewMetrics(f); err == nil {
		t.Fatal("failure not reported")
	}
	if f.registered != 4 || f.unregistered != 4 {
		t.Errorf("registered %d, unregistered %d, want 4 and 4", f.registered, f.unregistered)
	}
}

// failingRegisterer fails the failAt-th Register call.
type failingRegisterer struct {
	prometheus.Registerer
	failAt, calls, registered, unregistered int
}

func (f *failingRegisterer) Register(c prometheus.Collector) error {
	f.calls++
	if f.calls == f.failAt {
		return errors.New("refused")
	}
	f.registered++
	return f.Registerer.Register(c)
}

func (f *failingRegisterer) Unregister(c prometheus.Collector) bool {
	if f.Registerer.Unregister(c) {
		f.unregistered++
		return true
	}
	return false
}

// TestNoNaN: ratios are never NaN, whatever the history.
func TestNoNaN(t *testing.T) {
	m, reg := newMetrics(t)
	m.Sync("ns", "wp", nil)
	v := metric(t, gather(t, reg), MetricChangeFailureRatio, "namespace", "ns", "workplace", "wp").GetGauge().GetValue()
	if math.IsNaN(v) || v != 0 {
		t.Errorf("ratio of an empty history %v", v)
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.ObserveDeployment("ns", "wp", nil, ok("a", 0, 1, 2))
	m.Sync("ns", "wp", nil)
	m.ObserveReconcile("ns", "wp", time.Second, errors.New("x"))
	m.HelmAction("ns", "wp", ActionInstall)
	m.SetReady("ns", "wp", true)
	if n := m.Forget("ns", "wp"); n != 0 {
		t.Errorf("Forget on nil: %d", n)
	}
}

// TestSetReady: 1 for Ready=True, 0 otherwise, one series per workplace.
func TestSetReady(t *testing.T) {
	m, reg := newMetrics(t)
	m.SetReady("ns", "a", true)
	m.SetReady("ns", "b", true)
	m.SetReady("ns", "b", false)
	fams := gather(t, reg)
	if v := metric(t, fams, MetricWorkplaceReady, "namespace", "ns", "workplace", "a").GetGauge().GetValue(); v != 1 {
		t.Errorf("ready a = %v, want 1", v)
	}
	if v := metric(t, fams, MetricWorkplaceReady, "namespace", "ns", "workplace", "b").GetGauge().GetValue(); v != 0 {
		t.Errorf("ready b = %v, want 0", v)
	}
	if n := len(fams[MetricWorkplaceReady].GetMetric()); n != 2 {
		t.Errorf("%d readiness series, want 2", n)
	}
}

// TestSyncCreatesTheSeriesAlertsIncrease: after Sync, the rollback counter exists at 0,
// so the first rollback is an increase Prometheus can see.
func TestSyncCreatesTheSeriesAlertsIncrease(t *testing.T) {
	m, reg := newMetrics(t)
	m.Sync("ns", "wp", nil)
	fams := gather(t, reg)
	for _, a := range []string{ActionInstall, ActionUpgrade, ActionRollback, ActionUninstall} {
		if v := metric(t, fams, MetricHelmActions, "namespace", "ns", "workplace", "wp", "action", a).GetCounter().GetValue(); v != 0 {
			t.Errorf("%s = %v after Sync, want 0", a, v)
		}
	}
	m.HelmAction("ns", "wp", ActionRollback)
	if v := metric(t, gather(t, reg), MetricHelmActions, "namespace", "ns", "workplace", "wp", "action", ActionRollback).GetCounter().GetValue(); v != 1 {
		t.Errorf("rollback = %v, want 1", v)
	}
}
