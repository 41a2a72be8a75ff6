package conformance_test

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/contract"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
)

const (
	workplaceName = "demo"
	namespace     = "demo"
	domain        = "192.168.49.2.sslip.io"
	ingressNS     = "ingress-nginx"
	gatewayNS     = "gateway-system"
)

// routingMode is one routing mode of the matrix.
type routingMode struct {
	name string
	yaml string // spec.routing lines without tls
	// controllerNamespace is where the routing controller's pods run.
	controllerNamespace string
	// className is the IngressClass every Ingress names ("" = the cluster's default).
	className string
}

var routingModes = []routingMode{
	{"Ingress", "    mode: Ingress\n    ingressClassName: nginx\n    controllerNamespace: " + ingressNS + "\n", ingressNS, "nginx"},
	{"Gateway", "    mode: Gateway\n    gateway: {name: workplace, namespace: " + gatewayNS + ", sectionName: https}\n    controllerNamespace: " + gatewayNS + "\n", gatewayNS, ""},
}

// tlsMode is one TLS mode of the matrix and what every public host must get.
type tlsMode struct {
	name string
	yaml string // spec.routing.tls
	// secretName: the Ingress TLS Secret (modes SelfSigned, Secret).
	secretName string
	// annotation and issuer: the cert-manager annotation on the Ingress (mode Issuer).
	annotation, issuer string
	// ca is the Secret key every HTTPS client must trust; empty name = public CA.
	caName, caKey string
	// none: no TLS at all; a workplace with OIDC logins is refused.
	none bool
}

var tlsModes = []tlsMode{
	{name: "SelfSigned", yaml: "{mode: SelfSigned}", secretName: contract.TLSSecret(workplaceName), caName: contract.TLSSecret(workplaceName), caKey: "ca.crt"},
	{name: "ClusterIssuer", yaml: "{mode: Issuer, issuer: {kind: ClusterIssuer, name: corp-ca}, caSecret: {name: corp-ca-root, key: ca.pem}}", annotation: "cert-manager.io/cluster-issuer", issuer: "corp-ca", caName: "corp-ca-root", caKey: "ca.pem"},
	{name: "ClusterIssuerPublicCA", yaml: "{mode: Issuer, issuer: {name: letsencrypt}}", annotation: "cert-manager.io/cluster-issuer", issuer: "letsencrypt"},
	{name: "Issuer", yaml: "{mode: Issuer, issuer: {kind: Issuer, name: workplace-ca}, caSecret: {name: workplace-ca-root}}", annotation: "cert-manager.io/issuer", issuer: "workplace-ca", caName: "workplace-ca-root", caKey: "ca.crt"},
	{name: "Secret", yaml: "{mode: Secret, secretName: wildcard-tls, caSecret: {name: wildcard-tls, key: ca.crt}}", secretName: "wildcard-tls", caName: "wildcard-tls", caKey: "ca.crt"},
	{name: "None", yaml: "{mode: None}", none: true},
}

// requiredValues are the workplace values a component cannot be selected without
// (wiring to something outside the cluster). A new component that needs values
// fails the test with the plan's error until it is listed here.
var requiredValues = map[string]string{
	"external-postgres": "{host: db.example.org, credentialsSecret: pg-credentials}",
	"external-oidc": "{issuerURL: https://login.example.org/realms/staff, clients: {" +
		"nextcloud: {clientID: corp-nextcloud, clientSecret: {name: sso, key: nextcloud}}, " +
		"synapse: {clientID: corp-synapse, clientSecret: {name: sso, key: synapse}}, " +
		"jitsi: {clientID: corp-jitsi, clientSecret: {name: sso, key: jitsi}}, " +
		"bigbluebutton: {clientID: corp-bbb, clientSecret: {name: sso, key: bbb}}, " +
		"stalwart: {clientID: corp-stalwart, clientSecret: {name: sso, key: stalwart}}, " +
		"portal: {clientID: corp-portal, clientSecret: {name: sso, key: portal}}}}",
}

// serverSideHTTPS are the capabilities a consumer's own code calls over the
// provider's public https URL (not only a browser): OIDC discovery, token and
// JWKS (identity), WOPI (files) and discovery (office). A consumer of one of them
// must declare its HTTPS clients in component.yaml `trust`.
var serverSideHTTPS = []string{contract.Identity, "files", "office"}

// verificationOff are rendered forms of settings that switch certificate
// verification off; no built-in profile may need them, so no rendered manifest
// may contain them (checkValues catches the chart values that would produce them).
var verificationOff = []string{
	"ALLOW_UNSECURE_CERT",                          // jitsi-keycloak-adapter (Deno)
	"ssl.ssl_verification=false",                   // coolwsd
	"allowselfsigned --type=boolean --value=true",  // user_oidc httpclient.allowselfsigned
	"disable_certificate_verification --value=yes", // richdocuments
	"NODE_TLS_REJECT_UNAUTHORIZED",                 // Node.js
	"--unsafely-ignore-certificate-errors",         // Deno
	"skip_verification: true",                      // Synapse oidc_providers
}

