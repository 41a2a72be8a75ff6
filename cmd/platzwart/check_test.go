package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/check"
	"github.com/platzwart/platzwart/reconciler/contract"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/secrets"
)

// checkMainEnv makes the test binary run platzwart's main with the arguments in
// checkArgsEnv (JSON), so that TestCheckCommand sees the real exit status.
const (
	checkMainEnv = "PLATZWART_TEST_CHECK_MAIN"
	checkArgsEnv = "PLATZWART_TEST_CHECK_ARGS"
)

// TestCheckMainProcess is not a test: it is the platzwart process TestCheckCommand runs.
func TestCheckMainProcess(t *testing.T) {
	if os.Getenv(checkMainEnv) != "1" {
		t.Skip("the platzwart process of TestCheckCommand")
	}
	var args []string
	if err := json.Unmarshal([]byte(os.Getenv(checkArgsEnv)), &args); err != nil {
		t.Fatal(err)
	}
	os.Args = append([]string{"platzwart"}, args...)
	main() // exits 1 on error
	os.Exit(0)
}

// runCheckProcess runs `platzwart check` as a process and returns its output and exit code.
func runCheckProcess(t *testing.T, args ...string) (stdout, stderr string, code int, took time.Duration) {
	t.Helper()
	enc, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCheckMainProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), checkMainEnv+"=1", checkArgsEnv+"="+string(enc))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err = cmd.Run()
	took = time.Since(start)
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code, took
}

// checkWorkplace is a workplace with identity and files only, its Secrets generated in
// the test cluster, and a loopback "ingress" serving it: a real zitadel/oidc provider
// at the issuer, Nextcloud's answers (reconciler/check/testdata) at the files host.
type checkWorkplace struct {
	dir, kubeconfig string
	server          *httptest.Server
	mu              sync.Mutex
	files           map[string][]byte // path → status.php, login page
	status          map[string]int
}

