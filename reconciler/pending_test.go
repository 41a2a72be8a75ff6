package reconciler_test

import (
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
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
	next.Info.Status = release.StatusPendingUpgrade
	next.Info.Description = "Preparing upgrade"
	if err := cfg.Releases.Create(&next); err != nil {
		t.Fatal(err)
	}
}
