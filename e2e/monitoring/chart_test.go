// Package monitoring_test checks what charts/platzwart ships for monitoring: the
// ServiceMonitor, the PrometheusRule and the Grafana dashboard. The objects are rendered
// with the Helm SDK as `platzwart install` renders them and decoded strictly into
// prometheus-operator's types; every PromQL expression in the rules and the dashboard
// is parsed with Prometheus's parser and each metric it selects must be exported by a
// running controller (TestQueriesUseExportedMetrics, local control plane).
package monitoring_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/go-logr/logr"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/render"
)

// TestMain runs the package's tests against one local control plane (started by the
// first test that asks for it; the tests that only render the chart need none).
func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	os.Exit(cluster.RunTests(m))
}

// Release name and namespace the chart is rendered with.
const (
	releaseName = "pw"
	releaseNS   = "ops"
)

// allOn enables the ServiceMonitor, the PrometheusRule and the dashboard.
func allOn() map[string]any {
	return map[string]any{"metrics": map[string]any{
		"serviceMonitor": map[string]any{"enabled": true},
		"prometheusRule": map[string]any{"enabled": true},
		"dashboard":      map[string]any{"enabled": true},
	}}
}

// renderChart renders charts/platzwart from the embedded catalog as `platzwart
// install` does and returns its objects as YAML documents.
func renderChart(t *testing.T, values map[string]any) []string {
	t.Helper()
	cat, err := catalog.Load(catalog.Layer{FS: platzwart.Builtin(), Label: "builtin"})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := cat.Chart("charts/platzwart")
	if err != nil {
		t.Fatal(err)
	}
	m, err := render.Release(t.Context(), &plan.Release{Name: releaseName, Namespace: releaseNS, Component: "platzwart", Chart: ch, Values: values})
	if err != nil {
		t.Fatalf("rendering charts/platzwart: %v", err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(m.Bytes())))
	var docs []string
	for {
		doc, err := r.Read()
		if err != nil {
			break
		}
		if len(bytes.TrimSpace(doc)) > 0 {
			docs = append(docs, string(doc))
		}
	}
	return docs
}

// object finds the one rendered object of kind and decodes it strictly into out;
// it reports whether there is one.
func object(t *testing.T, docs []string, kind string, out any) bool {
	t.Helper()
	found := false
	for _, d := range docs {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(d), &tm); err != nil {
			t.Fatal(err)
		}
		if tm.Kind != kind {
			continue
		}
		if found {
			t.Fatalf("more than one %s rendered", kind)
		}
		found = true
		if out != nil {
			if err := yaml.UnmarshalStrict([]byte(d), out); err != nil {
				t.Fatalf("%s does not decode strictly into its type: %v\n%s", kind, err, d)
			}
		}
	}
	return found
}

// configMaps decodes every rendered ConfigMap.
func configMaps(t *testing.T, docs []string) []corev1.ConfigMap {
	t.Helper()
	var out []corev1.ConfigMap
	for _, d := range docs {
		var cm corev1.ConfigMap
		if err := yaml.Unmarshal([]byte(d), &cm); err != nil {
			t.Fatal(err)
		}
		if cm.Kind == "ConfigMap" {
			out = append(out, cm)
		}
	}
	return out
}

// TestMonitoringIsOffByDefault: the default install renders no monitoring object, so
// clusters without prometheus-operator install the chart as before.
func TestMonitoringIsOffByDefault(t *testing.T) {
	t.Parallel()
	docs := renderChart(t, nil)
	if object(t, docs, "ServiceMonitor", nil) || object(t, docs, "PrometheusRule", nil) {
		t.Error("a ServiceMonitor or PrometheusRule rendered with the defaults")
	}
	if cms := configMaps(t, docs); len(cms) != 0 {
		t.Errorf("%d ConfigMaps rendered with the defaults", len(cms))
	}
}

