// Package diff shows what a change does to workplaces, as Kubernetes manifests per
// release: between the cluster and the plan of a repository (Cluster), or between
// the plans of two revisions of a repository, offline (Revisions).
//
// Values of Secrets, and every value the credential guard (reconciler/guard) takes
// for a credential literal, are masked on both sides; a masked value that differs
// shows as MaskChanged. Values are compared by hash and never printed.
package diff

import (
	"fmt"

	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/render"
)

// Action is what happens to a release.
type Action string

// Actions. They are reconciler/release's, plus Drift.
const (
	Install   Action = "install"
	Upgrade   Action = "upgrade"
	Uninstall Action = "uninstall"
	Unchanged Action = "unchanged"
	// Drift: the release's chart, values and patches are unchanged, but live objects
	// differ from its manifest (changed or deleted by hand); apply corrects them.
	Drift Action = "drift"
	// Conflict: the release name is taken by a release platzwart does not manage for
	// the workplace; apply leaves it alone and fails.
	Conflict Action = "conflict"
)

// Change is what happens to one object.
type Change string

// Changes.
const (
	Added   Change = "add"
	Changed Change = "change"
	Removed Change = "remove"
	// Kept: the object leaves the release but stays in the cluster (Helm's
	// resource policy keep, which platzwart puts on every volume claim).
	Kept Change = "keep"
)

// Object is one object that changes. Unchanged objects are not listed.
type Object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	// Hook is true for a Helm hook (a Job and what it needs), run on install or upgrade.
	Hook   bool   `json:"hook,omitempty"`
	Action Change `json:"action"`
	// Diff is the unified diff of the object as YAML, masked ("" for Kept).
	Diff string `json:"diff,omitempty"`
}

func (o Object) String() string {
	s := ref{kind: o.Kind, namespace: o.Namespace, name: o.Name}.String()
	if o.Hook {
		s += " (hook)"
	}
	return s
}

