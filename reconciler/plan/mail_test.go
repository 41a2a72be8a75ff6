package plan_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
)

const mailDomain = "192.168.49.2.sslip.io"

// planOnly loads a repository and plans its first workplace without rendering
// charts (the probe component below adds a value no chart knows).
func mailPlan(t *testing.T, files map[string]string) (*plan.Plan, *catalog.Catalog) {
	t.Helper()
	repo, err := load.FS(repoFS(files), "repo", platzwart.Builtin(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(repo.Workplaces) == 0 {
		t.Fatal("no workplace")
	}
	p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	return p, repo.Catalog
}

func mailRelease(t *testing.T, p *plan.Plan, component string) *plan.Release {
	t.Helper()
	for _, r := range p.Releases {
		if r.Component == component {
			return r
		}
	}
	t.Fatalf("plan has no release of %s", component)
	return nil
}

// valueAt walks a release's values along dotted keys.
func mailValue(t *testing.T, r *plan.Release, path string) any {
	t.Helper()
	var v any = r.Values
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: %s: %v is not a map", r.Name, path, v)
		}
		v = m[k]
	}
	return v
}

// TestMailIsWiredFromTheProfile: the example gets mail through the minikube
// profile (base picks stalwart), with the web client's tile, an OIDC client whose
// redirect URIs are Bulwark's callback pages on the webmail host, a database, the
// mail Service as NodePort, and the DNS records a mail domain needs.
func TestMailIsWiredFromTheProfile(t *testing.T) {
	p, cat := mailPlan(t, map[string]string{"workplace.yaml": readExample(t)})
	r := mailRelease(t, p, "stalwart")
	if r.Capability != "mail" || r.Name != "demo-stalwart" {
		t.Fatalf("mail release %s capability %s", r.Name, r.Capability)
	}
	if got := r.Hosts; got["mail"] != "mail."+mailDomain || got["webmail"] != "webmail."+mailDomain {
		t.Errorf("hosts %v", got)
	}
	if got := mailValue(t, r, "mailService.type"); got != "NodePort" {
		t.Errorf("minikube: mailService.type %v, want NodePort", got)
	}
	if got := mailValue(t, r, "domain"); got != mailDomain {
		t.Errorf("domain %v", got)
	}
	if got := mailValue(t, r, "database.passwordSecret.name"); got != "demo-stalwart-db-stalwart" {
		t.Errorf("database password Secret %v", got)
	}
	if got := mailValue(t, r, "dkim.secret.name"); got != "demo-stalwart-dkim" {
		t.Errorf("DKIM Secret %v", got)
	}

	// The tile: Mail on the webmail host.
	var tile *plan.App
	for i := range p.Apps {
		if p.Apps[i].Component == "stalwart" {
			tile = &p.Apps[i]
		}
	}
	if tile == nil || tile.Name != "Mail" || tile.URL != "https://webmail."+mailDomain+"/" || !strings.HasPrefix(tile.Icon, "data:image/svg+xml;base64,") {
		t.Errorf("tile %+v", tile)
	}

	// The OIDC client at Keycloak: confidential, rooted at the web client, with
	// Bulwark's /<locale>/auth/callback pages.
	if p.Identity == nil {
		t.Fatal("no identity")
	}
	var oc *plan.OIDCClient
	for i := range p.Identity.Clients {
		if p.Identity.Clients[i].Component == "stalwart" {
			oc = &p.Identity.Clients[i]
		}
	}
	if oc == nil {
		t.Fatal("no OIDC client for stalwart")
	}
	if oc.Public || oc.Secret == nil || oc.Secret.Name != "demo-stalwart-oidc" {
		t.Errorf("client %+v: want confidential with Secret demo-stalwart-oidc", oc)
	}
	if oc.RootURL != "https://webmail."+mailDomain {
		t.Errorf("client root %s", oc.RootURL)
	}
	if !slices.Contains(oc.RedirectURIs, "https://webmail."+mailDomain+"/en/auth/callback") ||
		!slices.Contains(oc.RedirectURIs, "https://webmail."+mailDomain+"/de/auth/callback") {
		t.Errorf("redirect URIs %v", oc.RedirectURIs)
	}
	if got := mailValue(t, r, "oidc.clientSecret.name"); got != "demo-stalwart-oidc" {
		t.Errorf("chart's client secret %v", got)
	}

	// The generated secrets: the DKIM key is RSA.
	var dkim bool
	for _, s := range p.Secrets {
		if s.Name == "demo-stalwart-dkim" {
			dkim = true
			b, _ := json.Marshal(s)
			if !strings.Contains(string(b), `"rsa"`) {
				t.Errorf("DKIM Secret %s: want format rsa", b)
			}
		}
	}
	if !dkim {
		t.Error("no generated Secret demo-stalwart-dkim")
	}

	// DNS: MX at the apex to the mail host, SPF, DMARC, DKIM on the generated key,
	// SRV for submission/IMAP/CalDAV/CardDAV.
	comp, ok := cat.Components["stalwart"]
	if !ok {
		t.Fatal("catalog has no stalwart")
	}
	var got []string
	for _, d := range comp.Spec.DNS {
		switch d.Type {
		case catalog.DNSDKIM:
			got = append(got, d.Type+" "+d.Selector+" "+d.Secret+"/"+d.Key)
		case catalog.DNSTXT:
			got = append(got, d.Type+" "+d.Name+" "+strings.Fields(d.Text)[0])
		default:
			got = append(got, d.Type+" "+d.Name+" "+d.Host)
		}
	}
	for _, want := range []string{
		"MX @ mail", "TXT @ v=spf1", "TXT _dmarc v=DMARC1;", "DKIM platzwart dkim/private-key",
		"SRV _submissions._tcp mail", "SRV _imaps._tcp mail", "SRV _caldavs._tcp mail", "SRV _carddavs._tcp mail",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("spec.dns lacks %q; has %v", want, got)
		}
	}
	for _, h := range comp.Spec.Hosts {
		if h.Name == "mail" && h.Service != "mail" {
			t.Errorf("host mail: service %q, want mail (Service demo-stalwart-mail)", h.Service)
		}
	}
}

