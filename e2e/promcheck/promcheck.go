// Package promcheck checks the PromQL that a chart ships, PrometheusRule rules and
// Grafana dashboard queries, against the metrics a process really exports: every
// expression must parse with Prometheus's own parser, and every metric it selects must
// be exported, with every label it matches on and a value its equality and regex
// matchers can match.
//
// Typical use, in a test that renders a chart and scrapes a running process:
//
//	exprs, err := promcheck.FromManifests(manifests, map[string]string{"namespace": "demo", "__rate_interval": "1m"})
//	exported, err := promcheck.ParseText(resp.Body) // the /metrics response
//	for _, p := range promcheck.Check(exprs, exported, promcheck.PrometheusTarget()) {
//		t.Error(p)
//	}
//
// It is test tooling: nothing in the platzwart binary imports it.
package promcheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Expr is one PromQL expression found in a manifest.
type Expr struct {
	// Where names the expression: object, group and alert, or dashboard, panel and
	// target, or dashboard variable.
	Where string
	// Query is the PromQL, with dashboard variables substituted.
	Query string
	// Labels must exist on every series the query selects: the label a dashboard
	// variable's label_values(selector, label) lists.
	Labels []string
}

// Kind classifies a [Problem].
type Kind string

// Kinds of problems.
const (
	// KindParse: the expression does not parse.
	KindParse Kind = "parse"
	// KindUnknownMetric: the expression selects a metric nothing exports.
	KindUnknownMetric Kind = "unknown metric"
	// KindUnknownLabel: a matcher, or a variable's label, names a label the metric
	// does not carry.
	KindUnknownLabel Kind = "unknown label"
	// KindNoValue: an equality or regex matcher matches none of the label's exported
	// values.
	KindNoValue Kind = "no matching value"
	// KindNoName: a selector without a fixed metric name, which cannot be checked.
	KindNoName Kind = "no metric name"
)

// Problem is what is wrong with one expression.
type Problem struct {
	Expr   Expr
	Kind   Kind
	Metric string
	Label  string
	Detail string
}

func (p Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", p.Expr.Where, p.Kind)
	if p.Metric != "" {
		fmt.Fprintf(&b, " %s", p.Metric)
	}
	if p.Label != "" {
		fmt.Fprintf(&b, " label %s", p.Label)
	}
	if p.Detail != "" {
		fmt.Fprintf(&b, ": %s", p.Detail)
	}
	fmt.Fprintf(&b, "\n\t%s", p.Expr.Query)
	return b.String()
}

// Exported is what a process exports: series names (histograms expanded into _bucket,
// _sum and _count, summaries into the name, _sum and _count) with, per label, the
// values seen.
type Exported struct {
	series map[string]map[string]map[string]bool
}

// Names returns the exported series names, sorted.
func (e Exported) Names() []string {
	names := make([]string, 0, len(e.series))
	for n := range e.series {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Has reports whether name is exported.
func (e Exported) Has(name string) bool {
	_, ok := e.series[name]
	return ok
}

// ParseText reads a Prometheus text exposition (a /metrics response).
func ParseText(r io.Reader) (Exported, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return Exported{}, fmt.Errorf("metrics exposition: %w", err)
	}
	list := make([]*dto.MetricFamily, 0, len(fams))
	for _, f := range fams {
		list = append(list, f)
	}
	return FromFamilies(list), nil
}

// FromFamilies indexes gathered metric families (a Registry's Gather). A family
// without series is not exported: Prometheus would see nothing.
func FromFamilies(fams []*dto.MetricFamily) Exported {
	e := Exported{series: map[string]map[string]map[string]bool{}}
	add := func(name string, lps []*dto.LabelPair, extra ...string) {
		ls, ok := e.series[name]
		if !ok {
			ls = map[string]map[string]bool{}
			e.series[name] = ls
		}
		set := func(k, v string) {
			if ls[k] == nil {
				ls[k] = map[string]bool{}
			}
			ls[k][v] = true
		}
		for _, lp := range lps {
			set(lp.GetName(), lp.GetValue())
		}
		for i := 0; i+1 < len(extra); i += 2 {
			set(extra[i], extra[i+1])
		}
	}
	for _, f := range fams {
		name := f.GetName()
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				for _, b := range m.GetHistogram().GetBucket() {
					add(name+"_bucket", m.GetLabel(), "le", formatFloat(b.GetUpperBound()))
				}
				add(name+"_bucket", m.GetLabel(), "le", "+Inf")
				add(name+"_sum", m.GetLabel())
				add(name+"_count", m.GetLabel())
			case dto.MetricType_SUMMARY:
				for _, q := range m.GetSummary().GetQuantile() {
					add(name, m.GetLabel(), "quantile", formatFloat(q.GetQuantile()))
				}
				add(name+"_sum", m.GetLabel())
				add(name+"_count", m.GetLabel())
			default:
				add(name, m.GetLabel())
			}
		}
	}
	return e
}

