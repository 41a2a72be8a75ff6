package check

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/contract"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/render"
	"github.com/platzwart/platzwart/reconciler/secrets"
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	// zitadel/oidc's provider logs every refused request through the default logger.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(cluster.RunTests(m))
}

const testDomain = "wp.example.org"

// workplace is a planned workplace whose Secrets (CA, certificate, client secrets)
// were generated in a namespace of the test cluster by secrets.Manager, as apply does.
type workplace struct {
	plan    *plan.Plan
	catalog *catalog.Catalog
	reader  client.Reader
	cert    tls.Certificate
	exp     *expectations
	// secrets are the client secrets by client id.
	secrets map[string]string
	// elementConfig is the config.json charts/synapse renders for the plan.
	elementConfig []byte
}

// newWorkplace plans a workplace named name (video: jitsi or bigbluebutton) in a new
// namespace and generates its Secrets there.
func newWorkplace(t *testing.T, name, video string) *workplace {
	t.Helper()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	dir := t.TempDir()
	doc := `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: ` + name + `, namespace: ` + ns + `}
spec:
  domain: ` + testDomain + `
  profile: minikube
  components: {video: ` + video + `}
  values:
    jitsi: {jvb: {advertiseAddress: 192.0.2.10}}
    bigbluebutton:
      servers: [{url: "https://bbb.example.org/bigbluebutton/", secret: {name: bbb, key: secret}}]
`
	w, _ := workplaceFrom(t, c, dir, ns, name, doc)
	return w
}

// workplaceFrom plans the Workplace document doc, named name, in namespace ns of c,
// creates there the Secrets the checks read, and reads them back: the certificate
// and each confidential client's secret. It returns the workplace and a clientset.
func workplaceFrom(t *testing.T, c *cluster.Cluster, dir, ns, name, doc string) (*workplace, kubernetes.Interface) {
	t.Helper()
	p, cat, cs := planWithSecrets(t, c, dir, ns, doc)
	cl, err := client.New(c.Config(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := &workplace{plan: p, catalog: cat, reader: cl, secrets: map[string]string{}}
	reader := KubeSecrets{Reader: cl}
	tlsData, err := reader.SecretData(t.Context(), ns, contract.TLSSecret(name))
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
		if c.secret == nil {
			continue // a public client has none
		}
		data, err := reader.SecretData(t.Context(), ns, c.secret.Name)
		if err != nil {
			t.Fatal(err)
		}
		w.secrets[c.id] = string(data[c.secret.Key])
	}
	w.elementConfig = renderedElementConfig(t, p)
	return w, cs
}

// checkedSecrets is p with only the Secrets the checks read: the certificate and CA,
// and the OIDC client secrets (the others are no concern of these tests).
func checkedSecrets(p *plan.Plan) *plan.Plan {
	cp := *p
	cp.Secrets = nil
	for _, s := range p.Secrets {
		if s.Type == "kubernetes.io/tls" || strings.HasSuffix(s.Name, "-oidc") {
			cp.Secrets = append(cp.Secrets, s)
		}
	}
	return &cp
}

// renderedElementConfig renders the plan's synapse release and returns the config.json
// its Element ConfigMap carries.
func renderedElementConfig(t *testing.T, p *plan.Plan) []byte {
	t.Helper()
	ms, err := render.Plan(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Component != "synapse" {
			continue
		}
		for _, doc := range strings.Split(m.Manifest, "\n---") {
			var cm struct {
				Kind     string                `json:"kind"`
				Metadata struct{ Name string } `json:"metadata"`
				Data     map[string]string     `json:"data"`
			}
			if err := yaml.Unmarshal([]byte(doc), &cm); err != nil {
				continue
			}
			if cm.Kind == "ConfigMap" && strings.HasSuffix(cm.Metadata.Name, "-element-config") {
				return []byte(cm.Data["config.json"])
			}
		}
	}
	t.Fatal("no Element config in the rendered synapse release")
	return nil
}

// provider configures the test's OpenID provider.
type provider struct {
	// issuer it names in discovery ("" = the plan's).
	issuer string
	// skip leaves these clients unregistered.
	skip map[string]bool
	// redirects replaces a client's redirect URIs.
	redirects map[string][]string
}

// fixture is what the test ingress serves for one host and path.
type fixture struct {
	status int
	file   string
	body   []byte
	// handOff redirects to the provider's authorization endpoint for the client of
	// this component, returning to redirectURI ("" = the client's first one).
	handOff, redirectURI string
}

// ingress is the workplace as the operator's machine sees it: one TLS listener on
// loopback serving every host (as an ingress controller does), the identity host by a
// real zitadel/oidc provider, the app hosts by fixtures.
type ingress struct {
	server *httptest.Server
	mu     sync.Mutex
	apps   map[string]fixture // by host + path
	issuer string
	// mail are the Resolve entries of the mail host's IMAPS and submissions
	// listeners (mail_test.go).
	mail map[string]string
}

func (in *ingress) set(hostPath string, f fixture) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.apps[hostPath] = f
}