// TestServiceMonitorScrapesTheMetricsPort: the ServiceMonitor selects the chart's
// Service in the release namespace, scrapes its metrics port, which reaches the
// container port the controller's --metrics-addr listens on, and honours the series'
// own namespace label.
func TestServiceMonitorScrapesTheMetricsPort(t *testing.T) {
	t.Parallel()
	docs := renderChart(t, map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{
		"enabled": true, "labels": map[string]any{"release": "prom"}, "interval": "30s", "scrapeTimeout": "10s",
	}}})
	var sm monitoringv1.ServiceMonitor
	if !object(t, docs, "ServiceMonitor", &sm) {
		t.Fatal("no ServiceMonitor")
	}
	var svc corev1.Service
	object(t, docs, "Service", &svc)
	var dep appsv1.Deployment
	object(t, docs, "Deployment", &dep)

	if sm.APIVersion != "monitoring.coreos.com/v1" || sm.Labels["release"] != "prom" {
		t.Errorf("ServiceMonitor %s with labels %v", sm.APIVersion, sm.Labels)
	}
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(labels.Set(svc.Labels)) {
		t.Errorf("selector %s does not select the Service (labels %v)", sel, svc.Labels)
	}
	if !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{releaseNS}) {
		t.Errorf("namespaceSelector %+v, want the release namespace", sm.Spec.NamespaceSelector)
	}
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("endpoints %+v", sm.Spec.Endpoints)
	}
	ep := sm.Spec.Endpoints[0]
	if !ep.HonorLabels || ep.Path != "/metrics" || ep.Interval != "30s" || ep.ScrapeTimeout != "10s" {
		t.Errorf("endpoint %+v: want honorLabels, /metrics, 30s, 10s", ep)
	}
	var target string
	for _, p := range svc.Spec.Ports {
		if p.Name == ep.Port {
			target = p.TargetPort.String()
		}
	}
	if target == "" {
		t.Fatalf("the Service has no port %q", ep.Port)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	var containerPort int32
	for _, p := range c.Ports {
		if p.Name == target {
			containerPort = p.ContainerPort
		}
	}
	if want := fmt.Sprintf("--metrics-addr=:%d", containerPort); containerPort == 0 || !slices.Contains(c.Args, want) {
		t.Errorf("Service port %s → container port %q (%d); args %q lack %s", ep.Port, target, containerPort, c.Args, want)
	}
}

// The alerts the PrometheusRule must have, and their severities.
var wantAlerts = map[string]string{
	"PlatzwartWorkplaceNotReady":         "warning",
	"PlatzwartReleaseRolledBack":         "warning",
	"PlatzwartReconcileErrors":           "warning",
	"PlatzwartSourceFetchFailing":        "warning",
	"PlatzwartSourceVerificationFailing": "critical",
	"PlatzwartControllerDown":            "critical",
}

// TestPrometheusRuleAlerts: every alert is there with a severity, the extra alert
// labels, summary, description and a runbook link to a section of the chart README;
// durations are Prometheus durations and follow the values; the annotations are
// templates Prometheus can expand.
func TestPrometheusRuleAlerts(t *testing.T) {
	t.Parallel()
	docs := renderChart(t, map[string]any{"metrics": map[string]any{"prometheusRule": map[string]any{
		"enabled": true, "labels": map[string]any{"release": "prom"}, "alertLabels": map[string]any{"team": "platform"},
		"notReadyFor": "30m", "job": "platzwart-metrics",
	}}})
	var rule monitoringv1.PrometheusRule
	if !object(t, docs, "PrometheusRule", &rule) {
		t.Fatal("no PrometheusRule")
	}
	if rule.Labels["release"] != "prom" {
		t.Errorf("rule labels %v", rule.Labels)
	}
	readme, err := os.ReadFile("../../charts/platzwart/README.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ (.+)$`).FindAllStringSubmatch(string(readme), -1) {
		anchors[strings.ToLower(strings.ReplaceAll(strings.TrimSpace(m[1]), " ", "-"))] = true
	}
	seen := map[string]bool{}
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			name := r.Alert
			seen[name] = true
			want, ok := wantAlerts[name]
			if !ok {
				t.Errorf("unexpected alert %q", name)
				continue
			}
			if r.Labels["severity"] != want || r.Labels["team"] != "platform" {
				t.Errorf("%s: labels %v, want severity %s and team platform", name, r.Labels, want)
			}
			if !strings.Contains(r.Expr.String(), `job="platzwart-metrics"`) {
				t.Errorf("%s: %s does not select the configured job", name, r.Expr.String())
			}
			if r.For != nil {
				if _, err := model.ParseDuration(string(*r.For)); err != nil {
					t.Errorf("%s: for %q: %v", name, *r.For, err)
				}
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", name, a)
				}
			}
			if _, anchor, _ := strings.Cut(r.Annotations["runbook_url"], "#"); anchor != strings.ToLower(name) || !anchors[anchor] {
				t.Errorf("%s: runbook_url %q: want #%s, a heading of charts/platzwart/README.md", name, r.Annotations["runbook_url"], strings.ToLower(name))
			}
			for _, a := range []string{"summary", "description"} {
				out, err := expandAnnotation(r.Annotations[a], map[string]string{"namespace": "rathaus", "workplace": "demo", "job": "pw"})
				if err != nil {
					t.Errorf("%s: %s: %v", name, a, err)
				} else if strings.Contains(out, "<no value>") || strings.Contains(out, "{{") {
					t.Errorf("%s: %s expands to %q", name, a, out)
				}
			}
		}
	}
	for name := range wantAlerts {
		if !seen[name] {
			t.Errorf("alert %s missing", name)
		}
	}
	notReady := findRule(t, rule, "PlatzwartWorkplaceNotReady")
	if notReady.For == nil || *notReady.For != "30m" {
		t.Errorf("PlatzwartWorkplaceNotReady for %v, want metrics.prometheusRule.notReadyFor (30m)", notReady.For)
	}
	if d := notReady.Annotations["description"]; !strings.Contains(d, "30m") {
		t.Errorf("description does not say 30m: %s", d)
	}
}

