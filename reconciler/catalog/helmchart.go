package catalog

import "helm.sh/helm/v3/pkg/chart"

// Helm returns the chart to hand to one Helm action (an install, an upgrade, a
// render). Helm changes a chart that declares dependencies while it renders it:
// chartutil.ProcessDependencies drops the disabled subcharts from it, records on
// its dependency entries whether they are enabled and which values they import,
// and re-parents its subcharts. The catalog's chart is shared by every plan of the
// catalog, workplaces rendered at the same time included, so such a chart is
// copied: the chart and every subchart (their metadata and dependency entries);
// templates, files, schemas and values, which Helm only reads (it deep-copies
// values before merging them), stay shared. A chart without dependencies, every
// built-in one, is returned as it is.
func (c *Chart) Helm() *chart.Chart {
	if !declaresDependencies(c.Chart) {
		return c.Chart
	}
	return copyTree(c.Chart)
}

// declaresDependencies reports whether a chart or any of its subcharts declares
// dependencies in Chart.yaml (only those does Helm change).
func declaresDependencies(ch *chart.Chart) bool {
	if ch.Metadata != nil && ch.Metadata.Dependencies != nil {
		return true
	}
	for _, d := range ch.Dependencies() {
		if declaresDependencies(d) {
			return true
		}
	}
	return false
}

// copyTree copies a chart, its metadata and dependency entries, and its subcharts
// the same way, each subchart parented to its copied parent.
func copyTree(ch *chart.Chart) *chart.Chart {
	cp := &chart.Chart{
		Raw:       ch.Raw,
		Lock:      ch.Lock,
		Templates: ch.Templates,
		Values:    ch.Values,
		Schema:    ch.Schema,
		Files:     ch.Files,
	}
	if ch.Metadata != nil {
		md := *ch.Metadata
		if ch.Metadata.Dependencies != nil {
			md.Dependencies = make([]*chart.Dependency, len(ch.Metadata.Dependencies))
			for i, d := range ch.Metadata.Dependencies {
				dep := *d
				md.Dependencies[i] = &dep
			}
		}
		cp.Metadata = &md
	}
	subs := ch.Dependencies()
	copies := make([]*chart.Chart, len(subs))
	for i, d := range subs {
		copies[i] = copyTree(d)
	}
	cp.SetDependencies(copies...)
	return cp
}