// serve starts the ingress for w, with the certificate cert (nil: the workplace's).
func serve(t *testing.T, w *workplace, pv provider, cert *tls.Certificate) *ingress {
	t.Helper()
	issuer := w.exp.identity.issuerURL
	in := &ingress{apps: defaultApps(t, w), issuer: issuer}
	named := pv.issuer
	if named == "" {
		named = issuer
	}
	clients := map[string]*storage.Client{}
	logout := map[string][]string{}
	for _, c := range w.exp.clients {
		if pv.skip[c.id] {
			continue
		}
		uris := c.redirectURIs
		if r, ok := pv.redirects[c.id]; ok {
			uris = r
		}
		clients[c.id] = storage.WebClient(c.id, w.secrets[c.id], uris...)
		logout[c.id] = c.postLogoutRedirectURIs
	}
	st := &opStorage{Storage: storage.NewStorageWithClients(storage.NewUserStore(named), clients), logout: logout}
	prov, err := op.NewProvider(&op.Config{CryptoKey: sha256.Sum256([]byte("platzwart check test")), CodeMethodS256: true,
		AuthMethodPost: true, GrantTypeRefreshToken: true}, st, op.StaticIssuer(named))
	if err != nil {
		t.Fatal(err)
	}
	issuerURL, _ := url.Parse(issuer)
	idHandler := http.StripPrefix(issuerURL.Path, prov)
	in.server = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == issuerURL.Hostname() {
			idHandler.ServeHTTP(rw, r)
			return
		}
		in.mu.Lock()
		f, ok := in.apps[host+r.URL.Path]
		in.mu.Unlock()
		switch {
		case !ok:
			http.NotFound(rw, r)
		case f.handOff != "":
			c := w.clientOf(f.handOff)
			back := c.redirectURIs[0]
			if f.redirectURI != "" {
				back = f.redirectURI
			}
			q := url.Values{"client_id": {c.id}, "response_type": {"code"}, "scope": {"openid"},
				"redirect_uri": {back}, "state": {"x"}}
			http.Redirect(rw, r, issuer+"/authorize?"+q.Encode(), http.StatusFound)
		default:
			rw.WriteHeader(f.status)
			_, _ = rw.Write(f.body)
		}
	}))
	c := w.cert
	if cert != nil {
		c = *cert
	}
	in.server.TLS = &tls.Config{Certificates: []tls.Certificate{c}}
	in.server.StartTLS()
	t.Cleanup(in.server.Close)
	in.mail = mailListeners(t, w, c, nil)
	return in
}

// clientOf returns the OIDC client of a component.
func (w *workplace) clientOf(component string) oidcClient {
	for _, c := range w.exp.clients {
		if c.component == component {
			return c
		}
	}
	return oidcClient{redirectURIs: []string{""}}
}