func newCheckWorkplace(t *testing.T) *checkWorkplace {
	t.Helper()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	w := &checkWorkplace{dir: t.TempDir(), kubeconfig: c.KubeconfigPath(), files: map[string][]byte{}, status: map[string]int{}}
	doc := `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: demo, namespace: ` + ns + `}
spec:
  domain: wp.example.org
  profile: minikube
  components: {chat: none, video: none, office: none, portal: none, mail: none}
`
	if err := os.WriteFile(filepath.Join(w.dir, "workplace.yaml"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	repo, err := load.Dir(w.dir, platzwart.Builtin(), ns)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(c.Config())
	// Only the Secrets check reads: the certificate with its CA and the client secret.
	only := *p
	only.Secrets = nil
	for _, s := range p.Secrets {
		if s.Type == "kubernetes.io/tls" || strings.HasSuffix(s.Name, "-oidc") {
			only.Secrets = append(only.Secrets, s)
		}
	}
	if _, err := (&secrets.Manager{Client: cs}).Ensure(t.Context(), &only, nil); err != nil {
		t.Fatal(err)
	}
	tlsSecret, err := cs.CoreV1().Secrets(ns).Get(t.Context(), contract.TLSSecret("demo"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(tlsSecret.Data["tls.crt"], tlsSecret.Data["tls.key"])
	if err != nil {
		t.Fatal(err)
	}
	ref := contract.OIDCClientSecret(contract.ReleaseName("demo", "nextcloud"))
	clientSecret, err := cs.CoreV1().Secrets(ns).Get(t.Context(), ref.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	const issuer = "https://id.wp.example.org/realms/demo"
	files := "https://files.wp.example.org"
	client := storage.WebClient("nextcloud", string(clientSecret.Data[ref.Key]), files+"/apps/user_oidc/code")
	st := &logoutStorage{Storage: storage.NewStorageWithClients(storage.NewUserStore(issuer), map[string]*storage.Client{"nextcloud": client}),
		uris: []string{files + "/"}}
	prov, err := op.NewProvider(&op.Config{CryptoKey: sha256.Sum256([]byte("platzwart check cli test")), CodeMethodS256: true}, st, op.StaticIssuer(issuer))
	if err != nil {
		t.Fatal(err)
	}
	idp := http.StripPrefix("/realms/demo", prov)
	for path, name := range map[string]string{"/status.php": "nextcloud-status.json", "/login": "nextcloud-login-oidc.html"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "reconciler", "check", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		w.files[path], w.status[path] = b, http.StatusOK
	}
	w.server = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		switch {
		case host == "id.wp.example.org":
			idp.ServeHTTP(rw, r)
		case host == "files.wp.example.org" && r.URL.Path == "/apps/user_oidc/login/1":
			// user_oidc's hand-off to the provider (LoginController::login).
			q := url.Values{"client_id": {"nextcloud"}, "response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {files + "/apps/user_oidc/code"}}
			http.Redirect(rw, r, issuer+"/authorize?"+q.Encode(), http.StatusSeeOther)
		case host == "files.wp.example.org":
			w.mu.Lock()
			body, ok := w.files[r.URL.Path]
			code := w.status[r.URL.Path]
			w.mu.Unlock()
			if !ok {
				http.NotFound(rw, r)
				return
			}
			rw.WriteHeader(code)
			_, _ = rw.Write(body)
		default:
			http.NotFound(rw, r)
		}
	}))
	w.server.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	w.server.StartTLS()
	t.Cleanup(w.server.Close)
	return w
}

type logoutStorage struct {
	*storage.Storage
	uris []string
}

func (s *logoutStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return logoutURIs{Client: c, uris: s.uris}, nil
}

type logoutURIs struct {
	op.Client
	uris []string
}

func (c logoutURIs) PostLogoutRedirectURIs() []string { return c.uris }

func TestCheckCommand(t *testing.T) {
	if os.Getenv(checkMainEnv) == "1" {
		t.Skip("inside the platzwart process")
	}
	t.Parallel()
	w := newCheckWorkplace(t)
	base := []string{"check", w.dir, "--kubeconfig", w.kubeconfig, "-o", "json", "--timeout", "2s",
		"--address", w.server.Listener.Addr().String()}

	decode := func(t *testing.T, stdout string) map[string]check.Result {
		t.Helper()
		var reports []check.Report
		if err := json.Unmarshal([]byte(stdout), &reports); err != nil {
			t.Fatalf("stdout is not the JSON reports: %v\n%s", err, stdout)
		}
		if len(reports) != 1 {
			t.Fatalf("%d reports, want 1", len(reports))
		}
		out := map[string]check.Result{}
		for _, r := range reports[0].Checks {
			out[r.Name+" "+r.Target] = r
		}
		return out
	}

	t.Run("working", func(t *testing.T) {
		stdout, stderr, code, _ := runCheckProcess(t, base...)
		if code != 0 {
			t.Fatalf("exit status %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		results := decode(t, stdout)
		for _, key := range []string{"tls id.wp.example.org", "tls files.wp.example.org", "oidc-client nextcloud",
			"oidc-redirect-uri https://files.wp.example.org/apps/user_oidc/code", "oidc-logout-uri https://files.wp.example.org/",
			"app https://files.wp.example.org/status.php", "app https://files.wp.example.org/apps/user_oidc/login/1"} {
			if r, ok := results[key]; !ok || r.Status != check.Pass {
				t.Errorf("%s: %+v, want Pass", key, r)
			}
		}
		if !strings.Contains(stderr, "Pass tls") {
			t.Errorf("no progress on stderr:\n%s", stderr)
		}
	})

	t.Run("not installed", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join("..", "..", "reconciler", "check", "testdata", "nextcloud-status-not-installed.json"))
		if err != nil {
			t.Fatal(err)
		}
		w.mu.Lock()
		w.files["/status.php"] = b
		w.mu.Unlock()
		stdout, stderr, code, _ := runCheckProcess(t, base...)
		if code != 1 {
			t.Fatalf("exit status %d, want 1\nstderr:\n%s", code, stderr)
		}
		r := decode(t, stdout)["app https://files.wp.example.org/status.php"]
		if r.Status != check.Fail || r.Reason != check.ReasonUnexpectedBody || r.Fix == "" {
			t.Errorf("status.php: %+v, want a failure with a fix", r)
		}
		if !strings.Contains(stderr, "Error: 1 check(s) failed") {
			t.Errorf("stderr should end with the count of failures:\n%s", stderr)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := l.Addr().String()
		l.Close()
		args := append(append([]string{}, base[:len(base)-2]...), "--address", closed, "-o", "table")
		stdout, stderr, code, took := runCheckProcess(t, args...)
		if code != 1 {
			t.Fatalf("exit status %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		if !strings.Contains(stdout, "Unreachable") || !strings.Contains(stdout, "fix: ") {
			t.Errorf("the table should give the reason and a fix:\n%s", stdout)
		}
		if took > 30*time.Second {
			t.Errorf("took %s against an unreachable workplace", took)
		}
	})

	t.Run("bad flags", func(t *testing.T) {
		_, stderr, code, _ := runCheckProcess(t, "check", w.dir, "--resolve", "id.wp.example.org")
		if code != 1 || !strings.Contains(stderr, "--resolve") {
			t.Errorf("exit status %d, stderr %q: want 1 naming --resolve", code, stderr)
		}
	})
}
