// Package render turns the releases of a plan into Kubernetes manifests without a
// cluster, through the Helm SDK in client-only mode, with the workplace's kustomize
// patches applied as a post-renderer.
package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"

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
	install.PostRenderer = &postrender.Kustomize{Patches: rel.Patches, Where: rel.PatchesOrigin}
	out, err := install.RunWithContext(ctx, rel.Chart.Chart, rel.Values)
	if err != nil {
		return nil, fmt.Errorf("component %q: chart %q: %w", rel.Component, rel.Chart.File, err)
	}
	return &Manifest{Release: rel.Name, Component: rel.Component, Manifest: out.Manifest, Hooks: out.Hooks}, nil
}

// Plan renders every release of p in order. It returns all manifests or, when any
// release fails, no manifests and every error.
func Plan(ctx context.Context, p *plan.Plan) ([]*Manifest, error) {
	out := make([]*Manifest, 0, len(p.Releases))
	var errs []error
	for _, rel := range p.Releases {
		m, err := Release(ctx, rel)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, m)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