// defaultApps are the answers of a working installation.
func defaultApps(t *testing.T, w *workplace) map[string]fixture {
	t.Helper()
	h := func(sub string) string { return sub + "." + testDomain }
	apps := map[string]fixture{
		h("matrix") + "/_matrix/client/versions":              file(t, "synapse-versions.json"),
		h("matrix") + "/_matrix/client/v3/login":              file(t, "synapse-login-oidc.json"),
		h("matrix") + "/_matrix/client/v3/login/sso/redirect": {handOff: "synapse"},
		h("matrix") + "/_matrix/client/v1/auth_metadata":      file(t, "synapse-auth-metadata-mas.json"),
		h("chat") + "/config.json":                            {status: http.StatusOK, body: w.elementConfig},
		testDomain + "/.well-known/matrix/client":             file(t, "matrix-client-wellknown.json"),
		h("files") + "/status.php":                            file(t, "nextcloud-status.json"),
		h("files") + "/login":                                 file(t, "nextcloud-login-oidc.html"),
		h("files") + "/apps/user_oidc/login/1":                {handOff: "nextcloud"},
		h("office") + "/hosting/discovery":                    file(t, "collabora-discovery-public.xml"),
		h("meet") + "/config.js":                              file(t, "jitsi-config-auth.js"),
		h("meet") + "/oidc/auth":                              {handOff: "jitsi"},
		h("meet") + "/health_check":                           file(t, "greenlight-health-check.txt"),
		h("meet") + "/api/v1/env.json":                        file(t, "greenlight-env.json"),
		h("portal") + "/":                                     {handOff: "portal"},
		h("webmail") + "/api/auth/sso/start":                  webmailStart(w, ""),
	}
	// With Matrix Authentication Service, MAS serves the login and hands it over.
	if mas := w.hostOf("synapse", "auth"); mas != "" {
		apps[h("matrix")+"/_matrix/client/v3/login"] = file(t, "mas-compat-login.json")
		for _, c := range w.exp.clients {
			if c.component == "synapse" {
				u, _ := url.Parse(c.redirectURIs[0])
				apps[mas+strings.Replace(u.Path, "/callback/", "/authorize/", 1)] = fixture{handOff: "synapse"}
			}
		}
	}
	return apps
}

// hostOf returns a component's host by key ("" when it has none).
func (w *workplace) hostOf(component, key string) string {
	for _, rel := range w.plan.Releases {
		if rel.Component == component {
			return rel.Hosts[key]
		}
	}
	return ""
}

func file(t *testing.T, name string) fixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return fixture{status: http.StatusOK, file: name, body: b}
}

// opStorage is the example storage of zitadel/oidc with post-logout redirect URIs
// (the example's clients register none).
type opStorage struct {
	*storage.Storage
	logout map[string][]string
}

func (s *opStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return logoutClient{Client: c, uris: s.logout[id]}, nil
}

type logoutClient struct {
	op.Client
	uris []string
}

func (c logoutClient) PostLogoutRedirectURIs() []string { return c.uris }

// options point the checks at the ingress.
func (in *ingress) options(w *workplace) Options {
	return Options{Timeout: 2 * time.Second, Secrets: KubeSecrets{Reader: w.reader}, Address: in.server.Listener.Addr().String(), Resolve: maps.Clone(in.mail)}
}

// run runs the checks and fails the test when they take longer than limit.
func run(t *testing.T, w *workplace, opts Options, limit time.Duration) *Report {
	t.Helper()
	start := time.Now()
	rep, err := Run(t.Context(), w.plan, w.catalog, opts)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > limit {
		t.Errorf("the checks took %s, more than %s", took, limit)
	}
	return rep
}

func find(rep *Report, name, target string) (Result, bool) {
	for _, r := range rep.Checks {
		if r.Name == name && r.Target == target {
			return r, true
		}
	}
	return Result{}, false
}

// want asserts the status and reason of one check.
func want(t *testing.T, rep *Report, name, target string, status Status, reason Reason) Result {
	t.Helper()
	r, ok := find(rep, name, target)
	if !ok {
		t.Errorf("no %s check of %s; checks:\n%s", name, target, dump(rep))
		return r
	}
	if r.Status != status || r.Reason != reason {
		t.Errorf("%s %s: got %s %s (%s), want %s %s", name, target, r.Status, r.Reason, r.Message, status, reason)
	}
	if r.Status == Fail && (r.Message == "" || r.Fix == "") {
		t.Errorf("%s %s: a failure needs a message and a fix: %+v", name, target, r)
	}
	return r
}