// formatFloat writes a bucket bound or quantile as the text exposition does.
func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// Options say what Prometheus adds to what a process exports.
type Options struct {
	// Synthetic are series Prometheus makes itself for every scrape target ("up",
	// "scrape_duration_seconds", …): accepted without being exported, their labels
	// not checked.
	Synthetic []string
	// TargetLabels are labels Prometheus attaches to every scraped series ("job",
	// "instance", and what service discovery adds): a matcher on one is accepted
	// even when the process does not export it.
	TargetLabels []string
}

// PrometheusTarget is Options for a target scraped by prometheus-operator through a
// ServiceMonitor: the synthetic scrape series and the target labels it sets.
func PrometheusTarget() Options {
	return Options{
		Synthetic:    []string{"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling", "scrape_series_added"},
		TargetLabels: []string{"job", "instance", "namespace", "service", "pod", "container", "endpoint"},
	}
}

// Check parses every expression and checks the metrics and labels it selects against
// exported. It returns every problem found, in the order of exprs.
func Check(exprs []Expr, exported Exported, opts Options) []Problem {
	p := parser.NewParser(parser.Options{})
	var problems []Problem
	for _, x := range exprs {
		ast, err := p.ParseExpr(x.Query)
		if err != nil {
			problems = append(problems, Problem{Expr: x, Kind: KindParse, Detail: err.Error()})
			continue
		}
		parser.Inspect(ast, func(node parser.Node, _ []parser.Node) error {
			if vs, ok := node.(*parser.VectorSelector); ok {
				problems = append(problems, checkSelector(x, vs, exported, opts)...)
			}
			return nil
		})
	}
	return problems
}

// checkSelector checks one vector selector of x.
func checkSelector(x Expr, vs *parser.VectorSelector, exported Exported, opts Options) []Problem {
	name := vs.Name
	if name == "" {
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
	}
	if name == "" {
		return []Problem{{Expr: x, Kind: KindNoName, Detail: vs.String()}}
	}
	if slices.Contains(opts.Synthetic, name) {
		return nil
	}
	ls, ok := exported.series[name]
	if !ok {
		return []Problem{{Expr: x, Kind: KindUnknownMetric, Metric: name}}
	}
	var problems []Problem
	for _, l := range x.Labels {
		if _, ok := ls[l]; !ok {
			problems = append(problems, Problem{Expr: x, Kind: KindUnknownLabel, Metric: name, Label: l})
		}
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel {
			continue
		}
		values, ok := ls[m.Name]
		if !ok {
			if !slices.Contains(opts.TargetLabels, m.Name) {
				problems = append(problems, Problem{Expr: x, Kind: KindUnknownLabel, Metric: name, Label: m.Name})
			}
			continue
		}
		if (m.Type == labels.MatchEqual || m.Type == labels.MatchRegexp) && !m.Matches("") && !anyMatches(m, values) {
			problems = append(problems, Problem{Expr: x, Kind: KindNoValue, Metric: name, Label: m.Name,
				Detail: fmt.Sprintf("%s matches none of %v", m, sortedKeys(values))})
		}
	}
	return problems
}

