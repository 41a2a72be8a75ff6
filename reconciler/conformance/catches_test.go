package conformance_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// builtinFile reads a built-in catalog file and replaces one text in it, as a
// repository's own copy that no longer conforms.
func builtinFile(t *testing.T, path, from, to string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../..", path))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), from) {
		t.Fatalf("%s has no %q to replace", path, from)
	}
	return strings.Replace(string(data), from, to, 1)
}

// TestChecksCatchNonConformingComponents: a component a repository adds or changes
// that breaks an invariant is reported by the same checks TestConformance runs.
func TestChecksCatchNonConformingComponents(t *testing.T) {
	selfSigned := workplaceDoc("minikube", routingModes[0].yaml, tlsModes[0].yaml, nil)
	cases := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{
			name: "an HTTPS client that declares nothing",
			files: map[string]string{"components/nextcloud/component.yaml": builtinFile(t, "components/nextcloud/component.yaml",
				"    - {container: occ, env: NC_CA_FILE, runtime: php}\n", "")},
			want: `component "nextcloud" calls the identity component's public URL over HTTPS but declares no spec.trust clients`,
		},
		{
			name: "a declared client that does not get the CA",
			files: map[string]string{"components/jitsi/component.yaml": builtinFile(t, "components/jitsi/component.yaml",
				"{container: adapter, env: DENO_CERT, runtime: deno}", "{container: adapter, env: NODE_EXTRA_CA_CERTS, runtime: node}")},
			want: "container adapter (node) does not trust Secret demo-tls key ca.crt: NODE_EXTRA_CA_CERTS is not set",
		},
		{
			name: "a switch that turns verification off",
			files: map[string]string{"workplace.yaml": selfSigned +
				"    jitsi: {adapter: {extraEnv: {ALLOW_UNSECURE_CERT: \"true\"}}}\n"},
			want: `demo-jitsi: the rendered manifests contain "ALLOW_UNSECURE_CERT"`,
		},
		{
			name: "a NetworkPolicy that shuts the routing controller out",
			files: map[string]string{"profiles/minikube.yaml": builtinFile(t, "profiles/minikube.yaml",
				"    collabora:\n", "    collabora:\n      routing: {ingressNamespace: somewhere-else}\n")},
			want: `the routing controller (namespace "ingress-nginx") cannot reach Service demo-collabora`,
		},
		{
			name: "a host served without the TLS the mode asks for",
			files: map[string]string{"profiles/minikube.yaml": builtinFile(t, "profiles/minikube.yaml",
				"    keycloak:\n", "    keycloak:\n      routing: {tls: {secretName: \"\"}}\n")},
			want: "demo-keycloak: Ingress/demo-keycloak: host id.192.168.49.2.sslip.io has no TLS entry (TLS mode SelfSigned)",
		},
		{
			name: "a container outside the restricted Pod Security Standard",
			files: map[string]string{"profiles/minikube.yaml": builtinFile(t, "profiles/minikube.yaml",
				"    valkey:\n", "    valkey:\n      podSecurityContext: {runAsNonRoot: false, runAsUser: 0}\n")},
			want: "breaks the restricted Pod Security Standard: runAsNonRoot is not true",
		},
	}
	cat := builtinCatalog(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"workplace.yaml": selfSigned}
			for p, c := range tc.files {
				files[p] = c
			}
			p, repoCat, err := buildRepo(t, files)
			if err != nil {
				t.Fatal(err)
			}
			var f findings
			checkWorkplace(&f, repoCat, p, renderPlan(t, p), routingModes[0], tlsModes[0], map[string]bool{})
			for _, got := range f {
				if strings.Contains(got, tc.want) {
					return
				}
			}
			t.Errorf("no finding contains %q; findings:\n%s", tc.want, strings.Join(f, "\n"))
		})
	}
	// The unchanged catalog reports nothing in the same cell.
	p, _, err := buildRepo(t, map[string]string{"workplace.yaml": selfSigned})
	if err != nil {
		t.Fatal(err)
	}
	var f findings
	checkWorkplace(&f, cat, p, renderPlan(t, p), routingModes[0], tlsModes[0], map[string]bool{})
	if len(f) > 0 {
		t.Errorf("the built-in catalog has findings:\n%s", strings.Join(f, "\n"))
	}
}
