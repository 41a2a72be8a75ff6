package check

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/platzwart/platzwart/e2e/cluster"
)

// newOpenCloudWorkplace plans the demo workplace with files: opencloud (office
// collabora, as the profile selects) and generates the Secrets the checks read.
// OpenCloud's web client is a public client: it has no secret.
func newOpenCloudWorkplace(t *testing.T) *workplace {
	t.Helper()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	doc := `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: demo, namespace: ` + ns + `}
spec:
  domain: ` + testDomain + `
  profile: minikube
  components: {files: opencloud}
  values:
    jitsi: {jvb: {advertiseAddress: 192.0.2.10}}
`
	w, _ := workplaceFrom(t, c, t.TempDir(), ns, "demo", doc)
	return w
}

// openCloudAnswers are the answers of a working OpenCloud with Collabora: the proxy's
// OpenID configuration names the plan's issuer, the web client's config.json its
// issuer and client id.
func openCloudAnswers(t *testing.T, w *workplace, in *ingress) {
	t.Helper()
	files := "files." + testDomain
	in.set(files+"/status.php", file(t, "opencloud/status.json"))
	in.set(files+"/app/list", file(t, "opencloud/app-list-collabora.json"))
	in.set(files+"/.well-known/openid-configuration", jsonFixture(t, map[string]any{
		"issuer": in.issuer, "authorization_endpoint": in.issuer + "/authorize", "token_endpoint": in.issuer + "/oauth/token",
		"jwks_uri": in.issuer + "/keys"}))
	in.set(files+"/config.json", jsonFixture(t, map[string]any{
		"server": "https://" + files,
		"openIdConnect": map[string]any{"metadata_url": in.issuer + "/.well-known/openid-configuration",
			"authority": in.issuer, "client_id": w.clientOf("opencloud").id, "response_type": "code", "scope": "openid profile email"}}))
}

func jsonFixture(t *testing.T, v any) fixture {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{status: http.StatusOK, body: b}
}

// TestOpenCloudPasses: a working OpenCloud passes every probe, and the identity
// checks cover its public client (redirect and logout URIs, no secret).
func TestOpenCloudPasses(t *testing.T) {
	t.Parallel()
	w := newOpenCloudWorkplace(t)
	in := serve(t, w, provider{}, nil)
	openCloudAnswers(t, w, in)
	rep := run(t, w, in.options(w), 10*time.Second)
	if !rep.OK() {
		t.Fatalf("checks failed:\n%s", dump(rep))
	}
	files := "https://files." + testDomain
	for _, p := range []string{"/status.php", "/.well-known/openid-configuration", "/config.json", "/app/list"} {
		want(t, rep, CheckApp, files+p, Pass, "")
	}
	if r, _ := find(rep, CheckApp, files+"/app/list"); !strings.Contains(r.Message, "Collabora") {
		t.Errorf("the app list probe names no Collabora: %s", r.Message)
	}
	want(t, rep, CheckRedirect, files+"/oidc-callback.html", Pass, "")
	want(t, rep, CheckRedirect, files+"/oidc-silent-redirect.html", Pass, "")
	want(t, rep, CheckLogout, files+"/", Pass, "")
	// Nextcloud's probes are not run against OpenCloud's host.
	if _, ok := find(rep, CheckApp, files+"/login"); ok {
		t.Errorf("a Nextcloud probe ran against OpenCloud:\n%s", dump(rep))
	}
}

// TestOpenCloudFailures: each broken answer fails its probe with its reason, and
// nothing else.
func TestOpenCloudFailures(t *testing.T) {
	t.Parallel()
	w := newOpenCloudWorkplace(t)
	files := "files." + testDomain
	cases := []struct {
		name, path string
		answer     func(in *ingress) fixture
		reason     Reason
	}{
		{"Nextcloud's status.php", "/status.php", func(*ingress) fixture { return file(t, "nextcloud-status.json") }, ReasonUnexpectedBody},
		{"proxy cannot reach the issuer", "/.well-known/openid-configuration", func(*ingress) fixture {
			return fixture{status: http.StatusInternalServerError, body: []byte("x509: certificate signed by unknown authority")}
		}, ReasonUnexpectedStatus},
		{"discovery of another issuer", "/.well-known/openid-configuration", func(*ingress) fixture {
			return jsonFixture(t, map[string]any{"issuer": "https://login.example.com/realms/other"})
		}, ReasonIssuerMismatch},
		{"upstream default client id", "/config.json", func(in *ingress) fixture {
			return jsonFixture(t, map[string]any{"openIdConnect": map[string]any{"authority": in.issuer, "client_id": "web"}})
		}, ReasonUnexpectedBody},
		{"built-in IdP as authority", "/config.json", func(*ingress) fixture {
			return jsonFixture(t, map[string]any{"openIdConnect": map[string]any{"authority": "https://" + files, "client_id": "opencloud"}})
		}, ReasonIssuerMismatch},
		{"collaboration service not registered", "/app/list", func(*ingress) fixture { return file(t, "opencloud/app-list-none.json") }, ReasonUnexpectedBody},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := serve(t, w, provider{}, nil)
			openCloudAnswers(t, w, in)
			in.set(files+tc.path, tc.answer(in))
			rep := run(t, w, in.options(w), 10*time.Second)
			want(t, rep, CheckApp, "https://"+files+tc.path, Fail, tc.reason)
			if got := failures(rep); len(got) != 1 {
				t.Errorf("failures %v, want only %s", got, tc.path)
			}
		})
	}
}

// TestOpenCloudOfficeKind: the app list probe looks for the product the office
// kind maps to, and an office kind OpenCloud has no connector for fails with that
// reason instead of passing on any app.
func TestOpenCloudOfficeKind(t *testing.T) {
	a := app{component: "opencloud", hosts: map[string]string{"files": "files." + testDomain}}
	exp := &expectations{}
	if ps := openCloudProbes(a, exp); len(ps) != 1 {
		t.Fatalf("without identity and office: %d probes, want status.php only", len(ps))
	}
	body := []byte(`{"mime-types":[{"app_providers":[{"name":"OnlyOffice"}]}]}`)
	ok := &http.Response{StatusCode: http.StatusOK}
	for kind, pass := range map[string]bool{"onlyoffice": true, "collabora": false, "eurooffice": false, "msoffice": false} {
		a.values = map[string]any{"office": map[string]any{"enabled": true, "kind": kind, "url": "https://office." + testDomain}}
		ps := openCloudProbes(a, exp)
		last := ps[len(ps)-1]
		if !strings.HasSuffix(last.url, "/app/list") {
			t.Fatalf("%s: last probe %s, want the app list", kind, last.url)
		}
		if v := last.judge(ok, body, nil); v.ok() != pass {
			t.Errorf("office kind %s with an OnlyOffice app: pass %v (%s), want %v", kind, v.ok(), v.message, pass)
		}
	}
	a.values = map[string]any{"office": map[string]any{"enabled": false}}
	if ps := openCloudProbes(a, exp); len(ps) != 1 {
		t.Errorf("office disabled: %d probes, want 1", len(ps))
	}
}