func anyMatches(m *labels.Matcher, values map[string]bool) bool {
	for v := range values {
		if m.Matches(v) {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// variable finds Grafana's variable syntaxes: $name, ${name}, ${name:format} and
// [[name]].
var variable = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)

// Substitute replaces Grafana variables in q by their values in vars. A variable
// without a value is an error; "$1" and the like (label_replace references) are not
// variables and stay.
func Substitute(q string, vars map[string]string) (string, error) {
	var missing []string
	out := variable.ReplaceAllStringFunc(q, func(s string) string {
		sm := variable.FindStringSubmatch(s)
		name := sm[1] + sm[2] + sm[3]
		if _, err := strconv.Atoi(name); err == nil {
			return s
		}
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
			return s
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("no value for dashboard variable(s) %s in %q", strings.Join(missing, ", "), q)
	}
	return out, nil
}

// object is the part of a Kubernetes object FromManifests reads.
type object struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Data map[string]string `json:"data"`
	Spec struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert  string `json:"alert"`
				Record string `json:"record"`
				Expr   string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// FromManifests returns the expressions of a YAML stream of rendered manifests: every
// rule of a PrometheusRule, and every query of a Grafana dashboard held in a
// ConfigMap (a data key ending in .json whose value has panels), with vars
// substituted into the dashboard's.
func FromManifests(manifests string, vars map[string]string) ([]Expr, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifests)))
	var exprs []Expr
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return exprs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("manifests: %w", err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		id := o.Metadata.Namespace + "/" + o.Metadata.Name
		switch o.Kind {
		case "PrometheusRule":
			for _, g := range o.Spec.Groups {
				for _, rule := range g.Rules {
					name := "alert " + rule.Alert
					if rule.Alert == "" {
						name = "record " + rule.Record
					}
					where := fmt.Sprintf("PrometheusRule %s group %s %s", id, g.Name, name)
					if strings.TrimSpace(rule.Expr) == "" {
						return nil, fmt.Errorf("%s: no expr", where)
					}
					exprs = append(exprs, Expr{Where: where, Query: rule.Expr})
				}
			}
		case "ConfigMap":
			keys := make([]string, 0, len(o.Data))
			for k := range o.Data {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if !strings.HasSuffix(k, ".json") {
					continue
				}
				d, err := FromDashboard(fmt.Sprintf("ConfigMap %s %s", id, k), []byte(o.Data[k]), vars)
				if err != nil {
					return nil, err
				}
				exprs = append(exprs, d...)
			}
		}
	}
}

// dashboard is the part of a Grafana dashboard FromDashboard reads.
type dashboard struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int    `json:"id"`
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

// labelValues is Grafana's label_values(selector, label) variable query.
var labelValues = regexp.MustCompile(`^\s*label_values\(\s*(.+)\s*,\s*(\w+)\s*\)\s*$`)

// queryResult is Grafana's query_result(expr) variable query.
var queryResult = regexp.MustCompile(`^\s*query_result\(\s*(.+)\s*\)\s*$`)

// FromDashboard returns the expressions of a Grafana dashboard: every panel target's
// expr (rows' panels included) and every query variable's selector (label_values with
// a selector, query_result), with vars substituted. A dashboard without panels, or
// with a target without expr, is an error.
func FromDashboard(name string, data []byte, vars map[string]string) ([]Expr, error) {
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("dashboard %s: %w", name, err)
	}
	if len(d.Panels) == 0 {
		return nil, fmt.Errorf("dashboard %s: no panels", name)
	}
	var exprs []Expr
	add := func(where, q string, lbls ...string) error {
		s, err := Substitute(q, vars)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		exprs = append(exprs, Expr{Where: where, Query: s, Labels: lbls})
		return nil
	}
	var walk func(ps []panel) error
	walk = func(ps []panel) error {
		for _, p := range ps {
			for _, t := range p.Targets {
				where := fmt.Sprintf("dashboard %s panel %d %q target %s", name, p.ID, p.Title, t.RefID)
				if strings.TrimSpace(t.Expr) == "" {
					return fmt.Errorf("%s: no expr", where)
				}
				if err := add(where, t.Expr); err != nil {
					return err
				}
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return nil, err
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, err := variableQuery(v.Query)
		if err != nil {
			return nil, fmt.Errorf("dashboard %s variable %s: %w", name, v.Name, err)
		}
		where := fmt.Sprintf("dashboard %s variable %s", name, v.Name)
		if m := labelValues.FindStringSubmatch(q); m != nil {
			if err := add(where, m[1], m[2]); err != nil {
				return nil, err
			}
		} else if m := queryResult.FindStringSubmatch(q); m != nil {
			if err := add(where, m[1]); err != nil {
				return nil, err
			}
		}
	}
	return exprs, nil
}

// variableQuery reads a query variable's query: a string, or an object with a query
// field (Grafana 10 and later).
func variableQuery(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var o struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return "", fmt.Errorf("query is neither a string nor an object with a query: %w", err)
	}
	return o.Query, nil
}
