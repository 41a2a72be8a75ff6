// Package render turns the releases of a plan into Kubernetes manifests without a
// cluster, through the Helm SDK in client-only mode, with the workplace's kustomize
// patches applied as a post-renderer.
package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"

	"github.com/platzwart/platzwart/reconciler/guard"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/postrender"
)

// KubeVersion is the Kubernetes version charts see when rendered without a cluster.
const KubeVersion = "v1.37.0"

// Manifest is the rendered output of one release.
type Manifest struct {
	// Release is the release name.
	Release string
	// Component is the component the release implements.
	Component string
	// Manifest holds the resources Helm installs, in Helm's install order.
	Manifest string
	// Hooks holds the hook resources (Jobs and what they need), in hook order.
	Hooks []*release.Hook
	// StoredSize is the size of the release in Helm's storage (see EncodedSize); 0
	// for a manifest taken from Helm's storage (PlanReusing).
	StoredSize int
}

// Bytes returns the release's manifests and hooks as one YAML stream, like `helm template`.
func (m *Manifest) Bytes() []byte {
	var b bytes.Buffer
	b.WriteString(strings.TrimSpace(m.Manifest))
	b.WriteString("\n")
	for _, h := range m.Hooks {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", h.Path, strings.TrimSpace(h.Manifest))
	}
	return b.Bytes()
}

// Release renders one release.
func Release(ctx context.Context, rel *plan.Release) (*Manifest, error) {
	out, err := dryRun(ctx, rel)
	if err != nil {
		return nil, fmt.Errorf("component %q: chart %q: %w", rel.Component, rel.Chart.File, err)
	}
	if err := checkHookVolumes(out.Hooks); err != nil {
		return nil, fmt.Errorf("component %q: chart %q: %w", rel.Component, rel.Chart.File, err)
	}
	size, err := checkSize(out)
	if err != nil {
		return nil, fmt.Errorf("component %q: %w", rel.Component, err)
	}
	return &Manifest{Release: rel.Name, Component: rel.Component, Manifest: out.Manifest, Hooks: out.Hooks, StoredSize: size}, nil
}

// dryRun is Helm's client-only install of rel with the workplace's post-renderer:
// values, templates, Helm's sorting and the patches.
func dryRun(ctx context.Context, rel *plan.Release) (*release.Release, error) {
	kv, err := chartutil.ParseKubeVersion(KubeVersion)
	if err != nil {
		return nil, err
	}
	cfg := &action.Configuration{Log: func(string, ...any) {}}
	install := action.NewInstall(cfg)
	install.DryRun = true
	install.ClientOnly = true
	install.Replace = true
	install.IncludeCRDs = true
	install.ReleaseName = rel.Name
	install.Namespace = rel.Namespace
	install.KubeVersion = kv
	install.PostRenderer = &postrender.Kustomize{Patches: rel.Patches, Where: rel.PatchesOrigin, PodAnnotations: rel.PodAnnotations}
	return install.RunWithContext(ctx, rel.Chart.Helm(), rel.Values)
}

// checkHookVolumes refuses volumes in hooks. Helm post-renders only the release
// manifest, never hooks, so the keep policy cannot reach them, and Helm deletes a
// hook's resources before creating them again (hook-delete-policy
// before-hook-creation is the default): a claim in a hook would lose its data on the
// next upgrade.
func checkHookVolumes(hooks []*release.Hook) error {
	var errs []error
	for _, h := range hooks {
		objs, err := postrender.Parse([]byte(h.Manifest))
		if err != nil {
			errs = append(errs, fmt.Errorf("hook %s: %w", h.Path, err))
			continue
		}
		for _, o := range objs {
			volume := o.Group() == "" && o.Kind == "PersistentVolumeClaim"
			if o.Group() == "apps" && o.Kind == "StatefulSet" {
				spec, _ := o.Fields["spec"].(map[string]any)
				templates, _ := spec["volumeClaimTemplates"].([]any)
				volume = len(templates) > 0
			}
			if volume {
				errs = append(errs, fmt.Errorf("hook %s: %s: a volume in a hook would be deleted: Helm does not post-render hooks (no keep policy) and deletes hook resources before creating them again; move it into the release's templates", h.Path, o.ID()))
			}
		}
	}
	return errors.Join(errs...)
}

// Options are the install's guardrail settings.
type Options struct {
	// Guard holds the tenancy settings (denied namespaces, cluster-scoped objects).
	Guard guard.Options
}

// Plan renders every release of p in order and checks the result with the default
// Options (see PlanWith).
func Plan(ctx context.Context, p *plan.Plan) ([]*Manifest, error) {
	return PlanWith(ctx, p, Options{})
}

