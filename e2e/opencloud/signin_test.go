package opencloud_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/render"
)

// binEnv names the opencloud binary the test runs.
const binEnv = "PLATZWART_OPENCLOUD_BIN"

// rendered is OpenCloud's release of a planned workplace: its Deployment and the
// CSP file of its ConfigMap.
type rendered struct {
	release    *plan.Release
	deployment *appsv1.Deployment
	csp        string
}

func renderOpenCloud(t *testing.T) *rendered {
	t.Helper()
	doc := `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: demo, namespace: demo}
spec:
  domain: wp.example.org
  profile: minikube
  components: {files: opencloud}
  values:
    jitsi: {jvb: {advertiseAddress: 192.0.2.10}}
`
	repo, err := load.FS(fstest.MapFS{"workplace.yaml": &fstest.MapFile{Data: []byte(doc), Mode: 0o644}}, "repo", platzwart.Builtin(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	out := &rendered{}
	for _, r := range p.Releases {
		if r.Component == "opencloud" {
			out.release = r
		}
	}
	if out.release == nil {
		t.Fatal("the plan has no opencloud release")
	}
	ms, err := render.Plan(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Release != out.release.Name {
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
				out.deployment = &appsv1.Deployment{}
				if err := yaml.UnmarshalStrict([]byte(d), out.deployment); err != nil {
					t.Fatal(err)
				}
			case "ConfigMap":
				out.csp = head.Data["csp.yaml"]
			}
		}
	}
	if out.deployment == nil || out.csp == "" {
		t.Fatal("the opencloud release renders no Deployment or no CSP")
	}
	return out
}

func (r *rendered) container(t *testing.T, name string) corev1.Container {
	t.Helper()
	spec := r.deployment.Spec.Template.Spec
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("the Deployment has no container %s", name)
	return corev1.Container{}
}

// provider is zitadel/oidc's example OpenID provider at https://localhost:<port>/realms/demo
// with a certificate for localhost under its own CA, and OpenCloud's client as
// the plan registers it: public, PKCE, JWT access tokens (as Keycloak issues).
type provider struct {
	// issuer is the issuer it names, base where it is served (the same unless it
	// impersonates another provider).
	issuer, base string
	caPEM        []byte
	storage      *storage.Storage
	op           op.OpenIDProvider
}

// jwtClient is an example client whose access tokens are JWTs.
type jwtClient struct{ op.Client }

func (jwtClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }

type clientStorage struct {
	*storage.Storage
	id string
}

func (s clientStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil || id != s.id {
		return c, err
	}
	return jwtClient{c}, nil
}

func newProvider(t *testing.T, clientID string, redirects []string, key, issuer string) *provider {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test workplace CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2),
		Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &provider{base: fmt.Sprintf("https://localhost:%d/realms/demo", l.Addr().(*net.TCPAddr).Port),
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})}
	p.issuer = p.base
	if issuer != "" {
		p.issuer = issuer
	}
	p.storage = storage.NewStorageWithClients(storage.NewUserStore(p.issuer),
		map[string]*storage.Client{clientID: storage.NativeClient(clientID, redirects...)})
	p.op, err = op.NewProvider(&op.Config{CryptoKey: sha256.Sum256([]byte(key)), CodeMethodS256: true},
		clientStorage{p.storage, clientID}, op.StaticIssuer(p.issuer))
	if err != nil {
		t.Fatal(err)
	}
	handler := http.StripPrefix("/realms/demo", p.op)
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login/username" {
			// the provider's login page, submitted
			id := r.URL.Query().Get("authRequestID")
			if err := p.storage.CheckUsernamePassword(r.URL.Query().Get("username"), r.URL.Query().Get("password"), id); err != nil {
				http.Error(rw, err.Error(), http.StatusForbidden)
				return
			}
			http.Redirect(rw, r, op.AuthCallbackURL(p.op)(op.ContextWithIssuer(r.Context(), p.issuer), id), http.StatusFound)
			return
		}
		handler.ServeHTTP(rw, r)
	}), TLSConfig: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

