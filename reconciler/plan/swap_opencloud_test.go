package plan_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// openCloudGolden is the OpenCloud release of the example workplace with files:
// opencloud (office: collabora), object by object. Regenerate only on purpose:
// PLATZWART_UPDATE_GOLDEN=1.
const openCloudGolden = "testdata/opencloud/opencloud-collabora.golden"

// withOpenCloud selects OpenCloud as the example's files component.
var withOpenCloud = map[string]string{"office: collabora ": "office: collabora\n    files: opencloud "}

// realmClient returns the client clientID of the keycloak release's realm
// ConfigMap, nil when the realm has none.
func realmClient(t *testing.T, objs map[string]string, clientID string) map[string]any {
	t.Helper()
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal([]byte(objs["ConfigMap/demo-keycloak-realm"]), &cm); err != nil {
		t.Fatal(err)
	}
	var realm struct {
		Clients []map[string]any `json:"clients"`
	}
	if err := json.Unmarshal([]byte(cm.Data["realm.json"]), &realm); err != nil {
		t.Fatal(err)
	}
	for _, c := range realm.Clients {
		if c["clientId"] == clientID {
			return c
		}
	}
	return nil
}

// TestSwapFilesToOpenCloud: files nextcloud ⇄ opencloud replaces the files release;
// the identity provider swaps the confidential nextcloud client for OpenCloud's
// public one (PKCE, the web client's callbacks); Collabora admits the new WOPI
// caller (its allowed WOPI host, the files URL, stays); the portal's Files tile
// names OpenCloud; PostgreSQL and Valkey lose Nextcloud's database and access
// (OpenCloud uses neither). Chat, video and mail stay byte-identical, and
// swapping back restores the Nextcloud render byte for byte.
func TestSwapFilesToOpenCloud(t *testing.T) {
	nextcloud := renderObjects(t, nil)
	opencloud := renderObjects(t, withOpenCloud)
	changed := assertSwap(t, nextcloud, opencloud,
		[]string{"demo-opencloud"}, []string{"demo-nextcloud"},
		[]string{"demo-collabora", "demo-keycloak", "demo-portal", "demo-postgresql", "demo-stalwart", "demo-valkey"})

	// The OpenCloud release as reviewed (golden).
	got := joinObjects(opencloud["demo-opencloud"])
	if os.Getenv("PLATZWART_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(filepath.FromSlash(openCloudGolden), []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(filepath.FromSlash(openCloudGolden))
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the OpenCloud release differs from %s:\n%s", openCloudGolden, strings.Join(lineDiffOf(string(want), got), "\n"))
	}

	// Office: only the NetworkPolicy, now admitting OpenCloud instead of Nextcloud.
	if got := strings.Join(changed["demo-collabora"], ","); got != "NetworkPolicy/demo-collabora" {
		t.Errorf("office objects changed by the files swap: %s, want only its NetworkPolicy", got)
	}
	if d := lineDiffOf(nextcloud["demo-collabora"]["NetworkPolicy/demo-collabora"], opencloud["demo-collabora"]["NetworkPolicy/demo-collabora"]); len(d) != 2 ||
		!strings.Contains(d[0], `"demo-nextcloud"`) || !strings.Contains(d[1], `"demo-opencloud"`) {
		t.Errorf("office NetworkPolicy diff %v, want demo-nextcloud → demo-opencloud", d)
	}

	// Identity: OpenCloud's web client is public, with PKCE and its callbacks.
	kc := opencloud["demo-keycloak"]
	if realmClient(t, kc, "nextcloud") != nil {
		t.Error("the realm still has the nextcloud client after the swap")
	}
	c := realmClient(t, kc, "opencloud")
	if c == nil {
		t.Fatal("the realm has no opencloud client")
	}
	attrs, _ := c["attributes"].(map[string]any)
	redirects, _ := json.Marshal(c["redirectUris"])
	origins, _ := json.Marshal(c["webOrigins"])
	files := "https://files.192.168.49.2.sslip.io"
	if c["publicClient"] != true || attrs["pkce.code.challenge.method"] != "S256" || c["secret"] != nil {
		t.Errorf("opencloud client: public %v, pkce %v, secret %v; want a public client with PKCE S256 and no secret", c["publicClient"], attrs["pkce.code.challenge.method"], c["secret"])
	}
	if string(redirects) != `["`+files+`/oidc-callback.html","`+files+`/oidc-silent-redirect.html"]` {
		t.Errorf("opencloud redirect URIs %s", redirects)
	}
	if string(origins) != `["`+files+`"]` || attrs["post.logout.redirect.uris"] != files+"/" {
		t.Errorf("opencloud web origins %s, post-logout %v: the browser client needs its origin for CORS", origins, attrs["post.logout.redirect.uris"])
	}
	if job := kc["Job/demo-keycloak-config"]; strings.Contains(job, "demo-opencloud-oidc") {
		t.Error("the keycloak config Job references a client secret for the public opencloud client")
	}

	// Portal: the Files tile names OpenCloud, at the same URL.
	page := opencloud["demo-portal"]["ConfigMap/demo-portal"]
	if !strings.Contains(page, "Files and spaces (OpenCloud)") || strings.Contains(page, "(Nextcloud)") || !strings.Contains(page, files+"/") {
		t.Error("the portal page should have the OpenCloud Files tile at the files host, and no Nextcloud tile")
	}
	// PostgreSQL and Valkey: Nextcloud's database and access go, nothing of
	// OpenCloud comes (it uses neither).
	for _, rel := range []string{"demo-postgresql", "demo-valkey"} {
		before, after := joinObjects(nextcloud[rel]), joinObjects(opencloud[rel])
		if !strings.Contains(before, "nextcloud") || strings.Contains(after, "nextcloud") || strings.Contains(after, "opencloud") {
			t.Errorf("%s: want Nextcloud named before the swap, and neither Nextcloud nor OpenCloud after", rel)
		}
	}

	back := renderObjects(t, nil)
	if a, r, c := changes(nextcloud, back); len(a)+len(r)+len(c) != 0 {
		t.Errorf("swapping back does not restore the render: added %v removed %v changed %v", a, r, c)
	}
}

