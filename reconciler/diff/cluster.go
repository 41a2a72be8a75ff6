package diff

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/platzwart/platzwart/reconciler"
	"github.com/platzwart/platzwart/reconciler/guard"
	"github.com/platzwart/platzwart/reconciler/kube"
	"github.com/platzwart/platzwart/reconciler/preflight"
	"github.com/platzwart/platzwart/reconciler/release"
	"github.com/platzwart/platzwart/reconciler/render"
)

// FieldManager is the field manager of the dry-run requests.
const FieldManager = "platzwart-diff"

// Labels of the two sides of a cluster diff.
const (
	LabelLive    = "live"
	LabelPlanned = "planned"
)

// Ownership metadata Helm puts on every object it installs or upgrades.
const (
	annotationReleaseName      = "meta.helm.sh/release-name"
	annotationReleaseNamespace = "meta.helm.sh/release-namespace"
	labelManagedBy             = "app.kubernetes.io/managed-by"
)

// Cluster compares every release of the workplaces with the cluster, the way apply
// would change it, and writes nothing. Per workplace: the plan gets the content
// versions of its Secrets (as apply computes them), is rendered again with them, and
// the release engine decides each release's action from Helm's storage. Then, per
// object of the manifest: a missing object is added; an existing one is sent as a
// server-side dry run of the patch Helm's upgrade sends (preflight.HelmPatch: from
// the current revision's object to the new one, against the live one), and the live
// object is compared with the API server's answer, so changes made by hand (drift)
// show too. Objects of the current revision that leave the release, and every
// object of a release to uninstall, are removals (or kept, by their resource
// policy). Hooks are compared with the current revision's hooks. An unchanged
// release whose live objects differ is reported as Drift. An upgrade that changes
// the component version carries the engine's path from the deployed version
// (release.Step.Versions); a path the engine refuses (a downgrade, a skipped
// stepping stone) is its error, naming the release and the field.
//
// opts are the guardrail settings of the render; the cluster's REST mapper decides
// the scope of kinds unless opts set one.
func Cluster(ctx context.Context, c *kube.Cluster, ws []*render.Workplace, opts render.Options) (*Report, error) {
	if opts.Guard.Scope == nil {
		opts.Guard.Scope = guard.RESTMapperScope(c.Mapper)
	}
	d := &clusterDiff{c: c, engine: release.New(c, release.Options{})}
	rep := &Report{From: LabelLive, To: LabelPlanned}
	for _, w := range ws {
		rels, err := d.workplace(ctx, w, opts)
		if err != nil {
			return nil, fmt.Errorf("workplace %s: %w", workplaceID(w.Plan), err)
		}
		rep.Releases = append(rep.Releases, rels...)
	}
	return rep, nil
}

type clusterDiff struct {
	c      *kube.Cluster
	engine *release.Engine
}

func (d *clusterDiff) workplace(ctx context.Context, w *render.Workplace, opts render.Options) ([]Release, error) {
	p, err := reconciler.WithSecretVersions(ctx, d.c, w.Plan)
	if err != nil {
		return nil, err
	}
	ms, err := render.PlanWith(ctx, p, opts)
	if err != nil {
		return nil, err
	}
	manifests := map[string]*render.Manifest{}
	for _, m := range ms {
		manifests[m.Release] = m
	}
	steps, err := d.engine.Decide(ctx, p)
	if err != nil {
		return nil, err
	}
	var out []Release
	for _, s := range steps {
		rel := Release{Workplace: workplaceID(p), Namespace: p.Namespace, Name: s.Release, Component: s.Component,
			Action: Action(s.Action), Reason: s.Reason, Versions: s.Versions}
		rel.Objects = []Object{}
		if s.Action != release.ActionConflict {
			if rel.Objects, err = d.release(ctx, p.Namespace, s, manifests[s.Release]); err != nil {
				return nil, fmt.Errorf("release %s: %w", s.Release, err)
			}
		}
		if rel.Action == Unchanged && len(rel.Objects) > 0 {
			rel.Action, rel.Reason = Drift, "live objects differ from the release's manifest; apply corrects them"
		}
		out = append(out, rel)
	}
	return out, nil
}

