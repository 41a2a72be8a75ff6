package check

import (
	"crypto/rand"
	"crypto/tls"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/contract"
)

// externalIssuer is the organisation's provider: not Keycloak's URL layout, on a host
// no release serves, with a certificate from platzwart's CA (the workplace's
// routing.tls.caSecret).
const externalIssuer = "https://sso." + testDomain + "/application/o/workplace"

// operatorSecret is the Secret the operator creates with the issued client secrets,
// one key per consuming component.
const operatorSecret = "corp-oidc-clients"

// newExternalWorkplace plans a workplace whose identity is external-oidc, with one
// client "corp-<component>" declared for every component of the catalog that signs
// in, and creates the operator's Secret holding each client's secret.
func newExternalWorkplace(t *testing.T) *workplace {
	t.Helper()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	builtin, err := catalog.Load(catalog.Layer{FS: platzwart.Builtin(), Label: "builtin"})
	if err != nil {
		t.Fatal(err)
	}
	var consumers []string
	for name, def := range builtin.Components {
		if def.Spec.OIDCClient != nil {
			consumers = append(consumers, name)
		}
	}
	sort.Strings(consumers)
	var clients strings.Builder
	secretData := map[string][]byte{}
	for _, name := range consumers {
		if builtin.Components[name].Spec.OIDCClient.PublicClient {
			// a public client (OpenCloud's web client) has no secret
			clients.WriteString("        " + name + ": {clientID: corp-" + name + "}\n")
			continue
		}
		clients.WriteString("        " + name + ": {clientID: corp-" + name + ", clientSecret: {name: " + operatorSecret + ", key: " + name + "}}\n")
		secretData[name] = []byte(rand.Text())
	}
	doc := `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: demo, namespace: ` + ns + `}
spec:
  domain: ` + testDomain + `
  profile: minikube
  components: {identity: external-oidc, video: bigbluebutton}
  values:
    bigbluebutton:
      servers: [{url: "https://bbb.example.org/bigbluebutton/", secret: {name: bbb, key: secret}}]
    external-oidc:
      issuerURL: ` + externalIssuer + `
      clients:
` + clients.String()
	p, cat, cs := planWithSecrets(t, c, t.TempDir(), ns, doc)
	if _, err := cs.CoreV1().Secrets(ns).Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: operatorSecret}, Data: secretData}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(c.Config(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := &workplace{plan: p, catalog: cat, reader: cl, secrets: map[string]string{}}
	tlsData, err := KubeSecrets{Reader: cl}.SecretData(t.Context(), ns, contract.TLSSecret("demo"))
	if err != nil {
		t.Fatal(err)
	}
	if w.cert, err = tls.X509KeyPair(tlsData["tls.crt"], tlsData["tls.key"]); err != nil {
		t.Fatal(err)
	}
	if w.exp, err = expect(p, cat); err != nil {
		t.Fatal(err)
	}
	for _, c := range w.exp.clients {
		w.secrets[c.id] = string(secretData[c.component])
	}
	w.elementConfig = renderedElementConfig(t, p)
	return w
}

// TestExternalProvider: a workplace wired to the organisation's provider (the real
// zitadel/oidc OP, registered with the clients the operator declared and the secrets
// of the operator's Secret) passes TLS of the provider's host, discovery, and
// authentication, redirect and logout URIs of every client; none of them is a
// client id or Secret platzwart would have made up.
func TestExternalProvider(t *testing.T) {
	t.Parallel()
	w := newExternalWorkplace(t)
	if len(w.exp.clients) < 3 {
		t.Fatalf("clients %+v: want nextcloud, synapse, bigbluebutton at least", w.exp.clients)
	}
	in := serve(t, w, provider{}, nil)
	// --address is the workplace's ingress: the provider is not behind it, so it is
	// dialled where its name resolves (nowhere here) unless --resolve names it.
	rep := run(t, w, in.options(w), 10*time.Second)
	want(t, rep, CheckTLS, "sso."+testDomain, Fail, ReasonUnresolvable)
	want(t, rep, CheckDiscovery, externalIssuer+"/.well-known/openid-configuration", Skip, ReasonDependencyFailed)

	rep = run(t, w, in.externalOptions(w), 10*time.Second)
	want(t, rep, CheckTLS, "sso."+testDomain, Pass, "")
	want(t, rep, CheckDiscovery, externalIssuer+"/.well-known/openid-configuration", Pass, "")
	for _, c := range w.exp.clients {
		if c.id != "corp-"+c.component || c.secret == nil || c.secret.Name != operatorSecret || c.secret.Key != c.component {
			t.Errorf("client of %s: id %q secret %+v, want the declared ones", c.component, c.id, c.secret)
		}
		r := want(t, rep, CheckClient, c.id, Pass, "")
		if !strings.Contains(r.Message, operatorSecret) {
			t.Errorf("client %s: the message should name the Secret it authenticated with: %s", c.id, r.Message)
		}
		for _, u := range c.redirectURIs {
			want(t, rep, CheckRedirect, u, Pass, "")
		}
		for _, u := range c.postLogoutRedirectURIs {
			want(t, rep, CheckLogout, u, Pass, "")
		}
	}
	for _, r := range rep.Checks {
		if r.Name != CheckApp && r.Status != Pass {
			t.Errorf("%s %s: %s %s: %s", r.Name, r.Target, r.Status, r.Reason, r.Message)
		}
	}
}

// TestExternalProviderClientFailures: a client registered at the provider with
// another secret than the operator's Secret holds, and a client the provider does not
// know, fail client authentication with reasons and fixes that point at the
// registration and the operator's Secret, not at platzwart apply.
func TestExternalProviderClientFailures(t *testing.T) {
	t.Parallel()
	w := newExternalWorkplace(t)
	nc, sy := w.clientOf("nextcloud"), w.clientOf("synapse")

	t.Run("wrong secret", func(t *testing.T) {
		good := w.secrets[nc.id]
		w.secrets[nc.id] = "not-the-secret-in-the-operators-secret"
		in := serve(t, w, provider{}, nil)
		w.secrets[nc.id] = good
		rep := run(t, w, in.externalOptions(w), 10*time.Second)
		r := want(t, rep, CheckClient, nc.id, Fail, ReasonClientUnauthorized)
		for _, s := range []string{`"corp-nextcloud"`, operatorSecret, "spec.values.external-oidc.clients.nextcloud"} {
			if !strings.Contains(r.Message+" "+r.Fix, s) {
				t.Errorf("message and fix lack %q: %s / %s", s, r.Message, r.Fix)
			}
		}
		if strings.Contains(r.Fix, "platzwart apply") {
			t.Errorf("fix points at platzwart apply, which registers nothing at an external provider: %s", r.Fix)
		}
		want(t, rep, CheckClient, sy.id, Pass, "")
		if got := failures(rep); len(got) != 1 {
			t.Errorf("failures %v, want only nextcloud's client authentication", got)
		}
	})
	t.Run("unknown client", func(t *testing.T) {
		in := serve(t, w, provider{skip: map[string]bool{sy.id: true}}, nil)
		rep := run(t, w, in.externalOptions(w), 10*time.Second)
		r := want(t, rep, CheckClient, sy.id, Fail, ReasonClientUnauthorized)
		if !strings.Contains(r.Fix, `register client "corp-synapse" at the provider`) {
			t.Errorf("fix: %s", r.Fix)
		}
		rr := want(t, rep, CheckRedirect, sy.redirectURIs[0], Fail, ReasonRedirectURIRejected)
		if !strings.Contains(rr.Fix, "register "+sy.redirectURIs[0]) {
			t.Errorf("redirect fix: %s", rr.Fix)
		}
		want(t, rep, CheckClient, nc.id, Pass, "")
	})
	t.Run("provider certificate from another CA", func(t *testing.T) {
		other := newWorkplace(t, "other", "jitsi")
		in := serve(t, w, provider{}, &other.cert)
		rep := run(t, w, in.externalOptions(w), 10*time.Second)
		r := want(t, rep, CheckTLS, "sso."+testDomain, Fail, ReasonUntrustedCertificate)
		if !strings.Contains(r.Fix, "spec.routing.tls.caSecret") {
			t.Errorf("fix should say how the apps come to trust the provider: %s", r.Fix)
		}
		want(t, rep, CheckDiscovery, externalIssuer+"/.well-known/openid-configuration", Skip, ReasonDependencyFailed)
	})
	t.Run("Secret missing", func(t *testing.T) {
		cs := kubernetes.NewForConfigOrDie(cluster.FromTest(t).Config())
		if err := cs.CoreV1().Secrets(w.plan.Namespace).Delete(t.Context(), operatorSecret, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		in := serve(t, w, provider{}, nil)
		rep := run(t, w, in.externalOptions(w), 10*time.Second)
		r := want(t, rep, CheckClient, nc.id, Fail, ReasonSecretUnavailable)
		if !strings.Contains(r.Fix, "create Secret "+operatorSecret) {
			t.Errorf("fix: %s", r.Fix)
		}
	})
}

// externalOptions point the checks at the ingress, and the provider's host at the same
// test server by --resolve.
func (in *ingress) externalOptions(w *workplace) Options {
	opts := in.options(w)
	opts.Resolve[hostOf(externalIssuer)] = in.server.Listener.Addr().String()
	return opts
}