// token signs user in with OpenCloud's web client (authorization code with PKCE)
// and returns the access token.
func (p *provider) token(t *testing.T, clientID, redirect, user, password string) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.caPEM)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	verifier := base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("platzwart-opencloud-", 3)))
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"openid profile email"}, "state": {"s"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}}
	next := p.base + "/authorize?" + q.Encode()
	var code string
	for i := 0; i < 5 && code == ""; i++ {
		resp, err := c.Get(next)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("GET %s: HTTP %d without a redirect: %s", next, resp.StatusCode, body)
		}
		switch {
		case strings.HasPrefix(loc.String(), redirect):
			code = loc.Query().Get("code")
		case loc.Path == "/login/username":
			lq := loc.Query()
			lq.Set("username", user)
			lq.Set("password", password)
			loc.RawQuery = lq.Encode()
			next = loc.String()
		default:
			next = p.base + strings.TrimPrefix(loc.String(), p.issuer)
		}
	}
	if code == "" {
		t.Fatal("the provider issued no code")
	}
	resp, err := c.PostForm(p.base+"/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirect}, "client_id": {clientID}, "code_verifier": {verifier}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" || strings.Count(tok.AccessToken, ".") != 2 {
		t.Fatalf("token response HTTP %d: %v (want a JWT access token)", resp.StatusCode, err)
	}
	return tok.AccessToken
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// paths maps the pod's paths to directories of this machine.
type paths map[string]string

func (m paths) apply(s string) string {
	for from, to := range m {
		s = strings.ReplaceAll(s, from, to)
	}
	return s
}

// environment is a container's environment as the pod has it, paths mapped, with
// Secret references given values and the overrides applied ("" drops a variable).
func environment(t *testing.T, c corev1.Container, m paths, secrets map[string]string, override map[string]string) []string {
	t.Helper()
	var env []string
	for _, e := range c.Env {
		value := e.Value
		if e.ValueFrom != nil {
			ref := e.ValueFrom.SecretKeyRef
			if ref == nil {
				t.Fatalf("%s: valueFrom other than a Secret key", e.Name)
			}
			v, ok := secrets[ref.Name+"/"+ref.Key]
			if !ok {
				t.Fatalf("%s: Secret %s key %s has no test value", e.Name, ref.Name, ref.Key)
			}
			value = v
		}
		if o, ok := override[e.Name]; ok {
			if o == "" {
				continue
			}
			value = o
		}
		env = append(env, e.Name+"="+m.apply(value))
	}
	return env
}

// shellOf runs a container's /bin/sh -c script with its paths mapped.
func shellOf(t *testing.T, c corev1.Container, m paths, env []string) {
	t.Helper()
	if len(c.Command) != 3 || c.Command[0] != "/bin/sh" || c.Command[1] != "-c" {
		t.Fatalf("container %s runs %v, want /bin/sh -c <script>", c.Name, c.Command)
	}
	cmd := exec.Command("/bin/sh", "-c", m.apply(c.Command[2]))
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("container %s: %v\n%s", c.Name, err, out)
	}
}

// instance is an OpenCloud server started for a test.
type instance struct {
	r        *rendered
	p        *provider
	clientID string
	callback string
	url      string // the proxy's address, http://127.0.0.1:<port>
}