// insecureValue matches chart value keys that switch verification off.
var insecureValue = regexp.MustCompile(`(?i)(skipverify|allowselfsigned|disablecertificateverification|insecure|allowunsecure)`)

// reporter is what the checks report to: *testing.T, or findings in the test that
// shows the checks catch a component that does not conform.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// findings collects what the checks report.
type findings []string

func (f *findings) Helper() {}

func (f *findings) Errorf(format string, args ...any) {
	*f = append(*f, fmt.Sprintf(format, args...))
}

func builtinCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	doc := workplaceDoc("minikube", "", "", nil)
	repo, err := load.FS(fstest.MapFS{"workplace.yaml": &fstest.MapFile{Data: []byte(doc), Mode: 0o644}}, "repo", platzwart.Builtin(), "")
	if err != nil {
		t.Fatal(err)
	}
	return repo.Catalog
}

// selections are the component choices that together render every component of
// the catalog: the base profile's choice for each capability, plus one workplace
// per other component selecting it.
func selections(t *testing.T, cat *catalog.Catalog) []map[string]string {
	t.Helper()
	base, ok := cat.Profiles["base"]
	if !ok {
		t.Fatal("no built-in profile base")
	}
	out := []map[string]string{{}}
	for _, capName := range cat.CapabilityNames() {
		for _, name := range cat.ByCapability(capName) {
			if base.Spec.Components[capName] != name {
				out = append(out, map[string]string{capName: name})
			}
		}
	}
	return out
}

func workplaceDoc(profile, routing, tls string, components map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: platzwart.io/v1alpha1\nkind: Workplace\nmetadata: {name: %s, namespace: %s}\nspec:\n  domain: %s\n  profile: %s\n", workplaceName, namespace, domain, profile)
	if routing != "" || tls != "" {
		b.WriteString("  routing:\n" + routing)
		if tls != "" {
			b.WriteString("    tls: " + tls + "\n")
		}
	}
	if len(components) > 0 {
		b.WriteString("  components:\n")
		for _, k := range sortedKeys(components) {
			fmt.Fprintf(&b, "    %s: %s\n", k, components[k])
		}
	}
	var vals []string
	for _, k := range sortedKeys(requiredValues) {
		vals = append(vals, fmt.Sprintf("    %s: %s\n", k, requiredValues[k]))
	}
	if len(vals) > 0 {
		b.WriteString("  values:\n" + strings.Join(vals, ""))
	}
	return b.String()
}

func build(t *testing.T, doc string) (*plan.Plan, *catalog.Catalog, error) {
	t.Helper()
	return buildRepo(t, map[string]string{"workplace.yaml": doc})
}

// buildRepo plans the one workplace of a repository given as path → content, with
// the repository's own catalog files over the built-in ones.
func buildRepo(t *testing.T, files map[string]string) (*plan.Plan, *catalog.Catalog, error) {
	t.Helper()
	fsys := fstest.MapFS{}
	for p, content := range files {
		fsys[p] = &fstest.MapFile{Data: []byte(content), Mode: 0o644}
	}
	repo, err := load.FS(fsys, "repo", platzwart.Builtin(), "")
	if err != nil {
		return nil, nil, err
	}
	p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
	return p, repo.Catalog, err
}

// usesOIDC says whether a workplace with these choices has an OIDC login.
func usesOIDC(cat *catalog.Catalog, p *plan.Plan) bool {
	hasIdentity := false
	for _, s := range p.Components {
		if s.Capability == contract.Identity {
			hasIdentity = true
		}
	}
	for _, s := range p.Components {
		if c := cat.Components[s.Component]; hasIdentity && c.Spec.OIDCClient != nil {
			return true
		}
	}
	return false
}

// TestConformance renders every built-in component in every routing and TLS mode
// and checks the invariants each chart must keep.
func TestConformance(t *testing.T) {
	cat := builtinCatalog(t)
	rendered := map[string]bool{}
	usedExceptions := map[string]bool{}
	for _, rm := range routingModes {
		for _, tm := range tlsModes {
			t.Run(rm.name+"/"+tm.name, func(t *testing.T) {
				for _, sel := range selections(t, cat) {
					doc := workplaceDoc("minikube", rm.yaml, tm.yaml, sel)
					p, _, err := build(t, doc)
					if tm.none {
						if err != nil {
							for _, want := range []string{"repo/workplace.yaml", `Workplace "demo"`, "spec.routing.tls.mode", "signs in over OIDC"} {
								if !strings.Contains(err.Error(), want) {
									t.Errorf("selection %v: TLS None refused, but the error lacks %q: %v", sel, want, err)
								}
							}
							// Render what can run without TLS: the components without OIDC.
							sel = withoutOIDC(cat, sel)
							doc = workplaceDoc("minikube", rm.yaml, tm.yaml, sel)
							p, _, err = build(t, doc)
							if err != nil {
								t.Fatalf("selection %v without OIDC logins: %v", sel, err)
							}
						} else if usesOIDC(cat, p) {
							t.Fatalf("selection %v: TLS None with OIDC logins through %s was accepted", sel, rm.name)
						}
					}
					if err != nil {
						t.Fatalf("selection %v: %v", sel, err)
					}
					w := renderPlan(t, p)
					checkWorkplace(t, cat, p, w, rm, tm, usedExceptions)
					for _, r := range p.Releases {
						rendered[r.Component] = true
					}
				}
			})
		}
	}
	// An exception no container needs any more is removed, not kept.
	for _, key := range sortedKeys(restrictedExceptions) {
		if !usedExceptions[key] {
			t.Errorf("restricted Pod Security Standard exception %q is not needed by any rendered container: remove it", key)
		}
	}
	// Every component with a chart was rendered in some cell.
	for _, name := range sortedKeys(cat.Components) {
		if cat.Components[name].Spec.Chart != "" && !rendered[name] {
			t.Errorf("component %q was never rendered by the conformance matrix", name)
		}
	}
}