// PlanWith renders every release of p in order and runs Check. It returns all
// manifests or, when any release fails, no manifests and every error, each naming the
// workplace's file.
func PlanWith(ctx context.Context, p *plan.Plan, opts Options) ([]*Manifest, error) {
	return PlanReusing(ctx, p, nil, opts)
}

// Stored is a release's manifest and hooks as Helm stored them for its newest
// revision (post-rendered manifest, hooks as rendered).
type Stored struct {
	Manifest string
	Hooks    []*release.Hook
}

// PlanReusing is PlanWith for releases some of which need no render: a release of p
// with an entry in stored takes that manifest and those hooks instead of being
// rendered, every other release is rendered, and Check runs over all of them in plan
// order, so the guards (objects in the namespace, a host served twice, a node port
// claimed twice) still see the whole workplace.
//
// The preflight passes the releases whose digest equals the plan's: Helm's stored
// manifest is then what a render would give, and it is also what the cluster holds
// and what drift correction puts back, so it is the right input for the guards even
// where a render could differ in what the digest does not cover (the Kubernetes
// version charts see, a newer post-renderer). Stored releases are not checked for
// size or volumes in hooks: Helm holds them already, and their hooks do not run
// without an upgrade. A stored entry for a release that is not in p is an error.
func PlanReusing(ctx context.Context, p *plan.Plan, stored map[string]Stored, opts Options) ([]*Manifest, error) {
	out := make([]*Manifest, 0, len(p.Releases))
	var errs []error
	inPlan := make(map[string]bool, len(p.Releases))
	for _, rel := range p.Releases {
		inPlan[rel.Name] = true
	}
	for _, name := range sortedKeys(stored) {
		if !inPlan[name] {
			errs = append(errs, fmt.Errorf("%s: Workplace %q: stored manifest of release %s, which is not in the plan", p.File, p.Workplace, name))
		}
	}
	for _, rel := range p.Releases {
		if s, ok := stored[rel.Name]; ok {
			out = append(out, &Manifest{Release: rel.Name, Component: rel.Component, Manifest: s.Manifest, Hooks: s.Hooks})
			continue
		}
		// Ctrl-C stops rendering between releases (a chart renders in milliseconds).
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("rendering workplace %s/%s: %w", p.Namespace, p.Workplace, err)
		}
		m, err := Release(ctx, rel)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: Workplace %q: %w", p.File, p.Workplace, err))
			continue
		}
		out = append(out, m)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := Check(p, out, opts); err != nil {
		return nil, err
	}
	return out, nil
}

// Check runs the guardrails on the rendered manifests of one workplace: its namespace
// is not denied, every object of every release (manifest and hooks, after patches)
// stays in it (guard.Objects), no host and path is served by two components and no
// fixed node port is claimed twice. The controller calls it (through PlanWith)
// with its own namespace added to the deny list.
func Check(p *plan.Plan, ms []*Manifest, opts Options) error {
	if pat := opts.Guard.DeniedNamespace(p.Namespace); pat != "" {
		return fmt.Errorf("%s: Workplace %q: metadata.namespace: namespace %q is denied for workplaces (matches %q of the deny list %s)",
			p.File, p.Workplace, p.Namespace, pat, strings.Join(opts.Guard.Deny(), ", "))
	}
	byName := map[string]*plan.Release{}
	for _, rel := range p.Releases {
		byName[rel.Name] = rel
	}
	var errs []error
	var routes []guard.Claim
	var ports []guard.NodePort
	for _, m := range ms {
		rel, ok := byName[m.Release]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: Workplace %q: release %s is not in the plan", p.File, p.Workplace, m.Release))
			continue
		}
		// Each manifest is decoded once for every guard: decoding is most of what
		// Check costs (measured in docs/adr/0016).
		objs, err := m.Objects()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: Workplace %q: component %q: %w", p.File, p.Workplace, rel.Component, err))
			continue
		}
		r := guard.Release{File: p.File, Workplace: p.Workplace, Namespace: p.Namespace, Component: rel.Component, ClusterScoped: rel.ClusterScoped}
		if err := guard.Objects(r, objs, opts.Guard); err != nil {
			errs = append(errs, err)
		}
		routes = append(routes, routeClaims(p, rel, objs)...)
		ports = append(ports, releaseNodePorts(p, rel, objs)...)
	}
	if err := guard.HostsInWorkplace(routes); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		errs = append(errs, guard.CheckNodePorts(ports))
	}
	return errors.Join(errs...)
}

// routeClaims are the hosts the Ingresses and HTTPRoutes of a release serve.
func routeClaims(p *plan.Plan, rel *plan.Release, objs []*postrender.Object) []guard.Claim {
	var out []guard.Claim
	for _, r := range guard.Routes(objs) {
		c := guard.Claim{Route: r, File: p.File, Workplace: p.Namespace + "/" + p.Workplace, Component: rel.Component}
		for _, k := range sortedKeys(rel.Hosts) {
			if strings.EqualFold(rel.Hosts[k], r.Host) {
				c.Key = k
				break
			}
		}
		out = append(out, c)
	}
	return out
}