// startOpenCloud runs OpenCloud with the chart's init scripts and environment
// (paths mapped to a temporary directory, the proxy on a free loopback port, the
// issuer the test provider's; override changes further variables, "" drops one)
// and waits until its status.php answers.
func startOpenCloud(t *testing.T, override map[string]string) *instance {
	t.Helper()
	bin := os.Getenv(binEnv)
	if bin == "" {
		t.Skipf("%s names no opencloud binary (see doc.go)", binEnv)
	}
	slog.SetDefault(slog.New(slog.DiscardHandler))
	r := renderOpenCloud(t)
	clientID, _ := r.release.Values["oidc"].(map[string]any)["clientID"].(string)
	files := "https://" + r.release.Hosts["files"]
	callback := files + "/oidc-callback.html"
	p := newProvider(t, clientID, []string{callback, files + "/oidc-silent-redirect.html"}, "opencloud sign-in test", "")

	// The pod's paths on this machine; `opencloud` on PATH as in the image.
	root := t.TempDir()
	m := paths{"/var/lib/opencloud": filepath.Join(root, "data"), "/etc/platzwart": filepath.Join(root, "platzwart"),
		"/etc/opencloud-csp": filepath.Join(root, "csp")}
	for _, d := range []string{"data", "platzwart/ca", "platzwart/bundle", "csp", "bin", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(bin, filepath.Join(root, "bin", "opencloud")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "platzwart/ca/ca.crt"), p.caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "csp/csp.yaml"), []byte(r.csp), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"PATH=" + filepath.Join(root, "bin") + ":/usr/bin:/bin", "HOME=" + filepath.Join(root, "data"), "TMPDIR=" + filepath.Join(root, "tmp")}
	secrets := map[string]string{"demo-opencloud-admin/password": "admin-password-for-the-test"}

	// The init containers: the CA bundle, then `opencloud init`.
	shellOf(t, r.container(t, "ca-bundle"), m, base)
	init := r.container(t, "init-config")
	shellOf(t, init, m, append(base, environment(t, init, m, secrets, nil)...))
	if _, err := os.Stat(filepath.Join(root, "data/config/opencloud.yaml")); err != nil {
		t.Fatalf("init wrote no opencloud.yaml: %v", err)
	}

	// The server, listening on loopback, signing in at the test provider.
	server := r.container(t, "opencloud")
	if strings.Join(server.Args, " ") != "server" || len(server.Command) != 0 {
		t.Fatalf("the opencloud container runs %v %v, want the image's entrypoint with server", server.Command, server.Args)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	over := map[string]string{"PROXY_HTTP_ADDR": addr, "OC_OIDC_ISSUER": p.issuer}
	for k, v := range override {
		over[k] = v
	}
	env := append(base, environment(t, server, m, secrets, over)...)
	var log lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, server.Args...)
	cmd.Env = env
	cmd.Dir = filepath.Join(root, "data")
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("opencloud log (last 8 KiB):\n%s", tail(log.String(), 8<<10))
		}
	})
	oc := "http://" + addr
	hc := &http.Client{Timeout: 20 * time.Second}
	deadline := time.Now().Add(3 * time.Minute)
	start := time.Now()
	for {
		last := ""
		resp, err := hc.Get(oc + "/status.php")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var st struct {
				Installed bool `json:"installed"`
			}
			if resp.StatusCode == http.StatusOK && json.Unmarshal(body, &st) == nil && st.Installed {
				t.Logf("status.php after %s: %s", time.Since(start).Round(time.Second), bytes.Join(bytes.Fields(body), nil))
				break
			}
			last = fmt.Sprintf("HTTP %d %s", resp.StatusCode, tail(string(body), 300))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			t.Fatalf("OpenCloud's status.php did not answer within 3 minutes: %s", last)
		}
		time.Sleep(time.Second)
	}
	return &instance{r: r, p: p, clientID: clientID, callback: callback, url: oc}
}