// Release is one release of a workplace and the objects that change.
type Release struct {
	// Workplace is "<namespace>/<name>".
	Workplace string `json:"workplace"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Component string `json:"component"`
	Action    Action `json:"action"`
	// Reason says why (from the release engine in cluster mode).
	Reason string `json:"reason,omitempty"`
	// Versions is the component version path of an upgrade: the version it comes
	// from, then every version it upgrades to in order, stepping stones included
	// (plan.Release.Path); empty when the component version stays.
	Versions []string `json:"versions,omitempty"`
	Objects  []Object `json:"objects"`
}

// Count returns how many objects have change c.
func (r Release) Count(c Change) int {
	n := 0
	for _, o := range r.Objects {
		if o.Action == c {
			n++
		}
	}
	return n
}

// Report is the diff of every release of every workplace.
type Report struct {
	// From and To label the two sides: "live" and "planned", or two revisions.
	From string `json:"from"`
	To   string `json:"to"`
	// Releases, per workplace in plan order, uninstalls after the planned releases.
	Releases []Release `json:"releases"`
	// RemovedWorkplaces are Workplaces (namespace/name) only in From: platzwart
	// leaves their releases in place (platzwart uninstall removes them).
	RemovedWorkplaces []string `json:"removedWorkplaces,omitempty"`
}

// Changed reports whether anything would change: any release not unchanged, or a
// removed Workplace.
func (r *Report) Changed() bool {
	if len(r.RemovedWorkplaces) > 0 {
		return true
	}
	for _, rel := range r.Releases {
		if rel.Action != Unchanged {
			return true
		}
	}
	return false
}

// compare lists the objects that differ between two sets (either may be nil),
// hooks included, in the order of after then the removed ones of before.
func compare(before, after *objectSet, from, to string) ([]Object, error) {
	out := []Object{} // [] rather than null in JSON
	if after == nil {
		after = &objectSet{}
	}
	if before == nil {
		before = &objectSet{}
	}
	for _, r := range after.order {
		a := after.byRef[r]
		na := normalize(a.fields)
		b, ok := before.byRef[r]
		if !ok {
			o, err := objectDiff(a, nil, na, Added, from, to)
			if err != nil {
				return nil, err
			}
			out = append(out, o)
			continue
		}
		nb := normalize(b.fields)
		if equal(nb, na) {
			continue
		}
		o, err := objectDiff(a, nb, na, Changed, from, to)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	for _, r := range before.order {
		if _, ok := after.byRef[r]; ok {
			continue
		}
		b := before.byRef[r]
		o, err := removal(b, normalize(b.fields), from, to)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// removal describes an object leaving its release: removed, or kept by its policy.
func removal(it *item, fields map[string]any, from, to string) (Object, error) {
	if kept(fields) {
		return objectDiff(it, nil, nil, Kept, from, to)
	}
	return objectDiff(it, fields, nil, Removed, from, to)
}

// objectDiff builds the Object of an item with the diff of before and after.
func objectDiff(it *item, before, after map[string]any, c Change, from, to string) (Object, error) {
	o := Object{APIVersion: it.apiVersion, Kind: it.kind, Namespace: it.namespace, Name: it.name, Hook: it.hook, Action: c}
	if c == Kept {
		return o, nil
	}
	label := it.ref.String()
	d, err := unified(before, after, label+" ("+from+")", label+" ("+to+")")
	if err != nil {
		return o, fmt.Errorf("%s: %w", label, err)
	}
	o.Diff = d
	return o, nil
}

// Revisions compares the rendered workplaces of two revisions of a repository,
// without a cluster: a release only in to is installed, one only in from is
// uninstalled, one in both is upgraded when its digest (chart, values, patches)
// differs and unchanged otherwise; manifests and hooks are compared object by
// object. An upgrade that changes the component version gets the path that the
// plan of to computes from the version planned in from (Release.Versions); a refused
// path is an error. from and to label the two sides.
func Revisions(from, to []*render.Workplace, fromLabel, toLabel string) (*Report, error) {
	rep := &Report{From: fromLabel, To: toLabel}
	old := map[string]*render.Workplace{}
	for _, w := range from {
		old[workplaceID(w.Plan)] = w
	}
	seen := map[string]bool{}
	for _, w := range to {
		id := workplaceID(w.Plan)
		seen[id] = true
		rels, err := compareWorkplace(old[id], w, fromLabel, toLabel)
		if err != nil {
			return nil, fmt.Errorf("workplace %s: %w", id, err)
		}
		rep.Releases = append(rep.Releases, rels...)
	}
	for _, w := range from {
		if id := workplaceID(w.Plan); !seen[id] {
			rep.RemovedWorkplaces = append(rep.RemovedWorkplaces, id)
		}
	}
	return rep, nil
}

func workplaceID(p *plan.Plan) string { return p.Namespace + "/" + p.Workplace }

// renderedRelease is a planned release and its rendered manifest.
type renderedRelease struct {
	plan     *plan.Release
	manifest *render.Manifest
}

// releasesOf pairs a workplace's planned releases with their manifests, in plan order.
func releasesOf(w *render.Workplace) ([]renderedRelease, error) {
	byName := map[string]*render.Manifest{}
	for _, m := range w.Manifests {
		byName[m.Release] = m
	}
	var out []renderedRelease
	for _, rel := range w.Plan.Releases {
		m, ok := byName[rel.Name]
		if !ok {
			return nil, fmt.Errorf("workplace %s: release %s was not rendered", workplaceID(w.Plan), rel.Name)
		}
		out = append(out, renderedRelease{plan: rel, manifest: m})
	}
	return out, nil
}

// versionPath returns the component version path of an upgrade from the release as
// planned in revision from to the release as planned now: the version before, then
// every step of the path the newer plan computes from it (to.Path, as the engine
// does from the deployed version). Nil when the version stays or either side has
// none. A refused path (a downgrade, a skipped stepping stone, no path) is the
// plan's error, naming the field the target version comes from.
func versionPath(before, after *plan.Release, from string) ([]string, error) {
	steps, err := after.Path(before.Version)
	if err != nil {
		return nil, fmt.Errorf("release %s at version %s in %s: %w", after.Name, before.Version, from, err)
	}
	if len(steps) == 0 {
		return nil, nil
	}
	out := []string{before.Version}
	for _, s := range steps {
		out = append(out, s.Version)
	}
	return out, nil
}

// compareWorkplace compares one workplace of two revisions; before is nil when the
// workplace is new.
func compareWorkplace(before, after *render.Workplace, from, to string) ([]Release, error) {
	ns := after.Plan.Namespace
	oldRels := map[string]renderedRelease{}
	var oldOrder []renderedRelease
	if before != nil {
		rs, err := releasesOf(before)
		if err != nil {
			return nil, err
		}
		oldOrder = rs
		for _, r := range rs {
			oldRels[r.plan.Name] = r
		}
	}
	newRels, err := releasesOf(after)
	if err != nil {
		return nil, err
	}
	var out []Release
	planned := map[string]bool{}
	for _, r := range newRels {
		planned[r.plan.Name] = true
		rel := Release{Workplace: workplaceID(after.Plan), Namespace: ns, Name: r.plan.Name, Component: r.plan.Component}
		afterSet, err := renderedObjects(r.manifest, ns, offlineScope)
		if err != nil {
			return nil, err
		}
		var beforeSet *objectSet
		old, existed := oldRels[r.plan.Name]
		if existed {
			if beforeSet, err = renderedObjects(old.manifest, ns, offlineScope); err != nil {
				return nil, err
			}
		}
		if rel.Objects, err = compare(beforeSet, afterSet, from, to); err != nil {
			return nil, fmt.Errorf("release %s: %w", r.plan.Name, err)
		}
		switch {
		case !existed:
			rel.Action, rel.Reason = Install, "not in "+from
		case old.plan.Digest != r.plan.Digest || len(rel.Objects) > 0:
			rel.Action, rel.Reason = Upgrade, "chart, values or patches changed"
			if rel.Versions, err = versionPath(old.plan, r.plan, from); err != nil {
				return nil, err
			}
		default:
			rel.Action, rel.Reason = Unchanged, "digest unchanged"
		}
		out = append(out, rel)
	}
	for _, r := range oldOrder {
		if planned[r.plan.Name] {
			continue
		}
		rel := Release{Workplace: workplaceID(after.Plan), Namespace: ns, Name: r.plan.Name, Component: r.plan.Component,
			Action: Uninstall, Reason: "component no longer selected"}
		beforeSet, err := renderedObjects(r.manifest, ns, offlineScope)
		if err != nil {
			return nil, err
		}
		// Helm's uninstall deletes the release's manifest objects; hooks it ran stay.
		manifestOnly := &objectSet{}
		for _, ref := range beforeSet.order {
			if it := beforeSet.byRef[ref]; !it.hook {
				manifestOnly.add(it)
			}
		}
		if rel.Objects, err = compare(manifestOnly, nil, from, to); err != nil {
			return nil, fmt.Errorf("release %s: %w", r.plan.Name, err)
		}
		out = append(out, rel)
	}
	return out, nil
}
