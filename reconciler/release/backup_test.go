package release

import (
	"testing"

	"github.com/platzwart/platzwart/reconciler/plan"
)

// TestBackupNeededOnlyWhenARiskyVersionIsReached: a backup precedes only the step that
// reaches a risky version; upgrades that keep the version (values, chart or Secret
// changes) take none, and neither do components without databases.
func TestBackupNeededOnlyWhenARiskyVersionIsReached(t *testing.T) {
	dbs := []plan.Database{{Name: "keycloak", Server: "demo-postgresql"}}
	for _, c := range []struct {
		name     string
		deployed string
		step     plan.Release
		want     bool
	}{
		{"reaches a risky version", "26.6.0", plan.Release{Version: "26.7.4", Risky: true, Databases: dbs}, true},
		{"stays at a risky version", "26.7.4", plan.Release{Version: "26.7.4", Risky: true, Databases: dbs}, false},
		{"same version spelt with v", "v26.7.4", plan.Release{Version: "26.7.4", Risky: true, Databases: dbs}, false},
		{"deployed version unrecorded", "", plan.Release{Version: "26.7.4", Risky: true, Databases: dbs}, true},
		{"not risky", "1.0.0", plan.Release{Version: "2.0.0", Databases: dbs}, false},
		{"no databases", "1.0.0", plan.Release{Version: "2.0.0", Risky: true}, false},
		{"no versions", "", plan.Release{}, false},
	} {
		if got := backupNeeded(c.deployed, &c.step); got != c.want {
			t.Errorf("%s: backupNeeded(%q, %s) = %v, want %v", c.name, c.deployed, c.step.Version, got, c.want)
		}
	}
}
