package promcheck

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// registry exports a counter with two results, a histogram and a gauge, each with one
// series, the way the controller does.
func registry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	deployments := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "demo_deployments_total", Help: "x"}, []string{"namespace", "workplace", "result"})
	lead := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "demo_lead_time_seconds", Help: "x", Buckets: []float64{1, 10}}, []string{"namespace", "workplace"})
	ready := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "demo_ready", Help: "x"}, []string{"namespace", "workplace"})
	reg.MustRegister(deployments, lead, ready)
	deployments.WithLabelValues("rathaus", "demo", "success").Inc()
	deployments.WithLabelValues("rathaus", "demo", "failure")
	lead.WithLabelValues("rathaus", "demo").Observe(3)
	ready.WithLabelValues("rathaus", "demo").Set(1)
	return reg
}

func gathered(t *testing.T, reg *prometheus.Registry) Exported {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return FromFamilies(fams)
}

// TestCheckReportsWhatIsNotExported is the check failing: each broken expression is
// reported with its kind, metric and label, and the good ones are not.
func TestCheckReportsWhatIsNotExported(t *testing.T) {
	exported := gathered(t, registry(t))
	exprs := []Expr{
		{Where: "good counter", Query: `sum by (namespace) (increase(demo_deployments_total{result="failure",namespace=~"rathaus|other"}[7d]))`},
		{Where: "good histogram", Query: `histogram_quantile(0.5, sum by (le) (rate(demo_lead_time_seconds_bucket{le!="1"}[5m])))`},
		{Where: "good sum and count", Query: `demo_lead_time_seconds_sum / demo_lead_time_seconds_count`},
		{Where: "target labels and up", Query: `demo_ready{job="pw",instance=~".+"} == 0 or absent(up{job="pw",namespace="ops"} == 1)`},
		{Where: "label_values label", Query: `demo_ready`, Labels: []string{"workplace"}},
		{Where: "unknown metric", Query: `sum(rate(demo_deploymnets_total[5m]))`},
		{Where: "histogram without suffix", Query: `rate(demo_lead_time_seconds[5m])`},
		{Where: "unknown label", Query: `demo_deployments_total{reslt="success"}`},
		{Where: "no such value", Query: `demo_deployments_total{result="sucess"}`},
		{Where: "no regex match", Query: `demo_deployments_total{result=~"rolled.*"}`},
		{Where: "parse error", Query: `sum by (namespace (demo_ready)`},
		{Where: "no name", Query: `{__name__=~"demo_.*"}`},
		{Where: "label_values unknown label", Query: `demo_ready`, Labels: []string{"component"}},
	}
	var got []string
	for _, p := range Check(exprs, exported, PrometheusTarget()) {
		got = append(got, fmt.Sprintf("%s|%s|%s|%s", p.Expr.Where, p.Kind, p.Metric, p.Label))
		if !strings.Contains(p.Error(), p.Expr.Query) || !strings.HasPrefix(p.Error(), p.Expr.Where+": ") {
			t.Errorf("message %q does not name where and the query", p.Error())
		}
	}
	want := []string{
		"unknown metric|unknown metric|demo_deploymnets_total|",
		"histogram without suffix|unknown metric|demo_lead_time_seconds|",
		"unknown label|unknown label|demo_deployments_total|reslt",
		"no such value|no matching value|demo_deployments_total|result",
		"no regex match|no matching value|demo_deployments_total|result",
		"parse error|parse||",
		"no name|no metric name||",
		"label_values unknown label|unknown label|demo_ready|component",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestParseTextReadsWhatPromhttpServes: the text exposition of /metrics yields the same
// series names and label values as the registry's Gather.
func TestParseTextReadsWhatPromhttpServes(t *testing.T) {
	reg := registry(t)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	scraped, err := ParseText(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"demo_deployments_total", "demo_lead_time_seconds_bucket", "demo_lead_time_seconds_count", "demo_lead_time_seconds_sum", "demo_ready"}
	if got := scraped.Names(); !slices.Equal(got, want) {
		t.Errorf("scraped %v, want %v", got, want)
	}
	if got := gathered(t, reg).Names(); !slices.Equal(got, want) {
		t.Errorf("gathered %v, want %v", got, want)
	}
	if p := Check([]Expr{{Where: "le", Query: `demo_lead_time_seconds_bucket{le="+Inf"} - demo_lead_time_seconds_bucket{le="10"}`}}, scraped, Options{}); len(p) != 0 {
		t.Errorf("bucket bounds not read: %v", p)
	}
	if _, err := ParseText(strings.NewReader("demo_ready{ 1\n")); err == nil {
		t.Error("a broken exposition parsed")
	}
}

func TestSubstitute(t *testing.T) {
	vars := map[string]string{"namespace": "rathaus", "__rate_interval": "1m", "workplace": "demo"}
	for in, want := range map[string]string{
		`rate(x{namespace=~"$namespace"}[$__rate_interval])`:    `rate(x{namespace=~"rathaus"}[1m])`,
		`x{workplace=~"${workplace}",ns=~"${namespace:regex}"}`: `x{workplace=~"demo",ns=~"rathaus"}`,
		`x{workplace="[[workplace]]"}`:                          `x{workplace="demo"}`,
		`label_replace(x, "dst", "$1", "src", "(.*)")`:          `label_replace(x, "dst", "$1", "src", "(.*)")`,
		`sum(x)`: `sum(x)`,
	} {
		got, err := Substitute(in, vars)
		if err != nil || got != want {
			t.Errorf("Substitute(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := Substitute(`x[$__range]`, vars); err == nil || !strings.Contains(err.Error(), "__range") {
		t.Errorf("unknown variable: err = %v, want one naming __range", err)
	}
}

const testManifests = `
apiVersion: v1
kind: Service
metadata: {name: pw, namespace: ops}
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: pw, namespace: ops}
spec:
  groups:
    - name: g
      rules:
        - alert: NotReady
          expr: demo_ready == 0
        - record: demo:deployments:rate1d
          expr: sum(rate(demo_deployments_total[1d]))
---
apiVersion: v1
kind: ConfigMap
metadata: {name: pw-dashboard, namespace: grafana}
data:
  notes.txt: "not a dashboard"
  pw.json: |
    {"panels": [
      {"id": 1, "type": "row", "title": "Delivery", "panels": [
        {"id": 2, "type": "stat", "title": "Frequency", "targets": [{"refId": "A", "expr": "sum(increase(demo_deployments_total{namespace=~\"$namespace\"}[$__range]))"}]}
      ]},
      {"id": 3, "type": "timeseries", "title": "Ready", "targets": [{"refId": "A", "expr": "demo_ready"}, {"refId": "B", "expr": "max(demo_ready)"}]}
    ],
    "templating": {"list": [
      {"name": "datasource", "type": "datasource", "query": "prometheus"},
      {"name": "namespace", "type": "query", "query": {"query": "label_values(demo_ready, namespace)", "refId": "x"}},
      {"name": "workplace", "type": "query", "query": "label_values(demo_ready{namespace=~\"$namespace\"}, workplace)"},
      {"name": "all", "type": "query", "query": "query_result(count by (namespace) (demo_ready))"},
      {"name": "names", "type": "query", "query": "label_values(namespace)"}
    ]}}
`

func TestFromManifests(t *testing.T) {
	exprs, err := FromManifests(testManifests, map[string]string{"namespace": "rathaus", "__range": "1h"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range exprs {
		got = append(got, fmt.Sprintf("%s => %s %v", x.Where, x.Query, x.Labels))
	}
	want := []string{
		`PrometheusRule ops/pw group g alert NotReady => demo_ready == 0 []`,
		`PrometheusRule ops/pw group g record demo:deployments:rate1d => sum(rate(demo_deployments_total[1d])) []`,
		`dashboard ConfigMap grafana/pw-dashboard pw.json panel 2 "Frequency" target A => sum(increase(demo_deployments_total{namespace=~"rathaus"}[1h])) []`,
		`dashboard ConfigMap grafana/pw-dashboard pw.json panel 3 "Ready" target A => demo_ready []`,
		`dashboard ConfigMap grafana/pw-dashboard pw.json panel 3 "Ready" target B => max(demo_ready) []`,
		`dashboard ConfigMap grafana/pw-dashboard pw.json variable namespace => demo_ready [namespace]`,
		`dashboard ConfigMap grafana/pw-dashboard pw.json variable workplace => demo_ready{namespace=~"rathaus"} [workplace]`,
		`dashboard ConfigMap grafana/pw-dashboard pw.json variable all => count by (namespace) (demo_ready) []`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("expressions:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if p := Check(exprs, gathered(t, registry(t)), PrometheusTarget()); len(p) != 0 {
		t.Errorf("problems with good expressions: %v", p)
	}

	// A variable without a value and a target without expr are errors, not skipped.
	if _, err := FromManifests(testManifests, map[string]string{"namespace": "rathaus"}); err == nil || !strings.Contains(err.Error(), `panel 2 "Frequency" target A`) {
		t.Errorf("missing $__range: err = %v, want one naming the panel", err)
	}
	noExpr := strings.Replace(testManifests, `"expr": "demo_ready"}`, `"expr": ""}`, 1)
	if _, err := FromManifests(noExpr, map[string]string{"namespace": "rathaus", "__range": "1h"}); err == nil || !strings.Contains(err.Error(), "no expr") {
		t.Errorf("empty expr: err = %v", err)
	}
}
