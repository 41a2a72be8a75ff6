package catalog

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
)

// conditionalChart is a repository chart with a subchart switched by a value.
var conditionalChart = fstest.MapFS{
	"charts/parent/Chart.yaml":                   {Data: []byte("apiVersion: v2\nname: parent\nversion: 1.0.0\ndependencies:\n  - name: sub\n    version: 1.0.0\n    condition: sub.enabled\n")},
	"charts/parent/values.yaml":                  {Data: []byte("sub: {enabled: true}\n")},
	"charts/parent/templates/cm.yaml":            {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: parent}\n")},
	"charts/parent/charts/sub/Chart.yaml":        {Data: []byte("apiVersion: v2\nname: sub\nversion: 1.0.0\n")},
	"charts/parent/charts/sub/templates/cm.yaml": {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sub}\n")},
	"charts/plain/Chart.yaml":                    {Data: []byte("apiVersion: v2\nname: plain\nversion: 1.0.0\n")},
	"charts/plain/templates/cm.yaml":             {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n")},
}

// renderSub renders ch client-only, the subchart on or off, and reports whether the
// subchart's object is in the manifest.
func renderSub(t *testing.T, ch *chart.Chart, enabled bool) bool {
	t.Helper()
	in := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	in.DryRun, in.ClientOnly, in.Replace = true, true, true
	in.ReleaseName, in.Namespace = "demo-parent", "demo"
	out, err := in.RunWithContext(context.Background(), ch, map[string]any{"sub": map[string]any{"enabled": enabled}})
	if err != nil {
		t.Error(err)
		return false
	}
	return strings.Contains(out.Manifest, "name: sub")
}

// TestHelmChartIsACopyWhenHelmWouldChangeIt: Helm drops a disabled subchart from the
// chart it renders, so one workplace switching a subchart off would take it from
// every later render of the shared catalog chart. Helm() hands each action its own
// copy of such a chart, and the shared chart itself for a chart without
// dependencies.
func TestHelmChartIsACopyWhenHelmWouldChangeIt(t *testing.T) {
	shared, err := loadChart(conditionalChart, "charts/parent")
	if err != nil {
		t.Fatal(err)
	}
	// What Helm does to a chart: without the copy, the subchart is gone for good.
	direct, err := loadChart(conditionalChart, "charts/parent")
	if err != nil {
		t.Fatal(err)
	}
	renderSub(t, direct.Chart, false)
	if renderSub(t, direct.Chart, true) {
		t.Log("Helm no longer removes disabled subcharts from the chart it renders: Chart.Helm may stop copying")
	} else if len(direct.Chart.Dependencies()) != 0 {
		t.Errorf("after a render with the subchart off the chart still has %d subcharts", len(direct.Chart.Dependencies()))
	}

	// With Helm(), workplaces rendering at once each get what their values say.
	var wg sync.WaitGroup
	for i := range 8 {
		enabled := i%2 == 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got := renderSub(t, shared.Helm(), enabled); got != enabled {
				t.Errorf("subchart enabled %v: rendered %v", enabled, got)
			}
		}()
	}
	wg.Wait()
	if n := len(shared.Chart.Dependencies()); n != 1 || shared.Chart.Metadata.Dependencies[0].Enabled {
		t.Errorf("the catalog's chart changed: %d subcharts, dependency enabled %v; want 1, untouched", n, shared.Chart.Metadata.Dependencies[0].Enabled)
	}

	plain, err := loadChart(conditionalChart, "charts/plain")
	if err != nil {
		t.Fatal(err)
	}
	if plain.Helm() != plain.Chart {
		t.Error("a chart without dependencies was copied")
	}
}
