package check

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/contract"
	"github.com/platzwart/platzwart/reconciler/secrets"
)

// bbbServerSecret is the Secret of the server's shared secret in the test workplace.
const bbbServerSecret = "demo-bigbluebutton-server"

// newBBBWorkplace plans a workplace with video: bigbluebutton and no servers (the
// server in the cluster), and generates in a new namespace the Secrets the checks
// read: the certificate, the OIDC client secrets and the server's shared secret. It
// returns the workplace and the shared secret.
func newBBBWorkplace(t *testing.T) (*workplace, string) {
	t.Helper()
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	doc := `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: demo, namespace: ` + ns + `}
spec:
  domain: ` + testDomain + `
  profile: minikube
  components: {video: bigbluebutton}
`
	w, cs := workplaceFrom(t, c, t.TempDir(), ns, "demo", doc)
	server := *w.plan
	server.Secrets = nil
	for _, s := range w.plan.Secrets {
		if s.Name == bbbServerSecret {
			server.Secrets = append(server.Secrets, s)
		}
	}
	if len(server.Secrets) != 1 {
		t.Fatalf("the plan generates no Secret %s", bbbServerSecret)
	}
	if _, err := (&secrets.Manager{Client: cs}).Ensure(t.Context(), &server, nil); err != nil {
		t.Fatal(err)
	}
	reader := KubeSecrets{Reader: w.reader}
	data, err := reader.SecretData(t.Context(), ns, bbbServerSecret)
	if err != nil {
		t.Fatal(err)
	}
	secret := string(data["shared-secret"])
	if len(secret) != 64 {
		t.Fatalf("shared secret of %d characters, want the 64 hex digits component.yaml asks for", len(secret))
	}
	return w, secret
}

// bbbWeb answers the BigBlueButton API as bbb-web does for securitySalt secret: the
// checksum is sha1 (40 hex digits) or sha256 (64) of the call's name, the query string
// without its checksum parameter and the secret
// (bbb-common-web/src/main/java/org/bigbluebutton/api/model/validator/GetChecksumValidator.java);
// a mismatch answers FAILED with messageKey checksumError, HTTP 200. calls counts the
// requests.
func bbbWeb(secret string, calls *int) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		*calls++
		call := strings.TrimPrefix(r.URL.Path, "/bigbluebutton/api/")
		var kept []string
		checksum := ""
		for _, kv := range strings.Split(r.URL.RawQuery, "&") {
			if v, ok := strings.CutPrefix(kv, "checksum="); ok {
				checksum = v
				continue
			}
			if kv != "" {
				kept = append(kept, kv)
			}
		}
		data := call + strings.Join(kept, "&") + secret
		var want string
		if len(checksum) == 64 {
			s := sha256.Sum256([]byte(data))
			want = hex.EncodeToString(s[:])
		} else {
			s := sha1.Sum([]byte(data))
			want = hex.EncodeToString(s[:])
		}
		rw.Header().Set("Content-Type", "text/xml")
		if checksum == "" || checksum != want {
			_, _ = rw.Write([]byte(`<response><returncode>FAILED</returncode><messageKey>checksumError</messageKey><message>Checksums do not match</message></response>`))
			return
		}
		_, _ = rw.Write([]byte(`<response><returncode>SUCCESS</returncode><meetings><meeting><meetingID>room-1</meetingID></meeting></meetings></response>`))
	}
}

// serveBBB is serve with the BigBlueButton API of the meet host answered by handler.
func serveBBB(t *testing.T, w *workplace, handler http.Handler) *ingress {
	t.Helper()
	in := serve(t, w, provider{}, nil)
	apps := in.server.Config.Handler
	in.server.Config.Handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Host, "meet."+testDomain) && strings.HasPrefix(r.URL.Path, "/bigbluebutton/api/") {
			handler.ServeHTTP(rw, r)
			return
		}
		apps.ServeHTTP(rw, r)
	})
	return in
}

