package secrets_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/secrets"
)

func names(ss []plan.Secret) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

// TestSelectOnlyReprovisionedSecretsByDefault: for the example's components, a plain
// `rotate --component` selects what platzwart provisions again on upgrade (database
// passwords, OIDC client secrets) and a component's own Secrets that it takes up on
// every start (catalog takenUp: start), never one read only at first start, which
// needs --force; unknown components and Secrets are errors naming what exists.
func TestSelectOnlyReprovisionedSecretsByDefault(t *testing.T) {
	p := examplePlan(t)
	got, err := secrets.Select(p, "nextcloud", "", false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"demo-nextcloud-db-nextcloud", "demo-nextcloud-oidc"}; !slices.Equal(names(got), want) {
		t.Errorf("nextcloud: selected %v, want %v", names(got), want)
	}
	all, err := secrets.Select(p, "nextcloud", "", true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names(all), "demo-nextcloud-admin") {
		t.Errorf("nextcloud with force: %v, want its admin Secret too", names(all))
	}
	if _, err := secrets.Select(p, "keycloak", "demo-keycloak-admin", false); err == nil || !strings.Contains(err.Error(), "lock the component out") {
		t.Errorf("keycloak's admin password without force: %v, want a refusal", err)
	}
	// PostgreSQL's superuser password is its own, but taken up on every start (the
	// chart's init container sets it: TestSuperuserPasswordFollowsTheSecret).
	if got, err := secrets.Select(p, "postgresql", "", false); err != nil || !slices.Equal(names(got), []string{"demo-postgresql-admin"}) {
		t.Errorf("postgresql: selected %v (%v), want its superuser Secret", names(got), err)
	}
	if _, err := secrets.Select(p, "synapse", "demo-synapse-mas", false); err == nil || !strings.Contains(err.Error(), "lock the component out") {
		t.Errorf("MAS's encryption key without force: %v, want a refusal", err)
	}
	if _, err := secrets.Select(p, "nope", "", false); err == nil || !strings.Contains(err.Error(), "keycloak") {
		t.Errorf("unknown component: %v, want an error listing components with Secrets", err)
	}
	if _, err := secrets.Select(p, "keycloak", "demo-keycloak-nope", false); err == nil || !strings.Contains(err.Error(), "demo-keycloak-db-keycloak") {
		t.Errorf("unknown Secret: %v, want an error listing the component's Secrets", err)
	}
}

// TestCheckLost: a missing Secret is lost only when its component read it at first
// start and the component's release is installed; the error names every one.
func TestCheckLost(t *testing.T) {
	p := examplePlan(t)
	v := secrets.Versions{}
	for _, s := range p.Secrets {
		v[s.Name] = "sha256:x"
	}
	all := func(string) bool { return true }
	if err := secrets.CheckLost(p, v, all); err != nil {
		t.Fatalf("nothing missing: %v", err)
	}
	for _, n := range []string{"demo-keycloak-admin", "demo-nextcloud-admin", "demo-postgresql-admin", "demo-nextcloud-oidc"} {
		v[n] = secrets.Missing
	}
	if err := secrets.CheckLost(p, v, func(string) bool { return false }); err != nil {
		t.Errorf("nothing installed yet (a first install): %v", err)
	}
	err := secrets.CheckLost(p, v, func(rel string) bool { return rel != "demo-nextcloud" })
	var lost *secrets.LostError
	if !errors.As(err, &lost) {
		t.Fatalf("CheckLost: %v, want a *LostError", err)
	}
	if got := fmt.Sprint(lost.Lost); got != "[{demo-keycloak-admin keycloak demo-keycloak}]" {
		t.Errorf("lost %s, want only keycloak's admin (nextcloud is not installed; postgresql's superuser and the OIDC secret are taken up again)", got)
	}
}
