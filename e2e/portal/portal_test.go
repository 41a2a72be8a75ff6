package portal_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/go-logr/logr"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/e2e/toolbuild"
	"github.com/platzwart/platzwart/reconciler/contract"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/render"
	"github.com/platzwart/platzwart/reconciler/secrets"
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(cluster.RunTests(m))
}

const (
	domain   = "wp.example.org"
	password = "verysecure" // zitadel/oidc example storage's user id1
)

// workplace is the planned demo workplace with the portal's rendered workload and
// the Secrets platzwart generated for it in a namespace of the test cluster.
type workplace struct {
	plan   *plan.Plan
	portal *plan.Release
	// deployment and page are the portal chart's Deployment and index.html.
	deployment *appsv1.Deployment
	page       []byte
	// secrets are the data of the Secrets the portal's containers reference, by name.
	secrets map[string]map[string][]byte
	cert    tls.Certificate
	ca      *x509.CertPool
}

func newWorkplace(t *testing.T) *workplace {
	t.Helper()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	doc := `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: demo, namespace: ` + ns + `}
spec:
  domain: ` + domain + `
  profile: minikube
  values:
    jitsi: {jvb: {advertiseAddress: 192.0.2.10}}
`
	repo, err := load.FS(fstest.MapFS{"workplace.yaml": &fstest.MapFile{Data: []byte(doc), Mode: 0o644}}, "repo", platzwart.Builtin(), ns)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	w := &workplace{plan: p, secrets: map[string]map[string][]byte{}}
	for _, r := range p.Releases {
		if r.Component == "portal" {
			w.portal = r
		}
	}
	if w.portal == nil {
		t.Fatal("the minikube profile selects no portal")
	}
	ms, err := render.Plan(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Release != w.portal.Name {
			continue
		}
		for _, d := range strings.Split(m.Manifest, "\n---") {
			var head struct {
				Kind string            `json:"kind"`
				Data map[string]string `json:"data"`
			}
			if yaml.Unmarshal([]byte(d), &head) != nil {
				continue
			}
			switch head.Kind {
			case "Deployment":
				w.deployment = &appsv1.Deployment{}
				if err := yaml.UnmarshalStrict([]byte(d), w.deployment); err != nil {
					t.Fatal(err)
				}
			case "ConfigMap":
				w.page = []byte(head.Data["index.html"])
			}
		}
	}
	if w.deployment == nil || len(w.page) == 0 {
		t.Fatal("the portal release renders no Deployment or no page")
	}
	// The Secrets, generated as apply does: the certificate and CA, the portal's
	// client secret and cookie secret.
	only := *p
	only.Secrets = nil
	for _, s := range p.Secrets {
		if s.Type == "kubernetes.io/tls" || s.Component == "portal" {
			only.Secrets = append(only.Secrets, s)
		}
	}
	cs := kubernetes.NewForConfigOrDie(c.Config())
	if _, err := (&secrets.Manager{Client: cs}).Ensure(t.Context(), &only, nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range only.Secrets {
		sec, err := cs.CoreV1().Secrets(ns).Get(t.Context(), s.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w.secrets[s.Name] = sec.Data
	}
	tlsData := w.secrets[contract.TLSSecret("demo")]
	if w.cert, err = tls.X509KeyPair(tlsData["tls.crt"], tlsData["tls.key"]); err != nil {
		t.Fatal(err)
	}
	w.ca = x509.NewCertPool()
	if !w.ca.AppendCertsFromPEM(tlsData["ca.crt"]) {
		t.Fatal("no CA certificate in the TLS Secret")
	}
	return w
}

// container returns the portal Deployment's container of that name.
func (w *workplace) container(t *testing.T, name string) corev1.Container {
	t.Helper()
	for _, c := range w.deployment.Spec.Template.Spec.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("the portal Deployment has no container %s", name)
	return corev1.Container{}
}

// ingress is the workplace as a browser and the pods see it: one TLS listener with
// the workplace's certificate serving the identity host (a zitadel/oidc provider
// under the issuer's path, and its login page) and the portal host (proxied to
// oauth2-proxy, with X-Forwarded-* as an ingress controller sets them). It also
// answers CONNECT, so a process given it as HTTPS_PROXY reaches those hosts by name.
type ingress struct {
	listener net.Listener
	issuer   *url.URL
	storage  *storage.Storage
	provider op.OpenIDProvider
	portal   *url.URL // oauth2-proxy's address

	mu       sync.Mutex
	requests []string // host + path of every request to the identity host
}

func newIngress(t *testing.T, w *workplace) *ingress {
	t.Helper()
	// The issuer the portal is configured with: keycloak's, https://id.<domain>/realms/demo.
	oidcValues, _ := w.portal.Values["oidc"].(map[string]any)
	raw, _ := oidcValues["issuerURL"].(string)
	issuer, err := url.Parse(raw)
	if err != nil || issuer.Host == "" {
		t.Fatalf("the portal's oidc.issuerURL %q: %v", raw, err)
	}
	in := &ingress{issuer: issuer}
	// The client as the identity component registers it (the plan's redirect URI).
	redirects := []string{"https://" + w.portal.Hosts["portal"] + "/oauth2/callback"}
	secret := string(w.secrets[contract.OIDCClientSecret(w.portal.Name).Name]["client-secret"])
	in.storage = storage.NewStorageWithClients(storage.NewUserStore(issuer.String()),
		map[string]*storage.Client{"portal": storage.WebClient("portal", secret, redirects...)})
	in.provider, err = op.NewProvider(&op.Config{CryptoKey: sha256.Sum256([]byte("portal sign-in test")), CodeMethodS256: true,
		AuthMethodPost: true}, in.storage, op.StaticIssuer(issuer.String()))
	if err != nil {
		t.Fatal(err)
	}
	if in.listener, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	opHandler := http.StripPrefix(issuer.Path, in.provider)
	srv := &http.Server{
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{w.cert}},
		Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodConnect {
				in.connect(rw, r)
				return
			}
			host, _, err := net.SplitHostPort(r.Host)
			if err != nil {
				host = r.Host
			}
			switch {
			case host == issuer.Hostname() && r.URL.Path == "/login/username":
				in.login(rw, r)
			case host == issuer.Hostname():
				in.mu.Lock()
				in.requests = append(in.requests, host+r.URL.Path)
				in.mu.Unlock()
				opHandler.ServeHTTP(rw, r)
			case host == w.portal.Hosts["portal"] && in.portal != nil:
				(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
					pr.SetURL(in.portal)
					pr.Out.Host = pr.In.Host
					pr.SetXForwarded()
				}}).ServeHTTP(rw, r)
			default:
				http.NotFound(rw, r)
			}
		}),
	}
	tlsListener := &connectSniffer{Listener: in.listener, tls: srv.TLSConfig, srv: srv}
	go func() { _ = srv.Serve(tlsListener) }()
	t.Cleanup(func() { _ = srv.Close() })
	return in
}