// get requests path of the instance, with a bearer token when one is given.
func (in *instance) get(t *testing.T, path, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, in.url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// TestSignInToOpenCloud runs OpenCloud with the chart's init scripts and
// environment against a real OpenID provider: the proxy serves the provider's
// discovery (it trusts the provider through the chart's CA bundle), the web client
// is configured with the issuer and the plan's client id, an access token from the
// web client's sign-in creates the person's account on the first request (role
// User), and a token signed with another key is refused.
func TestSignInToOpenCloud(t *testing.T) {
	in := startOpenCloud(t, nil)
	p, clientID, callback := in.p, in.clientID, in.callback
	get := func(path, token string) (int, []byte) { return in.get(t, path, token) }

	t.Run("the proxy serves the provider's discovery", func(t *testing.T) {
		code, body := get("/.well-known/openid-configuration", "")
		var d struct {
			Issuer string `json:"issuer"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &d) != nil || d.Issuer != p.issuer {
			t.Fatalf("HTTP %d %s, want the discovery of %s", code, body, p.issuer)
		}
	})
	t.Run("the web client signs in at the provider as the plan's client", func(t *testing.T) {
		code, body := get("/config.json", "")
		var cfg struct {
			OIDC struct {
				Authority string `json:"authority"`
				ClientID  string `json:"client_id"`
			} `json:"openIdConnect"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &cfg) != nil || cfg.OIDC.Authority != p.issuer || cfg.OIDC.ClientID != clientID {
			t.Fatalf("config.json HTTP %d %s, want authority %s and client %s", code, body, p.issuer, clientID)
		}
	})
	t.Run("the first sign-in creates the account with the role User", func(t *testing.T) {
		user := "test-user@localhost" // the example provider's first user
		token := p.token(t, clientID, callback, user, "verysecure")
		// status.php answers before every service is up: the first request may
		// meet an auth provider still starting (HTTP 500); a person would retry.
		code, body := get("/graph/v1.0/me?$expand=appRoleAssignments", token)
		for wait := time.Now().Add(90 * time.Second); code == http.StatusInternalServerError && time.Now().Before(wait); {
			time.Sleep(2 * time.Second)
			code, body = get("/graph/v1.0/me?$expand=appRoleAssignments", token)
		}
		var me struct {
			Name        string `json:"onPremisesSamAccountName"`
			Mail        string `json:"mail"`
			Assignments []struct {
				AppRoleID string `json:"appRoleId"`
			} `json:"appRoleAssignments"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &me) != nil || me.Name != user {
			t.Fatalf("/graph/v1.0/me with the access token: HTTP %d %s, want the account %s", code, body, user)
		}
		t.Logf("account: %s", body)
		if len(me.Assignments) != 1 {
			t.Fatalf("role assignments %+v, want exactly one (the default role)", me.Assignments)
		}
		code, body = get("/graph/v1.0/applications", token)
		var apps struct {
			Value []struct {
				AppRoles []struct {
					ID          string `json:"id"`
					DisplayName string `json:"displayName"`
				} `json:"appRoles"`
			} `json:"value"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &apps) != nil {
			t.Fatalf("/graph/v1.0/applications: HTTP %d %s", code, body)
		}
		role := ""
		for _, a := range apps.Value {
			for _, r := range a.AppRoles {
				if r.ID == me.Assignments[0].AppRoleID {
					role = r.DisplayName
				}
			}
		}
		if role != "User" {
			t.Errorf("the new account's role is %q, want User", role)
		}
	})
	t.Run("a token signed with another key is refused", func(t *testing.T) {
		// The same issuer, another signing key.
		other := newProvider(t, clientID, []string{callback}, "another provider's key", p.issuer)
		forged := other.token(t, clientID, callback, "test-user@localhost", "verysecure")
		if code, body := get("/graph/v1.0/me", forged); code != http.StatusUnauthorized {
			t.Errorf("a token of another provider: HTTP %d %s, want 401", code, body)
		}
		if code, _ := get("/graph/v1.0/me", ""); code != http.StatusUnauthorized {
			t.Errorf("no token: HTTP %d, want 401", code)
		}
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestOpenCloudWithoutTheWorkplaceCA: without the chart's SSL_CERT_FILE (the
// system roots only) the proxy cannot fetch the provider's discovery, and a valid
// access token is refused: the CA bundle is what makes sign-in work.
func TestOpenCloudWithoutTheWorkplaceCA(t *testing.T) {
	in := startOpenCloud(t, map[string]string{"SSL_CERT_FILE": ""})
	if code, body := in.get(t, "/.well-known/openid-configuration", ""); code == http.StatusOK {
		t.Errorf("the proxy served the provider's discovery without trusting its CA: %s", body)
	}
	token := in.p.token(t, in.clientID, in.callback, "test-user@localhost", "verysecure")
	code, body := in.get(t, "/graph/v1.0/me", token)
	for wait := time.Now().Add(90 * time.Second); code == http.StatusInternalServerError && time.Now().Before(wait); {
		time.Sleep(2 * time.Second)
		code, body = in.get(t, "/graph/v1.0/me", token)
	}
	if code != http.StatusUnauthorized {
		t.Errorf("without the CA a valid token got HTTP %d %s, want 401", code, body)
	}
}