func dump(rep *Report) string {
	var b strings.Builder
	for _, r := range rep.Checks {
		b.WriteString(string(r.Status) + " " + r.Name + " " + r.Target + " " + string(r.Reason) + ": " + r.Message + "\n")
	}
	return b.String()
}

// failures returns the failed checks as "name target reason".
func failures(rep *Report) []string {
	var out []string
	for _, r := range rep.Failed() {
		out = append(out, r.Name+" "+r.Target+" "+string(r.Reason))
	}
	return out
}

func TestWorkingWorkplacePasses(t *testing.T) {
	t.Parallel()
	w := newWorkplace(t, "demo", "jitsi")
	in := serve(t, w, provider{}, nil)
	rep := run(t, w, in.options(w), 10*time.Second)
	if !rep.OK() {
		t.Fatalf("checks failed:\n%s", dump(rep))
	}
	for _, r := range rep.Checks {
		if r.Status == Skip {
			t.Errorf("skipped %s %s: %s", r.Name, r.Target, r.Message)
		}
	}
	// Every kind of check ran, for every client and host.
	counts := map[string]int{}
	for _, r := range rep.Checks {
		counts[r.Name]++
	}
	// Hosts: id, matrix, chat, the bare domain, files, office, meet, portal, webmail,
	// mail, autoconfig, autodiscover (and auth with Matrix Authentication Service,
	// which adds the auth metadata probe). Mail adds three app probes (web login,
	// IMAPS, submissions) and a client with 16 redirect URIs (Bulwark's callback per
	// locale).
	hosts, apps := 12, 15
	if w.hostOf("synapse", "auth") != "" {
		hosts, apps = 13, 16
	}
	wantCounts := map[string]int{CheckCA: 1, CheckTLS: hosts, CheckDiscovery: 1, CheckClient: 5,
		CheckRedirect: 25, CheckLogout: 4, CheckApp: apps}
	for name, n := range wantCounts {
		if counts[name] != n {
			t.Errorf("%d %s checks, want %d:\n%s", counts[name], name, n, dump(rep))
		}
	}
	r := want(t, rep, CheckTLS, "id."+testDomain, Pass, "")
	if r.NotAfter == nil || time.Until(*r.NotAfter) < 800*24*time.Hour {
		t.Errorf("TLS of id: expiry %v, want about 825 days from now", r.NotAfter)
	}
	want(t, rep, CheckClient, "synapse", Pass, "")
	want(t, rep, CheckRedirect, "https://files."+testDomain+"/apps/user_oidc/code", Pass, "")
	want(t, rep, CheckRedirect, "https://meet."+testDomain+"/platzwart-check/unregistered-redirect (unregistered)", Pass, "")
	want(t, rep, CheckLogout, "https://files."+testDomain+"/", Pass, "")
	want(t, rep, CheckApp, "https://portal."+testDomain+"/", Pass, "")
}

// TestPortal: the start page must send a browser without a session to the identity
// provider as the portal's client, returning to its registered callback.
func TestPortal(t *testing.T) {
	t.Parallel()
	w := newWorkplace(t, "demo", "jitsi")
	portal := "https://portal." + testDomain + "/"
	cases := []struct {
		name   string
		answer fixture
		status Status
		reason Reason
	}{
		{"hand-off", fixture{handOff: "portal"}, Pass, ""},
		// oauth2-proxy without skip_provider_button: its sign-in page, HTTP 403.
		{"sign-in page", fixture{status: http.StatusForbidden, body: []byte("<title>Sign In</title>")}, Fail, ReasonUnexpectedStatus},
		// The upstream page served without a login (the proxy bypassed).
		{"page without login", fixture{status: http.StatusOK, body: []byte("<h1>demo</h1>")}, Fail, ReasonUnexpectedStatus},
		{"another client", fixture{handOff: "nextcloud"}, Fail, ReasonUnexpectedBody},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := serve(t, w, provider{}, nil)
			in.set("portal."+testDomain+"/", tc.answer)
			rep := run(t, w, in.options(w), 10*time.Second)
			want(t, rep, CheckApp, portal, tc.status, tc.reason)
			if got := failures(rep); (tc.status == Pass) != (len(got) == 0) || len(got) > 1 {
				t.Errorf("failures %v, want only the portal's when it fails", got)
			}
		})
	}
	t.Run("wrong callback", func(t *testing.T) {
		in := serve(t, w, provider{}, nil)
		in.set("portal."+testDomain+"/", fixture{handOff: "portal", redirectURI: portal + "callback"})
		rep := run(t, w, in.options(w), 10*time.Second)
		want(t, rep, CheckApp, portal, Fail, ReasonUnexpectedBody)
	})
}

