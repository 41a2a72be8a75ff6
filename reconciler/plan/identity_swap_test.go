package plan_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/platzwart/platzwart/reconciler/plan"
)

// externalOIDC is the example's swap to the organisation's provider: the identity
// choice and the values naming the issuer and one registered client per consumer.
var externalOIDC = map[string]string{
	"  components:\n": "  components:\n    identity: external-oidc\n",
	"  values:\n": `  values:
    external-oidc:
      issuerURL: https://login.corp.example/realms/staff
      clients:
        nextcloud: {clientID: corp-nextcloud, clientSecret: {name: corp-oidc-nextcloud, key: nextcloud-secret}}
        synapse: {clientID: corp-synapse, clientSecret: {name: corp-oidc-synapse, key: synapse-secret}}
        jitsi: {clientID: corp-jitsi, clientSecret: {name: corp-oidc-jitsi, key: jitsi-secret}}
        bigbluebutton: {clientID: corp-bbb, clientSecret: {name: corp-oidc-bbb, key: bbb-secret}}
        portal: {clientID: corp-portal, clientSecret: {name: corp-oidc-portal, key: portal-secret}}
        stalwart: {clientID: corp-stalwart, clientSecret: {name: corp-oidc-stalwart, key: stalwart-secret}}
`,
}

// identityWiring maps what the external provider's wiring renders back to what
// keycloak's does, longest first: issuer, client ids and secret references.
var identityWiring = [][2]string{
	{"https://login.corp.example/realms/staff", "https://id.192.168.49.2.sslip.io/realms/demo"},
	{"login.corp.example", "id.192.168.49.2.sslip.io"},
	{"corp-oidc-nextcloud", "demo-nextcloud-oidc"},
	{"corp-oidc-synapse", "demo-synapse-oidc"},
	{"corp-oidc-jitsi", "demo-jitsi-oidc"},
	{"corp-oidc-portal", "demo-portal-oidc"},
	{"corp-oidc-stalwart", "demo-stalwart-oidc"},
	{"nextcloud-secret", "client-secret"},
	{"synapse-secret", "client-secret"},
	{"jitsi-secret", "client-secret"},
	{"portal-secret", "client-secret"},
	{"stalwart-secret", "client-secret"},
	{"corp-nextcloud", "nextcloud"},
	{"corp-synapse", "synapse"},
	{"corp-jitsi", "jitsi"},
	{"corp-portal", "portal"},
	{"corp-stalwart", "stalwart"},
	// The Jitsi adapter's KEYCLOAK_REALM is the issuer's realm.
	{`value: "staff"`, `value: "demo"`},
}

// TestSwapIdentityExternal: identity keycloak → external-oidc removes the keycloak
// release and its database on the in-cluster PostgreSQL, and changes in every
// consumer exactly its identity wiring: with issuer, client ids and secret references
// mapped back, each consumer's objects are byte-identical to keycloak's render.
// Collabora and Valkey stay byte-identical. Swapping back restores the render.
func TestSwapIdentityExternal(t *testing.T) {
	kc := renderObjects(t, nil)
	ext := renderObjects(t, externalOIDC)
	changed := assertSwap(t, kc, ext, nil, []string{"demo-keycloak"},
		[]string{"demo-jitsi", "demo-nextcloud", "demo-portal", "demo-postgresql", "demo-stalwart", "demo-synapse"})
	for _, rel := range []string{"demo-jitsi", "demo-nextcloud", "demo-portal", "demo-stalwart", "demo-synapse"} {
		for _, obj := range changed[rel] {
			after, ok := ext[rel][obj]
			if !ok {
				t.Errorf("%s: %s removed by the identity swap", rel, obj)
				continue
			}
			for _, m := range identityWiring {
				after = strings.ReplaceAll(after, m[0], m[1])
			}
			before := kc[rel][obj]
			if rel == "demo-portal" {
				// The start page loses keycloak's own tile (its account console) with
				// keycloak, and nothing else.
				before = withoutLines(before, keycloakTile)
			}
			// Checksums of configuration follow the configuration.
			if before := withoutChecksums(before); withoutChecksums(after) != before {
				t.Errorf("%s: %s differs in more than the identity wiring:\n%s", rel, obj, lineDiff(before, withoutChecksums(after)))
			}
		}
	}
	// In PostgreSQL only the keycloak database, its access and the count go.
	t.Logf("demo-postgresql objects changed: %v", changed["demo-postgresql"])
	for _, obj := range changed["demo-postgresql"] {
		before, after := kc["demo-postgresql"][obj], ext["demo-postgresql"][obj]
		if !strings.Contains(before, "keycloak") && !strings.Contains(before, "provisioned 5 database(s)") {
			t.Errorf("demo-postgresql: %s changed but had nothing of keycloak:\n%s", obj, lineDiff(before, after))
		}
		if strings.Contains(after, "keycloak") {
			t.Errorf("demo-postgresql: %s still mentions keycloak after the swap", obj)
		}
	}
	back := renderObjects(t, nil)
	if a, r, c := changes(kc, back); len(a)+len(r)+len(c) != 0 {
		t.Errorf("swapping back does not restore the render: added %v removed %v changed %v", a, r, c)
	}
}

