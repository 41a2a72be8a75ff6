package reconciler_test

import (
	"testing"

	"helm.sh/helm/v3/pkg/action"
	helmrelease "helm.sh/helm/v3/pkg/release"

	"github.com/platzwart/platzwart/reconciler"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/postrender"
	"github.com/platzwart/platzwart/reconciler/release"
)

// markPending records a new revision of a release in state pending-upgrade through
// Helm's own storage, next to the deployed one: exactly what an upgrade interrupted by
// SIGKILL leaves behind.
func markPending(t *testing.T, e *env, name string) {
	t.Helper()
	cfg := &action.Configuration{}
	if err := cfg.Init(e.cluster.Getter(e.ns), e.ns, "secret", func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	last, err := cfg.Releases.Last(name)
	if err != nil {
		t.Fatal(err)
	}
	next := *last
	info := *last.Info
	next.Info = &info
	next.Version = last.Version + 1
	next.Info.Status = helmrelease.StatusPendingUpgrade
	next.Info.Description = "Preparing upgrade"
	if err := cfg.Releases.Create(&next); err != nil {
		t.Fatal(err)
	}
}

// helmUpgradeOnly runs Helm's upgrade of one release of p the way platzwart does,
// labels included, and stops there: what a process killed while waiting leaves.
func helmUpgradeOnly(t *testing.T, e *env, p *plan.Plan, name string) {
	t.Helper()
	cfg := &action.Configuration{}
	if err := cfg.Init(e.cluster.Getter(e.ns), e.ns, "secret", func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	// The plan as the reconciler sees it: digests include the Secrets' versions.
	p, err := reconciler.WithSecretVersions(t.Context(), e.cluster, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range p.Releases {
		if rel.Name != name {
			continue
		}
		up := action.NewUpgrade(cfg)
		up.Namespace = rel.Namespace
		up.Labels = release.Labels(rel, true)
		up.PostRenderer = &postrender.Kustomize{Patches: rel.Patches, Where: rel.PatchesOrigin}
		if _, err := up.RunWithContext(t.Context(), rel.Name, rel.Chart.Chart, rel.Values); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no release %s in the plan", name)
}