// TestBBBChecksum: the checksum is sha256 of call name, query string and secret, as
// computed outside Go (printf '<call><query><secret>' | sha256sum).
func TestBBBChecksum(t *testing.T) {
	for _, c := range []struct{ call, query, secret, want string }{
		{"getMeetings", "", "secret", "433f7e299bfebb264ee4ac11afeaf2e83475b7bbf38ce7913aa675576bc61ea5"},
		{"getMeetings", "meetingID=abc%20def", "secret", "f2984a9fedaa81391608a0a2b973cb36ddea008d98791a87e958750355bda021"},
	} {
		if got := bbbChecksum(c.call, c.query, c.secret); got != c.want {
			t.Errorf("bbbChecksum(%q, %q, …) = %s, want %s", c.call, c.query, got, c.want)
		}
	}
}

// TestBBBServerAPI: the check calls getMeetings on the server in the cluster with the
// checksum of the shared secret generated for it, and passes only when the server
// holds the same secret; the checksum (a function of the secret) is not reported.
func TestBBBServerAPI(t *testing.T) {
	t.Parallel()
	w, secret := newBBBWorkplace(t)
	target := "https://meet." + testDomain + "/bigbluebutton/api/getMeetings"

	t.Run("same secret", func(t *testing.T) {
		calls := 0
		in := serveBBB(t, w, bbbWeb(secret, &calls))
		rep := run(t, w, in.options(w), 10*time.Second)
		r := want(t, rep, CheckApp, target, Pass, "")
		if !strings.Contains(r.Message, "1 meetings running") {
			t.Errorf("message %q does not count the running meeting", r.Message)
		}
		if calls != 1 {
			t.Errorf("%d API calls, want 1", calls)
		}
		for _, c := range rep.Checks {
			if strings.Contains(c.Target+c.Message+c.Fix, "checksum=") || strings.Contains(c.Message, secret) {
				t.Errorf("a result shows the checksum or the secret: %+v", c)
			}
		}
	})
	t.Run("another secret", func(t *testing.T) {
		calls := 0
		in := serveBBB(t, w, bbbWeb(strings.Repeat("0", 64), &calls))
		rep := run(t, w, in.options(w), 10*time.Second)
		want(t, rep, CheckApp, target, Fail, ReasonUnexpectedBody)
		if got := failures(rep); len(got) != 1 {
			t.Errorf("failures %v, want only the API check", got)
		}
	})
	t.Run("no server", func(t *testing.T) {
		// The route answers but the server pod is not there: the ingress's 503.
		in := serveBBB(t, w, http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
			http.Error(rw, "503 Service Temporarily Unavailable", http.StatusServiceUnavailable)
		}))
		rep := run(t, w, in.options(w), 10*time.Second)
		want(t, rep, CheckApp, target, Fail, ReasonUnexpectedStatus)
	})
	t.Run("no cluster access", func(t *testing.T) {
		calls := 0
		in := serveBBB(t, w, bbbWeb(secret, &calls))
		opts := in.options(w)
		ca, err := opts.Secrets.SecretData(t.Context(), w.plan.Namespace, contract.TLSSecret("demo"))
		if err != nil {
			t.Fatal(err)
		}
		opts.Secrets, opts.CA = nil, ca["ca.crt"] // as with --ca-file
		rep := run(t, w, opts, 10*time.Second)
		want(t, rep, CheckApp, target, Skip, ReasonNotApplicable)
		if calls != 0 {
			t.Errorf("%d API calls without the secret, want none", calls)
		}
	})
}

// TestBBBExternalServerNotProbed: with an existing server (values servers), the
// check does not call its API: its Secret and reachability are the operator's.
func TestBBBExternalServerNotProbed(t *testing.T) {
	t.Parallel()
	w := newWorkplace(t, "demo", "bigbluebutton")
	in := serve(t, w, provider{}, nil)
	rep := run(t, w, in.options(w), 10*time.Second)
	for _, c := range rep.Checks {
		if strings.Contains(c.Target, "/api/getMeetings") {
			t.Errorf("external server probed: %+v", c)
		}
	}
}