// login is the identity provider's login page, submitted: the example storage
// checks the user's password for the authorization request and the browser goes
// on to the provider's callback, which issues the code.
func (in *ingress) login(rw http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	if err := in.storage.CheckUsernamePassword(r.URL.Query().Get("username"), r.URL.Query().Get("password"), id); err != nil {
		http.Error(rw, err.Error(), http.StatusForbidden)
		return
	}
	ctx := op.ContextWithIssuer(r.Context(), in.issuer.String())
	http.Redirect(rw, r, op.AuthCallbackURL(in.provider)(ctx, id), http.StatusFound)
}

// connect tunnels a CONNECT request to the ingress itself: the hosts it serves
// are reached by name whatever DNS says.
func (in *ingress) connect(rw http.ResponseWriter, r *http.Request) {
	hj, ok := rw.(http.Hijacker)
	if !ok {
		http.Error(rw, "no hijacking", http.StatusInternalServerError)
		return
	}
	up, err := net.Dial("tcp", in.listener.Addr().String())
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadGateway)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	_, _ = conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
	go func() {
		defer up.Close()
		defer conn.Close()
		go func() { _, _ = io.Copy(up, buf) }()
		_, _ = io.Copy(conn, up)
	}()
}

// connectSniffer serves plain HTTP (the CONNECT of a proxy client) and TLS on one
// listener, telling them apart by the first byte (0x16: a TLS handshake).
type connectSniffer struct {
	net.Listener
	tls *tls.Config
	srv *http.Server
}

