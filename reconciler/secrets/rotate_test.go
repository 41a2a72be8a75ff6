package secrets_test

import (
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
// passwords, OIDC client secrets) and never a component's own Secret, which needs
// --force; unknown components and Secrets are errors naming what exists.
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
	if _, err := secrets.Select(p, "postgresql", "", false); err == nil || !strings.Contains(err.Error(), "demo-postgresql-admin") {
		t.Errorf("postgresql has only its own superuser Secret: %v, want a refusal naming it", err)
	}
	if _, err := secrets.Select(p, "nope", "", false); err == nil || !strings.Contains(err.Error(), "keycloak") {
		t.Errorf("unknown component: %v, want an error listing components with Secrets", err)
	}
	if _, err := secrets.Select(p, "keycloak", "demo-keycloak-nope", false); err == nil || !strings.Contains(err.Error(), "demo-keycloak-db-keycloak") {
		t.Errorf("unknown Secret: %v, want an error listing the component's Secrets", err)
	}
}