// TestMailServiceTypeFollowsTheProfile: profile standard sets LoadBalancer.
func TestMailServiceTypeFollowsTheProfile(t *testing.T) {
	s := strings.Replace(readExample(t), "profile: minikube", "profile: standard", 1)
	p, _ := mailPlan(t, map[string]string{"workplace.yaml": s})
	if got := mailValue(t, mailRelease(t, p, "stalwart"), "mailService.type"); got != "LoadBalancer" {
		t.Errorf("standard: mailService.type %v, want LoadBalancer", got)
	}
}

// TestMailExportsReachConsumers: a component consuming mail receives the contract
// (url, host, domain, smtpHost, smtpPort) and its release is the one the relay
// admits; switched off, mail leaves the consumer nothing and the provider is gone.
func TestMailExportsReachConsumers(t *testing.T) {
	// The portal, overridden in the repository to consume mail and show what it got.
	portal := componentOverride(t, "portal", "consumes: [identity]", "consumes: [identity]\n  optional: [mail]")
	portal = strings.Replace(portal, "  values: |\n", "  values: |\n    mailProbe: {{ toJson .Uses.mail }}\n", 1)
	files := map[string]string{"workplace.yaml": readExample(t), "components/portal/component.yaml": portal}
	p, _ := mailPlan(t, files)

	raw, ok := mailRelease(t, p, "portal").Values["mailProbe"].(map[string]any)
	if !ok {
		t.Fatalf("portal's mailProbe: %v", mailRelease(t, p, "portal").Values["mailProbe"])
	}
	want := map[string]any{
		"url":       "https://webmail." + mailDomain + "/",
		"host":      "mail." + mailDomain,
		"domain":    mailDomain,
		"smtpHost":  "demo-stalwart-relay.demo.svc",
		"smtpPort":  float64(25),
		"component": "stalwart",
		"release":   "demo-stalwart",
	}
	for k, w := range want {
		g := raw[k]
		if n, ok := g.(int64); ok {
			g = float64(n)
		}
		if n, ok := g.(int); ok {
			g = float64(n)
		}
		if g != w {
			t.Errorf(".Uses.mail.%s = %v (%T), want %v", k, raw[k], raw[k], w)
		}
	}
	relay, _ := mailValue(t, mailRelease(t, p, "stalwart"), "relay.allowedReleases").([]any)
	if !slices.Contains(relay, any("demo-portal")) {
		t.Errorf("relay admits %v, want demo-portal among them", relay)
	}

	// Mail switched off: no release, no tile, nothing in the consumer.
	off := strings.Replace(readExample(t), "portal: portal ", "mail: none\n    portal: portal ", 1)
	files["workplace.yaml"] = off
	p, _ = mailPlan(t, files)
	for _, r := range p.Releases {
		if r.Capability == "mail" {
			t.Errorf("mail off: release %s remains", r.Name)
		}
	}
	for _, a := range p.Apps {
		if a.Component == "stalwart" {
			t.Errorf("mail off: tile %s remains", a.Name)
		}
	}
	if v := mailRelease(t, p, "portal").Values["mailProbe"]; v != nil {
		t.Errorf("mail off: the consumer still gets %v", v)
	}
}