func (l *connectSniffer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	b := make([]byte, 1)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, b); err != nil {
		c.Close()
		return l.Accept()
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &peeked{Conn: c, first: b}
	if b[0] == 0x16 {
		return tls.Server(pc, l.tls), nil
	}
	return pc, nil
}

type peeked struct {
	net.Conn
	first []byte
}

func (p *peeked) Read(b []byte) (int, error) {
	if len(p.first) > 0 {
		n := copy(b, p.first)
		p.first = p.first[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// lockedBuffer is the process's output, read while it writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// drop, as an override, leaves a variable out.
const drop = "\x00drop"

// started fails the test when the proxy did not start.
func started(t *testing.T, p *proxy) *proxy {
	t.Helper()
	if p.err != nil {
		t.Fatal(p.err)
	}
	return p
}

// proxy is oauth2-proxy running with the chart's environment.
type proxy struct {
	addr string
	log  *lockedBuffer
	// err says why it did not start.
	err error
}

// startProxy runs the oauth2-proxy binary with exactly the environment of the
// chart's container, changed only where the test machine is not the pod: Secret
// references get the values generated in the cluster (or override's), files under
// the container's Secret volume mounts are written below a temporary directory
// (and the paths in the environment moved there), it listens on a free loopback
// port instead of 0.0.0.0:4180, its upstream is the nginx stand-in's address, and
// HTTPS_PROXY routes its calls to the issuer through the ingress (DNS).
func startProxy(t *testing.T, w *workplace, in *ingress, upstream string, override map[string]string) *proxy {
	t.Helper()
	c := w.container(t, "oauth2-proxy")
	if len(c.Args) > 0 || len(c.Command) > 0 {
		t.Fatalf("the chart passes arguments %v %v; this test runs the environment only", c.Command, c.Args)
	}
	root := t.TempDir()
	mounts := map[string]string{} // mount path → path on this machine
	vols := map[string]corev1.Volume{}
	for _, v := range w.deployment.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	for _, m := range c.VolumeMounts {
		v := vols[m.Name]
		if v.Secret == nil {
			t.Fatalf("volume %s of oauth2-proxy is not a Secret: map it in the test", m.Name)
		}
		dir := filepath.Join(root, m.MountPath)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		data, ok := w.secrets[v.Secret.SecretName]
		if !ok {
			t.Fatalf("Secret %s is not one platzwart generated for this test", v.Secret.SecretName)
		}
		for _, it := range v.Secret.Items {
			if err := os.WriteFile(filepath.Join(dir, it.Path), data[it.Key], 0o600); err != nil {
				t.Fatal(err)
			}
		}
		mounts[m.MountPath] = dir
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	env := []string{"HTTPS_PROXY=http://" + in.listener.Addr().String(), "NO_PROXY=127.0.0.1"}
	for _, e := range c.Env {
		value := e.Value
		switch {
		case override[e.Name] == drop:
			continue
		case override[e.Name] != "":
			value = override[e.Name]
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			data, ok := w.secrets[ref.Name]
			if !ok {
				t.Fatalf("%s: Secret %s is not one platzwart generated for this test", e.Name, ref.Name)
			}
			value = string(data[ref.Key])
		case e.ValueFrom != nil:
			t.Fatalf("%s: valueFrom other than a Secret key: map it in the test", e.Name)
		case e.Name == "OAUTH2_PROXY_HTTP_ADDRESS":
			if value != "0.0.0.0:4180" {
				t.Fatalf("the chart listens on %s; the test expected 0.0.0.0:4180", value)
			}
			value = addr
		case e.Name == "OAUTH2_PROXY_UPSTREAMS":
			value = upstream
		}
		for mp, dir := range mounts {
			if strings.HasPrefix(value, mp+"/") {
				value = dir + strings.TrimPrefix(value, mp)
			}
		}
		env = append(env, e.Name+"="+value)
	}
	var log lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, oauth2Proxy(t))
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("oauth2-proxy log:\n%s", log.String())
		}
	})
	p := &proxy{addr: addr, log: &log}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		exited := false
		select {
		case <-done:
			exited = true
		default:
		}
		if time.Now().After(deadline) || exited {
			p.err = fmt.Errorf("oauth2-proxy did not answer /ping: %v\n%s", err, log.String())
			return p
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// oauth2ProxyTool is oauth2-proxy at the version e2e/tools/oauth2-proxy pins.
var oauth2ProxyTool = toolbuild.Tool{Dir: "oauth2-proxy", Module: "github.com/oauth2-proxy/oauth2-proxy/v7",
	Pkg: "github.com/oauth2-proxy/oauth2-proxy/v7", Binary: "oauth2-proxy"}

// oauth2Proxy returns the binary built from e2e/tools/oauth2-proxy.
func oauth2Proxy(t *testing.T) string {
	t.Helper()
	return toolbuild.Build(t, oauth2ProxyTool)
}

// browser is a client with a cookie jar that reaches every host through the ingress
// and trusts the workplace's CA only. It does not follow redirects: the test does,
// step by step.
func browser(t *testing.T, w *workplace, in *ingress) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Jar:     jar,
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: w.ca},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, in.listener.Addr().String())
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// follow requests u and follows redirects, submitting the identity provider's login
// form with the test user's credentials when it is reached; it returns every URL
// visited and the last response with its body.
func follow(t *testing.T, b *http.Client, in *ingress, u string) ([]string, *http.Response, []byte) {
	t.Helper()
	// The example storage names its user test-user@<issuer without scheme and port>
	// (storage.NewUserStore).
	username := "test-user@" + in.issuer.Hostname() + in.issuer.Path
	var visited []string
	for range 12 {
		if lu, err := url.Parse(u); err == nil && lu.Path == "/login/username" {
			q := lu.Query()
			q.Set("username", username)
			q.Set("password", password)
			lu.RawQuery = q.Encode()
			u = lu.String()
		}
		visited = append(visited, u)
		resp, err := b.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v (visited %v)", u, err, visited)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode >= 400 || loc == "" {
			return visited, resp, body
		}
		next, err := resp.Request.URL.Parse(loc)
		if err != nil {
			t.Fatal(err)
		}
		u = next.String()
	}
	t.Fatalf("more than 12 redirects: %v", visited)
	return nil, nil, nil
}