func TestIdentityFailures(t *testing.T) {
	t.Parallel()
	w := newWorkplace(t, "demo", "jitsi")
	files := "https://files." + testDomain
	cases := []struct {
		name   string
		pv     provider
		checks func(t *testing.T, rep *Report)
	}{
		{"missing client", provider{skip: map[string]bool{"nextcloud": true}}, func(t *testing.T, rep *Report) {
			want(t, rep, CheckClient, "nextcloud", Fail, ReasonClientUnauthorized)
			want(t, rep, CheckRedirect, files+"/apps/user_oidc/code", Fail, ReasonRedirectURIRejected)
			want(t, rep, CheckClient, "synapse", Pass, "")
		}},
		{"wrong redirect URI", provider{redirects: map[string][]string{"nextcloud": {files + "/index.php/apps/user_oidc/code"}}}, func(t *testing.T, rep *Report) {
			want(t, rep, CheckClient, "nextcloud", Pass, "")
			want(t, rep, CheckRedirect, files+"/apps/user_oidc/code", Fail, ReasonRedirectURIRejected)
			if got := failures(rep); len(got) != 1 {
				t.Errorf("failures %v, want only the redirect URI", got)
			}
		}},
		{"wrong issuer", provider{issuer: "https://id." + testDomain + "/realms/master"}, func(t *testing.T, rep *Report) {
			want(t, rep, CheckDiscovery, w.exp.identity.issuerURL+"/.well-known/openid-configuration", Fail, ReasonIssuerMismatch)
			// Everything that needs the provider is skipped, nothing else fails.
			want(t, rep, CheckClient, "synapse", Skip, ReasonDependencyFailed)
			want(t, rep, CheckApp, files+"/apps/user_oidc/login/1", Skip, ReasonDependencyFailed)
			if got := failures(rep); len(got) != 1 {
				t.Errorf("failures %v, want only the discovery", got)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := serve(t, w, tc.pv, nil)
			tc.checks(t, run(t, w, in.options(w), 10*time.Second))
		})
	}
}

func TestCertificateFailures(t *testing.T) {
	t.Parallel()
	w := newWorkplace(t, "demo", "jitsi")
	other := newWorkplace(t, "other", "jitsi")
	id := "id." + testDomain

	t.Run("certificate from another CA", func(t *testing.T) {
		in := serve(t, w, provider{}, &other.cert)
		rep := run(t, w, in.options(w), 10*time.Second)
		r := want(t, rep, CheckTLS, id, Fail, ReasonUntrustedCertificate)
		if !strings.Contains(r.Message, "platzwart CA other") {
			t.Errorf("the message should name the certificate's issuer: %s", r.Message)
		}
		// Nothing is checked over an untrusted connection.
		want(t, rep, CheckDiscovery, w.exp.identity.issuerURL+"/.well-known/openid-configuration", Skip, ReasonDependencyFailed)
		for _, r := range rep.Checks {
			if r.Status == Pass && r.Name != CheckCA {
				t.Errorf("passed over an untrusted certificate: %s %s", r.Name, r.Target)
			}
		}
	})
	t.Run("expired certificate", func(t *testing.T) {
		in := serve(t, w, provider{}, nil)
		opts := in.options(w)
		opts.Now = func() time.Time { return time.Now().Add(secrets.CertValidity + 24*time.Hour) }
		rep := run(t, w, opts, 10*time.Second)
		r := want(t, rep, CheckTLS, id, Fail, ReasonCertificateExpired)
		if r.NotAfter == nil {
			t.Error("an expired certificate's expiry is shown")
		}
	})
	t.Run("CA from a file", func(t *testing.T) {
		in := serve(t, w, provider{}, &other.cert)
		opts := in.options(w)
		data, err := KubeSecrets{Reader: other.reader}.SecretData(t.Context(), other.plan.Namespace, contract.TLSSecret("other"))
		if err != nil {
			t.Fatal(err)
		}
		opts.CA = data["ca.crt"]
		rep := run(t, w, opts, 10*time.Second)
		// other's certificate verifies under other's CA given by hand; the client
		// secrets are w's, so only the provider's clients are what they are.
		want(t, rep, CheckTLS, id, Pass, "")
		if _, ok := find(rep, CheckCA, "secret "+w.plan.Namespace+"/demo-tls key ca.crt"); ok {
			t.Error("with a CA file the CA Secret is not read")
		}
	})
}

func TestUnreachableWorkplaceFailsInBoundedTime(t *testing.T) {
	t.Parallel()
	w := newWorkplace(t, "demo", "jitsi")
	in := serve(t, w, provider{}, nil)

	// A port nobody listens on: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close()
	// A listener that accepts and never answers: the TLS handshake times out.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()

	opts := in.options(w)
	opts.Timeout = time.Second
	opts.Resolve["files."+testDomain] = refused
	opts.Resolve["office."+testDomain] = silent.Addr().String()
	rep := run(t, w, opts, 5*time.Second)
	want(t, rep, CheckTLS, "files."+testDomain, Fail, ReasonUnreachable)
	want(t, rep, CheckTLS, "office."+testDomain, Fail, ReasonTimeout)
	want(t, rep, CheckApp, "https://files."+testDomain+"/status.php", Skip, ReasonDependencyFailed)
	want(t, rep, CheckTLS, "matrix."+testDomain, Pass, "")
	if got := failures(rep); len(got) != 2 {
		t.Errorf("failures %v, want one per unreachable host", got)
	}

	t.Run("unresolvable", func(t *testing.T) {
		opts := Options{Timeout: time.Second, Secrets: KubeSecrets{Reader: w.reader}}
		rep := run(t, w, opts, 5*time.Second)
		r := want(t, rep, CheckTLS, "id."+testDomain, Fail, ReasonUnresolvable)
		if !strings.Contains(r.Fix, "--address") {
			t.Errorf("the fix should mention --address: %s", r.Fix)
		}
	})
}

func TestAppFailures(t *testing.T) {
	t.Parallel()
	w := newWorkplace(t, "demo", "jitsi")
	in := serve(t, w, provider{}, nil)
	h := func(sub string) string { return "https://" + sub + "." + testDomain }
	broken := []struct {
		url    string
		answer fixture
		reason Reason
	}{
		{h("matrix") + "/_matrix/client/versions", fixture{status: http.StatusBadGateway, body: []byte("<html>502 Bad Gateway</html>")}, ReasonUnexpectedStatus},
		{h("matrix") + "/_matrix/client/v3/login", file(t, "synapse-login-password.json"), ReasonUnexpectedBody},
		{h("chat") + "/config.json", file(t, "element-config-upstream-jitsi.json"), ReasonUnexpectedBody},
		{"https://" + testDomain + "/.well-known/matrix/client", fixture{status: http.StatusNotFound, body: []byte("404 page not found")}, ReasonUnexpectedStatus},
		{h("files") + "/status.php", file(t, "nextcloud-status-not-installed.json"), ReasonUnexpectedBody},
		// user_oidc's LoginController answers an error page when the discovery fails.
		{h("files") + "/apps/user_oidc/login/1", fixture{status: http.StatusNotFound, body: []byte("Could not reach the OpenID Connect provider.")}, ReasonUnexpectedStatus},
		{h("office") + "/hosting/discovery", file(t, "collabora-discovery-localhost.xml"), ReasonUnexpectedBody},
		{h("meet") + "/config.js", file(t, "jitsi-config-open.js"), ReasonUnexpectedBody},
		{h("meet") + "/oidc/auth?path=%2Fplatzwart-check&search=&hash=", fixture{handOff: "nextcloud"}, ReasonUnexpectedBody},
	}
	for _, b := range broken {
		u, err := url.Parse(b.url)
		if err != nil {
			t.Fatal(err)
		}
		in.set(u.Host+u.Path, b.answer)
	}
	rep := run(t, w, in.options(w), 10*time.Second)
	for _, b := range broken {
		want(t, rep, CheckApp, b.url, Fail, b.reason)
	}
	if got := failures(rep); len(got) != len(broken) {
		t.Errorf("%d failures, want %d (one per broken answer):\n%s", len(got), len(broken), strings.Join(got, "\n"))
	}

	// A login page without the provider: the hand-off it would link to is skipped.
	in = serve(t, w, provider{}, nil)
	in.set("files."+testDomain+"/login", file(t, "nextcloud-login-none.html"))
	rep = run(t, w, in.options(w), 10*time.Second)
	want(t, rep, CheckApp, h("files")+"/login", Fail, ReasonUnexpectedBody)
	want(t, rep, CheckApp, h("files")+"/", Skip, ReasonDependencyFailed)
	if got := failures(rep); len(got) != 1 {
		t.Errorf("failures %v, want only the login page", got)
	}
}

func TestGreenlight(t *testing.T) {
	t.Parallel()
	w := newWorkplace(t, "demo", "bigbluebutton")
	meet := "https://meet." + testDomain
	t.Run("working", func(t *testing.T) {
		in := serve(t, w, provider{}, nil)
		rep := run(t, w, in.options(w), 10*time.Second)
		if !rep.OK() {
			t.Fatalf("checks failed:\n%s", dump(rep))
		}
		want(t, rep, CheckApp, meet+"/health_check", Pass, "")
		want(t, rep, CheckApp, meet+"/api/v1/env.json", Pass, "")
		want(t, rep, CheckClient, "bigbluebutton", Pass, "")
		if r := want(t, rep, CheckApp, "https://chat."+testDomain+"/config.json", Pass, ""); !strings.Contains(r.Message, "no Jitsi") {
			t.Errorf("Element without Jitsi: %s", r.Message)
		}
	})
	t.Run("broken", func(t *testing.T) {
		in := serve(t, w, provider{}, nil)
		db := file(t, "greenlight-health-check-db.txt")
		db.status = http.StatusInternalServerError
		in.set("meet."+testDomain+"/health_check", db)
		in.set("meet."+testDomain+"/api/v1/env.json", fixture{status: http.StatusOK, body: []byte(`{"data":{"EXTERNAL_AUTH":false,"HCAPTCHA_KEY":null,"VERSION_TAG":"v3.8.2.3","CURRENT_PROVIDER":"greenlight","SMTP_ENABLED":false},"errors":[]}`)})
		// Element still sending conferences to a Jitsi after the swap to BigBlueButton.
		in.set("chat."+testDomain+"/config.json", file(t, "element-config-upstream-jitsi.json"))
		rep := run(t, w, in.options(w), 10*time.Second)
		r := want(t, rep, CheckApp, meet+"/health_check", Fail, ReasonUnexpectedStatus)
		if !strings.Contains(r.Message, "Unable to connect to Database") {
			t.Errorf("the health check's own reason is shown: %s", r.Message)
		}
		want(t, rep, CheckApp, meet+"/api/v1/env.json", Fail, ReasonUnexpectedBody)
		want(t, rep, CheckApp, "https://chat."+testDomain+"/config.json", Fail, ReasonUnexpectedBody)
		if got := failures(rep); len(got) != 3 {
			t.Errorf("failures %v, want 3", got)
		}
	})
}

// planWithSecrets writes the Workplace document doc into dir, plans it with the
// built-in catalog and creates the Secrets the checks read in namespace ns.
func planWithSecrets(t *testing.T, c *cluster.Cluster, dir, ns, doc string) (*plan.Plan, *catalog.Catalog, kubernetes.Interface) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "workplace.yaml"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	repo, err := load.Dir(dir, platzwart.Builtin(), ns)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(c.Config())
	if _, err := (&secrets.Manager{Client: cs}).Ensure(t.Context(), checkedSecrets(p), nil); err != nil {
		t.Fatal(err)
	}
	return p, repo.Catalog, cs
}