func findRule(t *testing.T, rule monitoringv1.PrometheusRule, alert string) monitoringv1.Rule {
	t.Helper()
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert == alert {
				return r
			}
		}
	}
	t.Fatalf("no alert %s", alert)
	return monitoringv1.Rule{}
}

// expandAnnotation expands an alert annotation the way Prometheus does: the template
// gets $labels, $value and $externalLabels defined before it.
func expandAnnotation(text string, lbls map[string]string) (string, error) {
	const defs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$value := .Value}}"
	tmpl, err := template.New("annotation").Option("missingkey=zero").Parse(defs + text)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	err = tmpl.Execute(&b, map[string]any{"Labels": lbls, "ExternalLabels": map[string]string{}, "Value": 1.0})
	return b.String(), err
}

// TestDashboardConfigMap: the ConfigMap carries the sidecar label (default
// grafana_dashboard: "1", configurable), lands in the configured namespace and holds
// dashboards/platzwart.json unchanged.
func TestDashboardConfigMap(t *testing.T) {
	t.Parallel()
	file, err := os.ReadFile("../../charts/platzwart/dashboards/platzwart.json")
	if err != nil {
		t.Fatal(err)
	}
	cms := configMaps(t, renderChart(t, allOn()))
	if len(cms) != 1 {
		t.Fatalf("%d ConfigMaps, want 1", len(cms))
	}
	cm := cms[0]
	if cm.Labels["grafana_dashboard"] != "1" || cm.Namespace != "" && cm.Namespace != releaseNS {
		t.Errorf("ConfigMap %s/%s labels %v: want grafana_dashboard=1 in the release namespace", cm.Namespace, cm.Name, cm.Labels)
	}
	if got := cm.Data["platzwart.json"]; strings.TrimSpace(got) != strings.TrimSpace(string(file)) {
		t.Error("the ConfigMap's platzwart.json differs from dashboards/platzwart.json")
	}

	cms = configMaps(t, renderChart(t, map[string]any{"metrics": map[string]any{"dashboard": map[string]any{
		"enabled": true, "namespace": "grafana", "sidecarLabel": "dashboards", "sidecarLabelValue": "platzwart",
		"labels": map[string]any{"team": "ops"}, "annotations": map[string]any{"grafana_folder": "GitOps"},
	}}}))
	if len(cms) != 1 {
		t.Fatalf("%d ConfigMaps, want 1", len(cms))
	}
	cm = cms[0]
	if cm.Namespace != "grafana" || cm.Labels["dashboards"] != "platzwart" || cm.Labels["team"] != "ops" || cm.Annotations["grafana_folder"] != "GitOps" {
		t.Errorf("ConfigMap %s/%s labels %v annotations %v", cm.Namespace, cm.Name, cm.Labels, cm.Annotations)
	}
	if _, ok := cm.Labels["grafana_dashboard"]; ok {
		t.Error("the default sidecar label stays when another is configured")
	}
}