// hostClaims are every host a rendered workplace claims: its domain, its components'
// hosts and what its Ingresses and HTTPRoutes serve.
func hostClaims(w *Workplace) ([]guard.Claim, error) {
	p := w.Plan
	out := PlanHostClaims(p)
	byName := map[string]*plan.Release{}
	for _, rel := range p.Releases {
		byName[rel.Name] = rel
	}
	for _, m := range w.Manifests {
		objs, err := m.Objects()
		if err != nil {
			return nil, err
		}
		if rel, ok := byName[m.Release]; ok {
			out = append(out, routeClaims(p, rel, objs)...)
		}
	}
	return out, nil
}

// PlanHostClaims are the hosts a plan claims without rendering: the workplace's
// domain and every component's hosts (hosts that values set in Ingresses or HTTPRoutes
// show only in the rendered manifests: see CheckCollisions).
func PlanHostClaims(p *plan.Plan) []guard.Claim {
	id := p.Namespace + "/" + p.Workplace
	out := []guard.Claim{{Route: guard.Route{Host: p.Domain}, File: p.File, Workplace: id, Component: "(workplace)", Key: "spec.domain"}}
	for _, rel := range p.Releases {
		for _, k := range sortedKeys(rel.Hosts) {
			out = append(out, guard.Claim{Route: guard.Route{Host: rel.Hosts[k]}, File: p.File, Workplace: id, Component: rel.Component, Key: k})
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Objects decodes the release's objects: manifest and hooks.
func (m *Manifest) Objects() ([]*postrender.Object, error) {
	objs, err := postrender.Parse([]byte(m.Manifest))
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	for _, h := range m.Hooks {
		ho, err := postrender.Parse([]byte(h.Manifest))
		if err != nil {
			return nil, fmt.Errorf("hook %s: %w", h.Path, err)
		}
		objs = append(objs, ho...)
	}
	return objs, nil
}

// Workplace is the plan and the rendered manifests of one workplace.
type Workplace struct {
	Plan      *plan.Plan
	Manifests []*Manifest
}

// Repository plans and renders every workplace of repo and runs every check that
// needs no cluster: Check per workplace, and CheckCollisions across the repository's
// workplaces. It returns every workplace or, on any error, none and every error.
func Repository(ctx context.Context, repo *load.Repository, opts Options) ([]*Workplace, error) {
	var out []*Workplace
	var errs []error
	for _, w := range repo.Workplaces {
		p, err := plan.Build(w, repo.Catalog)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ms, err := PlanWith(ctx, p, opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, &Workplace{Plan: p, Manifests: ms})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := CheckCollisions(out); err != nil {
		return nil, err
	}
	return out, nil
}

// CheckCollisions refuses what two of the workplaces ws would both claim: a host
// (their domains, their components' hosts, what their Ingresses and HTTPRoutes
// serve) or a fixed node port (also twice within one workplace), naming both
// claimants. Repository runs it across a repository; the controller can run it
// across every Workplace it knows.
func CheckCollisions(ws []*Workplace) error {
	var claims []guard.Claim
	var ports []guard.NodePort
	for _, w := range ws {
		c, err := hostClaims(w)
		if err != nil {
			return err
		}
		claims = append(claims, c...)
		p, err := nodePorts(w)
		if err != nil {
			return err
		}
		ports = append(ports, p...)
	}
	return errors.Join(guard.HostsAcrossWorkplaces(claims), guard.CheckNodePorts(ports))
}

// nodePorts are the fixed node ports of a rendered workplace's Services.
func nodePorts(w *Workplace) ([]guard.NodePort, error) {
	p := w.Plan
	byName := map[string]*plan.Release{}
	for _, rel := range p.Releases {
		byName[rel.Name] = rel
	}
	var out []guard.NodePort
	for _, m := range w.Manifests {
		objs, err := m.Objects()
		if err != nil {
			return nil, err
		}
		rel, ok := byName[m.Release]
		if !ok {
			continue
		}
		out = append(out, releaseNodePorts(p, rel, objs)...)
	}
	return out, nil
}

// releaseNodePorts are the fixed node ports of one release's decoded objects.
func releaseNodePorts(p *plan.Plan, rel *plan.Release, objs []*postrender.Object) []guard.NodePort {
	var out []guard.NodePort
	for _, np := range guard.NodePorts(objs) {
		np.File, np.Workplace, np.Component = p.File, p.Namespace+"/"+p.Workplace, rel.Component
		out = append(out, np)
	}
	return out
}