// release lists the objects of one release that change; m is nil for an uninstall.
func (d *clusterDiff) release(ctx context.Context, namespace string, s release.Step, m *render.Manifest) ([]Object, error) {
	current := &objectSet{}
	if err := parseObjects(current, s.CurrentManifest(), namespace, false, d.namespaced); err != nil {
		return nil, fmt.Errorf("current revision: %w", err)
	}
	currentHooks := &objectSet{}
	for _, h := range s.CurrentHooks() {
		if err := parseObjects(currentHooks, h.Manifest, namespace, true, d.namespaced); err != nil {
			return nil, fmt.Errorf("current revision: hook %s: %w", h.Path, err)
		}
	}
	out := []Object{} // [] rather than null in JSON
	planned := &objectSet{}
	if m != nil {
		var err error
		if planned, err = renderedObjects(m, namespace, d.namespaced); err != nil {
			return nil, err
		}
	}
	newHooks := &objectSet{}
	for _, r := range planned.order {
		it := planned.byRef[r]
		if it.hook {
			newHooks.add(it)
			continue
		}
		o, changed, err := d.object(ctx, s, it, current.byRef[r])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r, err)
		}
		if changed {
			out = append(out, o)
		}
	}
	// Objects of the current revision that the new one no longer has: Helm deletes
	// them (an uninstall deletes every one).
	for _, r := range current.order {
		if _, ok := planned.byRef[r]; ok {
			continue
		}
		it := current.byRef[r]
		live, err := d.get(ctx, it)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r, err)
		}
		if live == nil {
			continue // already gone: nothing to delete
		}
		o, err := removal(it, normalize(live.Object), LabelLive, LabelPlanned)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	if m != nil {
		// Hooks run again with the new revision; they are compared with the stored ones
		// (the live hook objects are the products of their last run).
		hooks, err := compare(currentHooks, newHooks, fmt.Sprintf("revision %d", s.Revision), LabelPlanned)
		if err != nil {
			return nil, err
		}
		for _, o := range hooks {
			if o.Action != Removed && o.Action != Kept { // Helm leaves hooks it no longer renders
				out = append(out, o)
			}
		}
	}
	return out, nil
}

// object compares one planned object with the cluster: missing is Added; existing is
// dry-run patched the way Helm's upgrade patches it, and the answer compared with the
// live object.
func (d *clusterDiff) object(ctx context.Context, s release.Step, it, previous *item) (Object, bool, error) {
	live, err := d.get(ctx, it)
	if err != nil {
		return Object{}, false, err
	}
	target := toUnstructured(it)
	md := target.GetAnnotations()
	if md == nil {
		md = map[string]string{}
	}
	md[annotationReleaseName], md[annotationReleaseNamespace] = s.Release, it.namespace
	target.SetAnnotations(md)
	labels := target.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[labelManagedBy] = "Helm"
	target.SetLabels(labels)
	if live == nil {
		o, err := objectDiff(it, nil, normalize(target.Object), Added, LabelLive, LabelPlanned)
		return o, true, err
	}
	var prev *unstructured.Unstructured
	if previous != nil {
		prev = toUnstructured(previous)
	}
	patch, pt, err := preflight.HelmPatch(prev, target, live)
	if err != nil {
		return Object{}, false, fmt.Errorf("computing Helm's patch: %w", err)
	}
	after := live
	if string(patch) != "{}" {
		after = live.DeepCopy()
		if err := d.c.Client.Patch(ctx, after, client.RawPatch(pt, patch), client.DryRunAll, client.FieldOwner(FieldManager)); err != nil {
			return Object{}, false, fmt.Errorf("server-side dry run: %w", err)
		}
	}
	nb, na := normalize(live.Object), normalize(after.Object)
	if equal(nb, na) {
		return Object{}, false, nil
	}
	o, err := objectDiff(it, nb, na, Changed, LabelLive, LabelPlanned)
	return o, true, err
}

// get reads the live object like it; nil when it does not exist.
func (d *clusterDiff) get(ctx context.Context, it *item) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(it.apiVersion)
	u.SetKind(it.kind)
	err := d.c.Client.Get(ctx, client.ObjectKey{Namespace: it.namespace, Name: it.name}, u)
	switch {
	case err == nil:
		return u, nil
	case apierrors.IsNotFound(err):
		return nil, nil
	case meta.IsNoMatchError(err):
		return nil, fmt.Errorf("the cluster serves no kind %s in %s", it.kind, it.apiVersion)
	}
	return nil, fmt.Errorf("reading it: %w", err)
}

// namespaced asks the cluster's REST mapper for the scope of a kind, and the
// built-in list when the cluster does not know it.
func (d *clusterDiff) namespaced(group, kind string) bool {
	m, err := d.c.Mapper.RESTMapping(schema.GroupKind{Group: group, Kind: kind})
	if err != nil {
		return offlineScope(group, kind)
	}
	return m.Scope.Name() == meta.RESTScopeNameNamespace
}

// toUnstructured copies an item into an object for the API, with its namespace.
func toUnstructured(it *item) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: runtime.DeepCopyJSON(jsonNumbers(it.fields).(map[string]any))}
	if it.namespace != "" {
		u.SetNamespace(it.namespace)
	}
	return u
}
