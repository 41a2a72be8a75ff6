package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
)

// TestRegistrations: for an external identity provider, plan's output lists each
// consumer's client with the URIs to register (table and JSON); for keycloak, which
// registers its clients itself, nothing.
func TestRegistrations(t *testing.T) {
	ext := `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: demo, namespace: demo}
spec:
  domain: 192.168.49.2.sslip.io
  profile: minikube
  components: {identity: external-oidc, video: bigbluebutton}
  values:
    bigbluebutton:
      servers: [{url: "https://bbb.example.org/bigbluebutton/", secret: {name: bbb, key: secret}}]
    external-oidc:
      issuerURL: https://login.corp.example/realms/staff
      clients:
`
	for _, c := range []string{"nextcloud", "synapse", "bigbluebutton", "jitsi", "portal", "stalwart"} {
		ext += "        " + c + ": {clientID: corp-" + c + ", clientSecret: {name: corp-oidc, key: " + c + "}}\n"
	}
	p := planOf(t, ext)
	regs := registrations(p)
	if len(regs) < 3 {
		t.Fatalf("registrations %+v", regs)
	}
	var tbl bytes.Buffer
	if err := printRegistrations(&tbl, regs); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"register at https://login.corp.example/realms/staff", "corp-nextcloud", "Secret corp-oidc key nextcloud",
		"https://files.192.168.49.2.sslip.io/apps/user_oidc/code", "BACK-CHANNEL LOGOUT URI"} {
		if !strings.Contains(tbl.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, tbl.String())
		}
	}
	data, err := json.Marshal(planOutput{OIDCClients: regs})
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		OIDCClients []struct {
			Component, ClientID, IssuerURL string
			RedirectURIs                   []string
			BackchannelLogoutURI           string
		}
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	for _, c := range back.OIDCClients {
		if c.ClientID != "corp-"+c.Component || c.IssuerURL != "https://login.corp.example/realms/staff" || len(c.RedirectURIs) == 0 {
			t.Errorf("JSON client %+v", c)
		}
		if c.Component == "nextcloud" && c.BackchannelLogoutURI == "" {
			t.Errorf("nextcloud: no back-channel logout URI in JSON")
		}
	}
	kc := planOf(t, strings.Replace(ext, "identity: external-oidc, ", "", 1))
	if r := registrations(kc); len(r) != 0 {
		t.Errorf("keycloak registers its clients itself, yet plan lists %d", len(r))
	}
}

func planOf(t *testing.T, doc string) *plan.Plan {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "workplace.yaml"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	repo, err := load.Dir(dir, platzwart.Builtin(), "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