// TestDashboardConfigMapPassesServerSideValidation: the API server accepts the
// ConfigMap (strict field validation, server-side dry run: nothing is stored).
func TestDashboardConfigMapPassesServerSideValidation(t *testing.T) {
	t.Parallel()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	cl, err := client.New(c.Config(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range renderChart(t, allOn()) {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(d), &u.Object); err != nil {
			t.Fatal(err)
		}
		if u.GetKind() != "ConfigMap" {
			continue
		}
		n++
		u.SetNamespace(ns)
		if err := cl.Create(t.Context(), u, client.DryRunAll, client.FieldValidation("Strict")); err != nil {
			t.Errorf("the API server rejects ConfigMap %s: %v", u.GetName(), err)
		}
	}
	if n != 1 {
		t.Errorf("%d ConfigMaps, want 1", n)
	}
}

// gridPanel is what TestDashboardIsValid reads of a panel.
type gridPanel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID      string          `json:"refId"`
		Expr       string          `json:"expr"`
		Datasource json.RawMessage `json:"datasource"`
	} `json:"targets"`
	Panels []gridPanel `json:"panels"`
}

// TestDashboardIsValid checks the dashboard's structure as Grafana reads it: schema
// version, uid, the datasource, namespace and workplace variables, the rows, and
// panels with unique ids on a 24-column grid that do not overlap, every query on the
// selected datasource.
func TestDashboardIsValid(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../charts/platzwart/dashboards/platzwart.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID           string      `json:"uid"`
		Title         string      `json:"title"`
		SchemaVersion int         `json:"schemaVersion"`
		Panels        []gridPanel `json:"panels"`
		Templating    struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 || d.SchemaVersion > 41 {
		t.Errorf("uid %q title %q schemaVersion %d", d.UID, d.Title, d.SchemaVersion)
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name+":"+v.Type)
	}
	if !slices.Equal(vars, []string{"datasource:datasource", "namespace:query", "workplace:query"}) {
		t.Errorf("variables %v, want datasource, namespace, workplace", vars)
	}
	var rows []string
	ids := map[int]bool{}
	type rect struct {
		x0, y0, x1, y1 int
		title          string
	}
	var placed []rect
	var walk func(ps []gridPanel)
	walk = func(ps []gridPanel) {
		for _, p := range ps {
			if ids[p.ID] || p.ID == 0 {
				t.Errorf("panel %q: id %d missing or not unique", p.Title, p.ID)
			}
			ids[p.ID] = true
			g := p.GridPos
			if g.W < 1 || g.H < 1 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
				t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
			}
			r := rect{g.X, g.Y, g.X + g.W, g.Y + g.H, p.Title}
			for _, o := range placed {
				if r.x0 < o.x1 && o.x0 < r.x1 && r.y0 < o.y1 && o.y0 < r.y1 {
					t.Errorf("panels %q and %q overlap", p.Title, o.title)
				}
			}
			placed = append(placed, r)
			if p.Type == "row" {
				rows = append(rows, p.Title)
				walk(p.Panels)
				continue
			}
			if p.Title == "" || len(p.Targets) == 0 {
				t.Errorf("panel %d: title %q, %d targets", p.ID, p.Title, len(p.Targets))
			}
			if !strings.Contains(string(p.Datasource), `"${datasource}"`) {
				t.Errorf("panel %q: datasource %s, want ${datasource}", p.Title, p.Datasource)
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				if refs[tg.RefID] || tg.RefID == "" || tg.Expr == "" || !strings.Contains(string(tg.Datasource), `"${datasource}"`) {
					t.Errorf("panel %q target %q: refId unique and set, expr set, datasource ${datasource}", p.Title, tg.RefID)
				}
				refs[tg.RefID] = true
			}
		}
	}
	walk(d.Panels)
	if want := []string{"Delivery", "Readiness", "Reconciles", "Helm actions", "Git source", "Webhooks", "Periodic check"}; !slices.Equal(rows, want) {
		t.Errorf("rows %v, want %v", rows, want)
	}
}