// TestExternalIdentityPlan: the plan of an external provider generates no client
// secret, references the operator's Secrets and lists what the operator registers.
func TestExternalIdentityPlan(t *testing.T) {
	s := readExample(t)
	for from, to := range externalOIDC {
		s = strings.Replace(s, from, to, 1)
	}
	plans, _, err := buildAll(t, repoFS(map[string]string{"workplace.yaml": s}))
	if err != nil {
		t.Fatal(err)
	}
	p := plans[0]
	for _, sec := range p.Secrets {
		if strings.HasSuffix(sec.Name, "-oidc") {
			t.Errorf("the plan generates the client secret %s for an external provider", sec.Name)
		}
	}
	id := p.Identity
	if id == nil || !id.External || id.Component != "external-oidc" || id.IssuerURL != "https://login.corp.example/realms/staff" {
		t.Fatalf("identity: %+v", id)
	}
	var got []string
	for _, c := range id.Clients {
		got = append(got, c.Component+"="+c.ClientID+"/"+c.Secret.Name+"/"+c.Secret.Key)
	}
	want := []string{"jitsi=corp-jitsi/corp-oidc-jitsi/jitsi-secret", "nextcloud=corp-nextcloud/corp-oidc-nextcloud/nextcloud-secret",
		"portal=corp-portal/corp-oidc-portal/portal-secret", "stalwart=corp-stalwart/corp-oidc-stalwart/stalwart-secret",
		"synapse=corp-synapse/corp-oidc-synapse/synapse-secret"}
	if !slices.Equal(got, want) {
		t.Errorf("clients %v, want %v", got, want)
	}
	nc := client(t, p, "nextcloud")
	if !slices.Contains(nc.RedirectURIs, "https://files.192.168.49.2.sslip.io/apps/user_oidc/code") {
		t.Errorf("nextcloud redirect URIs %v", nc.RedirectURIs)
	}
	if nc.BackchannelLogoutURI == "" {
		t.Errorf("nextcloud: no back-channel logout URI to register")
	}
	// Keycloak's plan lists the same URIs, with its generated Secrets.
	kc, _, err := buildAll(t, repoFS(map[string]string{"workplace.yaml": readExample(t)}))
	if err != nil {
		t.Fatal(err)
	}
	k := client(t, kc[0], "nextcloud")
	if kc[0].Identity.External || k.ClientID != "nextcloud" || k.Secret.Name != "demo-nextcloud-oidc" ||
		!slices.Equal(k.RedirectURIs, nc.RedirectURIs) || k.BackchannelLogoutURI != nc.BackchannelLogoutURI {
		t.Errorf("keycloak's nextcloud client %+v; external %+v", k, nc)
	}
}

func client(t *testing.T, p *plan.Plan, component string) plan.OIDCClient {
	t.Helper()
	for _, c := range p.Identity.Clients {
		if c.Component == component {
			return c
		}
	}
	t.Fatalf("no client of %s in %+v", component, p.Identity)
	return plan.OIDCClient{}
}

// keycloakTile is in the start page's link to keycloak's account console.
const keycloakTile = `href="https://id.192.168.49.2.sslip.io/realms/demo/account/"`

func withoutLines(doc, containing string) string {
	var keep []string
	for _, l := range strings.Split(doc, "\n") {
		if !strings.Contains(l, containing) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func withoutChecksums(doc string) string { return withoutLines(doc, "checksum/") }

// lineDiff lists the lines of b that are not in a and the reverse, for messages.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for _, l := range bl {
		if !slices.Contains(al, l) {
			out = append(out, "+ "+l)
		}
	}
	for _, l := range al {
		if !slices.Contains(bl, l) {
			out = append(out, "- "+l)
		}
	}
	return strings.Join(out, "\n")
}