// TestBuiltinProfiles checks the same invariants for each built-in profile with its
// own routing and TLS, and that no profile switches certificate verification off.
func TestBuiltinProfiles(t *testing.T) {
	cat := builtinCatalog(t)
	for _, name := range sortedKeys(cat.Profiles) {
		if name == "base" {
			continue // not meant to be used directly; its routing has no TLS
		}
		t.Run(name, func(t *testing.T) {
			p, _, err := build(t, workplaceDoc(name, "", "", nil))
			if err != nil {
				t.Fatal(err)
			}
			w := renderPlan(t, p)
			rm, tm := modesOf(t, p)
			checkWorkplace(t, cat, p, w, rm, tm, map[string]bool{})
		})
	}
}

// modesOf reads back the routing and TLS expectations of a plan built from a profile.
func modesOf(t *testing.T, p *plan.Plan) (routingMode, tlsMode) {
	t.Helper()
	for _, r := range p.Releases {
		routing, ok := r.Values["routing"].(map[string]any)
		if !ok {
			continue
		}
		ns, _ := routing["ingressNamespace"].(string)
		class, _ := routing["ingress"].(map[string]any)["className"].(string)
		rm := routingMode{name: strings.ToUpper(routing["mode"].(string)[:1]) + routing["mode"].(string)[1:], controllerNamespace: ns, className: class}
		tls := routing["tls"].(map[string]any)
		ca := tls["caSecret"].(map[string]any)
		tm := tlsMode{name: "profile", secretName: tls["secretName"].(string), caName: ca["name"].(string), caKey: ca["key"].(string)}
		switch {
		case tls["clusterIssuer"] != "":
			tm.annotation, tm.issuer = "cert-manager.io/cluster-issuer", tls["clusterIssuer"].(string)
		case tls["issuer"] != "":
			tm.annotation, tm.issuer = "cert-manager.io/issuer", tls["issuer"].(string)
		case tm.secretName == "":
			tm.none = true
		}
		return rm, tm
	}
	t.Fatal("no release has routing values")
	return routingMode{}, tlsMode{}
}

// withoutOIDC switches off every capability whose selected component signs in over OIDC.
func withoutOIDC(cat *catalog.Catalog, sel map[string]string) map[string]string {
	base := cat.Profiles["base"].Spec.Components
	out := map[string]string{}
	for capName, comp := range base {
		if c, ok := sel[capName]; ok {
			comp = c
		}
		if cat.Components[comp] != nil && cat.Components[comp].Spec.OIDCClient != nil {
			out[capName] = "none"
		} else if _, ok := sel[capName]; ok {
			out[capName] = comp
		}
	}
	return out
}

// checkWorkplace checks every invariant on one rendered workplace.
func checkWorkplace(t reporter, cat *catalog.Catalog, p *plan.Plan, w workplace, rm routingMode, tm tlsMode, exceptions map[string]bool) {
	t.Helper()
	checkHosts(t, p, w, rm, tm)
	checkUniqueHosts(t, w)
	checkTrust(t, cat, p, w, tm)
	checkNetworkPolicies(t, cat, p, w, rm)
	checkRestricted(t, p, w, exceptions)
	for _, r := range p.Releases {
		checkValues(t, r.Name, "", r.Values)
		for _, off := range verificationOff {
			if strings.Contains(strings.ToLower(w[r.Name].text), strings.ToLower(off)) {
				t.Errorf("%s: the rendered manifests contain %q, which switches certificate verification off", r.Name, off)
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkValues fails on a chart value that switches certificate verification off
// (set true), wherever it is in the release's values.
func checkValues(t reporter, release, prefix string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(v) {
			if b, ok := v[k].(bool); ok && b && insecureValue.MatchString(k) {
				t.Errorf("%s: value %s%s=true switches certificate verification off", release, prefix, k)
			}
			if b, ok := v[k].(bool); ok && !b && strings.EqualFold(k, "storageTLSVerify") {
				t.Errorf("%s: value %s%s=false switches certificate verification off", release, prefix, k)
			}
			checkValues(t, release, prefix+k+".", v[k])
		}
	case []any:
		for i, e := range v {
			checkValues(t, release, fmt.Sprintf("%s%d.", prefix, i), e)
		}
	}
}