// nginx stands in for the portal's nginx container: it serves the page the chart
// rendered at / and nothing else (the chart's nginx.conf: location = / with
// index.html, every other path 404).
func nginx(t *testing.T, page []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), page, 0o600); err != nil {
		t.Fatal(err)
	}
	files := http.FileServer(http.Dir(dir))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(rw, r)
			return
		}
		files.ServeHTTP(rw, r)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String() + "/"
}

// TestSignInThroughOAuth2Proxy: an anonymous request to the portal is sent to the
// identity provider as client portal; after the login the page with the tiles is
// served; a wrong client secret ends the login with an error, without the page.
func TestSignInThroughOAuth2Proxy(t *testing.T) {
	w := newWorkplace(t)
	portal := "https://" + w.portal.Hosts["portal"] + "/"

	// The image the chart runs is the version this test builds.
	version, err := toolbuild.Version(oauth2ProxyTool)
	if err != nil {
		t.Fatal(err)
	}
	if img := w.container(t, "oauth2-proxy").Image; !strings.HasSuffix(img, ":"+version) {
		t.Fatalf("the chart runs %s, the test builds oauth2-proxy %s", img, version)
	}
	upstream := nginx(t, w.page)

	t.Run("anonymous request goes to the provider", func(t *testing.T) {
		in := newIngress(t, w)
		in.portal = mustURL(t, "http://"+started(t, startProxy(t, w, in, upstream, nil)).addr)
		resp, err := browser(t, w, in).Get(portal)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || loc.Host != in.issuer.Host || !strings.HasPrefix(loc.Path, in.issuer.Path+"/") {
			t.Fatalf("anonymous GET %s: HTTP %d to %q, want a redirect to the issuer %s", portal, resp.StatusCode, resp.Header.Get("Location"), in.issuer)
		}
		q := loc.Query()
		if q.Get("client_id") != "portal" || q.Get("redirect_uri") != portal+"oauth2/callback" || q.Get("code_challenge_method") != "S256" {
			t.Errorf("authorization request %s: want client_id portal, redirect_uri %soauth2/callback and PKCE S256", loc, portal)
		}
	})

	t.Run("after the login the page is served", func(t *testing.T) {
		in := newIngress(t, w)
		in.portal = mustURL(t, "http://"+started(t, startProxy(t, w, in, upstream, nil)).addr)
		b := browser(t, w, in)
		visited, resp, body := follow(t, b, in, portal)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, w.page) {
			t.Fatalf("after the login: HTTP %d, %d bytes, want the rendered page (%d bytes); visited:\n%s",
				resp.StatusCode, len(body), len(w.page), strings.Join(visited, "\n"))
		}
		for _, a := range w.plan.Apps {
			if !bytes.Contains(body, []byte(`href="`+a.URL+`"`)) {
				t.Errorf("the page has no tile linking to %s", a.URL)
			}
		}
		if len(w.plan.Apps) < 4 {
			t.Errorf("%d tiles, want at least Account, Chat, Files and Video", len(w.plan.Apps))
		}
		// oauth2-proxy fetched the discovery, the keys and the token from the
		// issuer through TLS under the workplace's CA (OAUTH2_PROXY_PROVIDER_CA_FILES).
		in.mu.Lock()
		reqs := strings.Join(in.requests, "\n")
		in.mu.Unlock()
		for _, p := range []string{"/.well-known/openid-configuration", "/oauth/token", "/keys"} {
			if !strings.Contains(reqs, in.issuer.Host+in.issuer.Path+p) {
				t.Errorf("the provider saw no request to %s; requests:\n%s", p, reqs)
			}
		}
		// A second request carries the session cookie: the page, with no login.
		visited, resp, body = follow(t, b, in, portal)
		if len(visited) != 1 {
			t.Errorf("with the session cookie the page came after redirects: %v", visited)
		}
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, w.page) {
			t.Errorf("with the session cookie: HTTP %d", resp.StatusCode)
		}
	})

	t.Run("wrong client secret fails", func(t *testing.T) {
		in := newIngress(t, w)
		pr := started(t, startProxy(t, w, in, upstream, map[string]string{"OAUTH2_PROXY_CLIENT_SECRET": "not-the-generated-secret"}))
		in.portal = mustURL(t, "http://"+pr.addr)
		visited, resp, body := follow(t, browser(t, w, in), in, portal)
		if resp.StatusCode == http.StatusOK || bytes.Contains(body, []byte(`class="tile"`)) {
			t.Fatalf("with a wrong client secret the page was served (HTTP %d); visited:\n%s", resp.StatusCode, strings.Join(visited, "\n"))
		}
		if last := visited[len(visited)-1]; !strings.HasPrefix(last, portal+"oauth2/callback") {
			t.Errorf("the login ended at %s, want oauth2-proxy's callback refusing it", last)
		}
		t.Logf("wrong client secret: HTTP %d at the callback", resp.StatusCode)
	})

	t.Run("without the workplace CA the issuer is refused", func(t *testing.T) {
		in := newIngress(t, w)
		pr := startProxy(t, w, in, upstream, map[string]string{"OAUTH2_PROXY_PROVIDER_CA_FILES": drop, "OAUTH2_PROXY_USE_SYSTEM_TRUST_STORE": drop})
		if pr.err == nil {
			t.Fatal("oauth2-proxy started without the workplace CA: it must not trust the issuer's certificate")
		}
		if !strings.Contains(pr.err.Error(), "certificate") {
			t.Errorf("want a certificate error from the discovery: %v", pr.err)
		}
	})
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