// withComponentFiles adds the built-in component's other files (its tile icon) to a
// repository that overrides its component.yaml.
func withComponentFiles(t *testing.T, name string, files map[string]string) map[string]string {
	t.Helper()
	dir := filepath.Join("../../components", name)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := "components/" + name + "/" + e.Name()
		if _, set := files[p]; set || e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[p] = string(data)
	}
	return files
}

// externalExample is the example workplace swapped to external-oidc, with further
// text replacements.
func externalExample(t *testing.T, replace ...string) string {
	t.Helper()
	s := readExample(t)
	for from, to := range externalOIDC {
		s = strings.Replace(s, from, to, 1)
	}
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("workplace has no %q", replace[i])
		}
		s = strings.Replace(s, replace[i], replace[i+1], 1)
	}
	return s
}

// TestExternalIdentityBadInput: the plan refuses an external provider's values that
// cannot work, naming file, document and field.
func TestExternalIdentityBadInput(t *testing.T) {
	const field = "spec.values.external-oidc"
	cases := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{
			name:  "issuer over plain http",
			files: map[string]string{"workplace.yaml": externalExample(t, "https://login.corp.example", "http://login.corp.example")},
			want:  []string{"repo/workplace.yaml", `Workplace "demo"`, field + ".issuerURL", "not an https URL"},
		},
		{
			name:  "no issuer",
			files: map[string]string{"workplace.yaml": externalExample(t, "      issuerURL: https://login.corp.example/realms/staff\n", "")},
			want:  []string{"repo/workplace.yaml", field + ".issuerURL", "required"},
		},
		{
			name:  "consumer without a declared client",
			files: map[string]string{"workplace.yaml": externalExample(t, "        nextcloud: {clientID: corp-nextcloud, clientSecret: {name: corp-oidc-nextcloud, key: nextcloud-secret}}\n", "")},
			want:  []string{"repo/workplace.yaml", `Workplace "demo"`, field + ".clients.nextcloud", "required", `component "nextcloud" signs in over OIDC`},
		},
		{
			name:  "confidential client without a secret",
			files: map[string]string{"workplace.yaml": externalExample(t, "{clientID: corp-synapse, clientSecret: {name: corp-oidc-synapse, key: synapse-secret}}", "{clientID: corp-synapse}")},
			want:  []string{field + ".clients.synapse.clientSecret", "required", "confidential client"},
		},
		{
			name: "public client given a secret",
			files: withComponentFiles(t, "nextcloud", map[string]string{
				"workplace.yaml":                      externalExample(t),
				"components/nextcloud/component.yaml": componentOverride(t, "nextcloud", "publicClient: false", "publicClient: true"),
			}),
			want: []string{"repo/workplace.yaml", field + ".clients.nextcloud.clientSecret", "public client", "components/nextcloud/component.yaml"},
		},
		{
			name:  "secret reference without a key",
			files: map[string]string{"workplace.yaml": externalExample(t, "{name: corp-oidc-jitsi, key: jitsi-secret}", "{name: corp-oidc-jitsi}")},
			want:  []string{field + ".clients.jitsi.clientSecret", "name and key are both required"},
		},
		{
			name:  "client without an id",
			files: map[string]string{"workplace.yaml": externalExample(t, "{clientID: corp-jitsi, ", "{")},
			want:  []string{field + ".clients.jitsi.clientID", "required"},
		},
		{
			name:  "misspelt field of a client",
			files: map[string]string{"workplace.yaml": externalExample(t, "{clientID: corp-jitsi, clientSecret:", "{clientID: corp-jitsi, clientSecrets:")},
			want:  []string{field + ".clients.jitsi", `unknown field "clientSecrets"`},
		},
		{
			name:  "client for a component that does not sign in",
			files: map[string]string{"workplace.yaml": externalExample(t, "      clients:\n", "      clients:\n        collabora: {clientID: x}\n")},
			want:  []string{field + ".clients.collabora", `component "collabora" does not sign in over OIDC`},
		},
		{
			name:  "client for an unknown component",
			files: map[string]string{"workplace.yaml": externalExample(t, "      clients:\n", "      clients:\n        nextclod: {clientID: x}\n")},
			want:  []string{field + ".clients.nextclod", `unknown component "nextclod"`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plans, _, err := buildAll(t, repoFS(tc.files))
			if err == nil {
				t.Fatalf("no error; plans: %d", len(plans))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