// TestOpenCloudFollowsTheOfficeSwap: under OpenCloud, office collabora → eurooffice
// changes in the files release only the collaboration container's connector and
// the NetworkPolicy admitting the office release; office → none removes the
// collaboration container, its port, its /wopi route and the office origin from
// the Content-Security-Policy.
func TestOpenCloudFollowsTheOfficeSwap(t *testing.T) {
	collabora := renderObjects(t, withOpenCloud)
	euro := renderObjects(t, map[string]string{"office: collabora ": "office: eurooffice\n    files: opencloud "})
	changed := assertSwap(t, collabora, euro, []string{"demo-eurooffice"}, []string{"demo-collabora"},
		[]string{"demo-opencloud", "demo-postgresql"})
	if got := strings.Join(changed["demo-opencloud"], ","); got != "Deployment/demo-opencloud,NetworkPolicy/demo-opencloud" {
		t.Errorf("files objects changed by the office swap: %s", got)
	}
	d := lineDiffOf(collabora["demo-opencloud"]["Deployment/demo-opencloud"], euro["demo-opencloud"]["Deployment/demo-opencloud"])
	if strings.Join(d, "\n") != strings.Join([]string{
		`-              value: "Collabora"`, `+              value: "EuroOffice"`,
		`-              value: "Collabora"`, `+              value: "OnlyOffice"`,
	}, "\n") {
		t.Errorf("the Deployment changed in more than the connector (COLLABORATION_APP_NAME, COLLABORATION_APP_PRODUCT):\n%s", strings.Join(d, "\n"))
	}

	none := renderObjects(t, map[string]string{"office: collabora ": "office: none\n    files: opencloud "})
	changed = assertSwap(t, collabora, none, nil, []string{"demo-collabora"}, []string{"demo-opencloud"})
	if got := strings.Join(changed["demo-opencloud"], ","); got != "ConfigMap/demo-opencloud-csp,Deployment/demo-opencloud,Ingress/demo-opencloud,NetworkPolicy/demo-opencloud,Service/demo-opencloud" {
		t.Errorf("files objects changed by office none: %s", got)
	}
	dep := none["demo-opencloud"]["Deployment/demo-opencloud"]
	for _, gone := range []string{"name: collaboration", "COLLABORATION_", "containerPort: 9300"} {
		if strings.Contains(dep, gone) {
			t.Errorf("without office the Deployment still has %q", gone)
		}
	}
	if strings.Contains(none["demo-opencloud"]["Ingress/demo-opencloud"], "/wopi") || strings.Contains(none["demo-opencloud"]["ConfigMap/demo-opencloud-csp"], "office.") {
		t.Error("without office the /wopi route or the office origin in the CSP remain")
	}
}
