package plan_test

import (
	"strings"
	"testing"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
)

// TestTLSBadInput: routing whose certificates cannot work with the selected
// components is refused with file, document and field, before anything renders.
func TestTLSBadInput(t *testing.T) {
	cases := []struct {
		name string
		spec string
		want []string
	}{
		{
			name: "no TLS through Ingress while apps sign in over OIDC",
			spec: "  routing:\n    tls: {mode: None}\n",
			want: []string{"repo/workplace.yaml", `Workplace "demo"`, "spec.routing.tls.mode", "plain HTTP through Ingress", "signs in over OIDC", `"keycloak"`},
		},
		{
			name: "no TLS through Gateway while apps sign in over OIDC",
			spec: "  routing:\n    mode: Gateway\n    gateway: {name: workplace, namespace: gateway-system}\n    tls: {mode: None}\n",
			want: []string{"repo/workplace.yaml", `Workplace "demo"`, "spec.routing.tls.mode", "plain HTTP through Gateway"},
		},
		{
			name: "a CA Secret with the self-signed CA",
			spec: "  routing:\n    tls: {mode: SelfSigned, caSecret: {name: my-ca}}\n",
			want: []string{"repo/workplace.yaml", `Workplace "demo"`, "spec.routing.tls.caSecret", "only for modes Issuer and Secret", `"demo-tls"`},
		},
		{
			name: "a CA Secret without a name",
			spec: "  routing:\n    tls: {mode: Secret, secretName: wildcard, caSecret: {key: ca.pem}}\n",
			want: []string{"repo/workplace.yaml", `Workplace "demo"`, "spec.routing.tls.caSecret.name", "required"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plans, _, err := buildAll(t, repoFS(map[string]string{"workplace.yaml": workplace(tc.spec)}))
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

// TestTrustClientBadInput: a component's trust clients name a container, the
// variable and a known runtime, or the catalog is refused naming file and field.
func TestTrustClientBadInput(t *testing.T) {
	files := map[string]string{
		"workplace.yaml":                      workplace(""),
		"components/nextcloud/component.yaml": componentOverride(t, "nextcloud", "{container: occ, env: NC_CA_FILE, runtime: php}", "{container: \"\", env: NC_CA_FILE, runtime: cobol}"),
	}
	_, _, err := buildAll(t, repoFS(files))
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"repo/components/nextcloud/component.yaml", `Component "nextcloud"`, "spec.trust[0].container", "required", "spec.trust[0].runtime", `unknown runtime "cobol"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

// TestCASecretByMode: the routing value tls.caSecret every chart receives names the
// generated CA in mode SelfSigned, the operator's CA Secret in modes Issuer and Secret
// (key ca.crt by default), and an empty name for a public CA or without TLS. Without TLS
// the workplace is accepted where no OIDC login crosses plain-HTTP routing: routing mode
// None (TLS terminated in front), or no component signing in.
func TestCASecretByMode(t *testing.T) {
	cases := []struct {
		name, spec, wantName, wantKey string
	}{
		{"SelfSigned", "", "demo-tls", "ca.crt"},
		{"ClusterIssuer with private CA", "  routing:\n    tls: {mode: Issuer, issuer: {name: corp-ca}, caSecret: {name: corp-ca-cert, key: ca.pem}}\n", "corp-ca-cert", "ca.pem"},
		{"Issuer with private CA, default key", "  routing:\n    tls: {mode: Issuer, issuer: {kind: Issuer, name: corp-ca}, caSecret: {name: corp-ca-cert}}\n", "corp-ca-cert", "ca.crt"},
		{"Issuer with public CA", "  routing:\n    tls: {mode: Issuer, issuer: {name: letsencrypt}}\n", "", "ca.crt"},
		{"Secret with private CA", "  routing:\n    tls: {mode: Secret, secretName: wildcard, caSecret: {name: wildcard, key: ca.crt}}\n", "wildcard", "ca.crt"},
		{"Secret with public CA", "  routing:\n    tls: {mode: Secret, secretName: wildcard}\n", "", "ca.crt"},
		{"None with routing None", "  routing:\n    mode: None\n    tls: {mode: None}\n", "", "ca.crt"},
		{"None without OIDC logins", "  routing:\n    tls: {mode: None}\n  components: {chat: none, video: none, files: none, office: none, portal: none, mail: none}\n", "", "ca.crt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo, err := load.FS(repoFS(map[string]string{"workplace.yaml": workplace(tc.spec)}), "repo", platzwart.Builtin(), "")
			if err != nil {
				t.Fatal(err)
			}
			p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.wantName == "" && p.CASecret != nil:
				t.Errorf("plan CASecret = %+v, want none", *p.CASecret)
			case tc.wantName != "" && (p.CASecret == nil || p.CASecret.Name != tc.wantName || p.CASecret.Key != tc.wantKey):
				t.Errorf("plan CASecret = %+v, want {%s %s}", p.CASecret, tc.wantName, tc.wantKey)
			}
			for _, r := range p.Releases {
				routing, ok := r.Values["routing"].(map[string]any)
				if !ok {
					continue // no public hosts (postgresql, valkey)
				}
				tls, _ := routing["tls"].(map[string]any)
				ca, ok := tls["caSecret"].(map[string]any)
				if !ok {
					t.Fatalf("%s: routing.tls.caSecret missing: %v", r.Name, routing["tls"])
				}
				if ca["name"] != tc.wantName || ca["key"] != tc.wantKey {
					t.Errorf("%s: routing.tls.caSecret = %v, want {name: %q, key: %q}", r.Name, ca, tc.wantName, tc.wantKey)
				}
			}
		})
	}
}
