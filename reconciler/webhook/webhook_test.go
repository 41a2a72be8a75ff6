package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testSecret = "s3cr3t-webhook-token-Zq81"

// Payload fragments that must never reach a log line.
const (
	commitMessage = "fix: rotate the keycloak admin password"
	authorEmail   = "anna.beispiel@rathaus.example"
)

const (
	mainSHA  = "bffeb74224043ba2feb48d137756c8a9331c449a"
	zeroSHA1 = "0000000000000000000000000000000000000000"
)

// pushJSON is a push payload in the shape all four providers share (ref, before,
// after, commits), with a commit message and e-mail address to look for in logs.
func pushJSON(ref, after string) string {
	return `{"object_kind":"push","event_name":"push","ref":"` + ref + `",` +
		`"before":"28e1879d029cb852e4844d9c718537df08844e03","after":"` + after + `",` +
		`"commits":[{"id":"` + after + `","message":"` + commitMessage + `",` +
		`"author":{"name":"Anna Beispiel","email":"` + authorEmail + `"}}],` +
		`"repository":{"full_name":"rathaus/workplace"}}`
}

func hmacHex(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

// signed returns the headers a provider sends for event with body, signed with secret.
func signed(provider, event, secret, body string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	switch provider {
	case ProviderGitHub:
		h.Set("X-GitHub-Event", event)
		h.Set("X-GitHub-Delivery", "gh-1")
		h.Set("X-Hub-Signature-256", "sha256="+hmacHex(secret, body))
	case ProviderGitea:
		// As Gitea sends them: its own headers and GitHub-compatible ones.
		h.Set("X-Gitea-Event", event)
		h.Set("X-Gitea-Delivery", "gt-1")
		h.Set("X-GitHub-Event", event)
		h.Set("X-Gitea-Signature", hmacHex(secret, body))
		h.Set("X-Hub-Signature-256", "sha256="+hmacHex(secret, body))
	case ProviderForgejo:
		h.Set("X-Forgejo-Event", event)
		h.Set("X-Forgejo-Delivery", "fj-1")
		h.Set("X-Gitea-Event", event)
		h.Set("X-GitHub-Event", event)
		h.Set("X-Forgejo-Signature", hmacHex(secret, body))
		h.Set("X-Gitea-Signature", hmacHex(secret, body))
	case ProviderGitLab:
		h.Set("X-Gitlab-Event", event)
		h.Set("X-Gitlab-Event-UUID", "gl-1")
		h.Set("X-Gitlab-Token", secret)
	}
	return h
}

func pushEvent(provider string) string {
	if provider == ProviderGitLab {
		return "Push Hook"
	}
	return "push"
}

type harness struct {
	recv   *Receiver
	logs   *bytes.Buffer
	mu     sync.Mutex
	events []Event
}

func newHarness(t testing.TB, refs ...string) *harness {
	t.Helper()
	h := &harness{logs: &bytes.Buffer{}}
	logger := slog.New(slog.NewJSONHandler(lockedWriter{w: h.logs, mu: &h.mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r, err := New(Config{
		Secret: []byte(testSecret),
		Logger: logger,
		Refs:   refs,
		Trigger: func(e Event) {
			h.mu.Lock()
			h.events = append(h.events, e)
			h.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.recv = r
	return h
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (h *harness) do(method string, hdr http.Header, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/hook/demo", strings.NewReader(body))
	for k, v := range hdr {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.recv.ServeHTTP(rec, req)
	return rec
}

func (h *harness) triggered() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.events...)
}

var providers = []string{ProviderGitHub, ProviderGitLab, ProviderGitea, ProviderForgejo}

func TestPushPerProvider(t *testing.T) {
	for _, p := range providers {
		t.Run(p, func(t *testing.T) {
			h := newHarness(t)
			body := pushJSON("refs/heads/main", mainSHA)
			before := time.Now()
			rec := h.do(http.MethodPost, signed(p, pushEvent(p), testSecret, body), body)
			if rec.Code != http.StatusAccepted {
				t.Fatalf("status %d, want 202; body %q", rec.Code, rec.Body)
			}
			evs := h.triggered()
			if len(evs) != 1 {
				t.Fatalf("trigger fired %d times, want 1", len(evs))
			}
			ev := evs[0]
			if ev.Provider != p || ev.Ref != "refs/heads/main" || ev.Commit != mainSHA || ev.Deleted {
				t.Errorf("event %+v", ev)
			}
			if ev.Delivery == "" {
				t.Errorf("no delivery id in %+v", ev)
			}
			if ev.Received.Before(before) || ev.Received.After(time.Now()) {
				t.Errorf("received %v outside the request", ev.Received)
			}
		})
	}
}

func TestTagPush(t *testing.T) {
	for _, p := range providers {
		h := newHarness(t)
		body := pushJSON("refs/tags/v1.2.0", mainSHA)
		event := "push"
		if p == ProviderGitLab {
			event = "Tag Push Hook"
		}
		if rec := h.do(http.MethodPost, signed(p, event, testSecret, body), body); rec.Code != http.StatusAccepted {
			t.Errorf("%s: status %d, want 202", p, rec.Code)
		}
		if evs := h.triggered(); len(evs) != 1 || evs[0].Ref != "refs/tags/v1.2.0" {
			t.Errorf("%s: events %+v", p, evs)
		}
	}
}

func TestRejected(t *testing.T) {
	body := pushJSON("refs/heads/main", mainSHA)
	type tc struct {
		name string
		hdr  http.Header
		want int
	}
	var cases []tc
	for _, p := range providers {
		cases = append(cases,
			tc{p + "/wrong secret", signed(p, pushEvent(p), "not-the-secret", body), http.StatusUnauthorized},
			tc{p + "/secret prefix", signed(p, pushEvent(p), testSecret[:len(testSecret)-1], body), http.StatusUnauthorized},
		)
		// Signed over another body.
		other := signed(p, pushEvent(p), testSecret, body+" ")
		if p != ProviderGitLab {
			cases = append(cases, tc{p + "/other body", other, http.StatusUnauthorized})
		}
	}
	missing := signed(ProviderGitHub, "push", testSecret, body)
	missing.Del("X-Hub-Signature-256")
	sha1Only := missing.Clone()
	sha1Only.Set("X-Hub-Signature", "sha1=0123456789abcdef0123456789abcdef01234567")
	noPrefix := signed(ProviderGitHub, "push", testSecret, body)
	noPrefix.Set("X-Hub-Signature-256", hmacHex(testSecret, body))
	notHex := signed(ProviderGitea, "push", testSecret, body)
	notHex.Set("X-Gitea-Signature", "zz"+hmacHex(testSecret, body)[2:])
	short := signed(ProviderGitea, "push", testSecret, body)
	short.Set("X-Gitea-Signature", hmacHex(testSecret, body)[:32])
	emptyToken := signed(ProviderGitLab, "Push Hook", testSecret, body)
	emptyToken.Set("X-Gitlab-Token", "")
	// Forgejo: a wrong Forgejo signature is not rescued by a right Gitea one.
	noRescue := signed(ProviderForgejo, "push", testSecret, body)
	noRescue.Set("X-Forgejo-Signature", hmacHex("not-the-secret", body))
	// A GitLab token does not authenticate a GitHub-style request.
	mixed := signed(ProviderGitHub, "push", testSecret, body)
	mixed.Set("X-Hub-Signature-256", "sha256="+hmacHex("not-the-secret", body))
	mixed.Set("X-Gitlab-Token", testSecret)
	cases = append(cases,
		tc{"missing signature", missing, http.StatusUnauthorized},
		tc{"sha1 only", sha1Only, http.StatusUnauthorized},
		tc{"github without sha256= prefix", noPrefix, http.StatusUnauthorized},
		tc{"gitea not hex", notHex, http.StatusUnauthorized},
		tc{"gitea short", short, http.StatusUnauthorized},
		tc{"gitlab empty token", emptyToken, http.StatusUnauthorized},
		tc{"forgejo no rescue by gitea header", noRescue, http.StatusUnauthorized},
		tc{"github no rescue by gitlab header", mixed, http.StatusUnauthorized},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			rec := h.do(http.MethodPost, c.hdr, body)
			if rec.Code != c.want {
				t.Errorf("status %d, want %d", rec.Code, c.want)
			}
			if n := len(h.triggered()); n != 0 {
				t.Errorf("trigger fired %d times", n)
			}
			if !strings.Contains(h.logs.String(), `"msg":"webhook rejected"`) {
				t.Errorf("rejection not logged: %s", h.logs)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	body := pushJSON("refs/heads/main", mainSHA)
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodHead, http.MethodDelete} {
		h := newHarness(t)
		rec := h.do(m, signed(ProviderGitHub, "push", testSecret, body), body)
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != http.MethodPost {
			t.Errorf("%s: status %d, Allow %q", m, rec.Code, rec.Header().Get("Allow"))
		}
		if len(h.triggered()) != 0 {
			t.Errorf("%s triggered", m)
		}
	}
}

func TestOversizeBody(t *testing.T) {
	big := `{"ref":"refs/heads/main","after":"` + mainSHA + `","pad":"` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}`
	for _, p := range providers {
		for _, chunked := range []bool{false, true} {
			h := newHarness(t)
			req := httptest.NewRequest(http.MethodPost, "/hook/demo", strings.NewReader(big))
			for k, v := range signed(p, pushEvent(p), testSecret, big) {
				req.Header[k] = v
			}
			if chunked {
				req.ContentLength = -1 // the length is not announced: the reader must stop it
				req.Body = io.NopCloser(strings.NewReader(big))
			}
			rec := httptest.NewRecorder()
			h.recv.ServeHTTP(rec, req)
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Errorf("%s chunked=%v: status %d, want 413", p, chunked, rec.Code)
			}
			if len(h.triggered()) != 0 {
				t.Errorf("%s chunked=%v: triggered", p, chunked)
			}
		}
	}
	// A body exactly at the limit is read.
	h := newHarness(t)
	body := pushJSON("refs/heads/main", mainSHA)
	body += strings.Repeat(" ", DefaultMaxBodyBytes-len(body))
	if rec := h.do(http.MethodPost, signed(ProviderGitHub, "push", testSecret, body), body); rec.Code != http.StatusAccepted {
		t.Errorf("body at the limit: status %d, want 202", rec.Code)
	}
}

func TestBodyLimitConfigurable(t *testing.T) {
	var n atomic.Int32
	r, err := New(Config{Secret: []byte(testSecret), Trigger: func(Event) { n.Add(1) }, MaxBodyBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	body := pushJSON("refs/heads/main", mainSHA)
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	for k, v := range signed(ProviderGitLab, "Push Hook", testSecret, body) {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || n.Load() != 0 {
		t.Errorf("status %d, triggers %d", rec.Code, n.Load())
	}
}

func TestPingAndOtherEvents(t *testing.T) {
	ping := `{"zen":"Keep it logically awesome.","hook_id":1}`
	cases := []struct {
		name, provider, event, body string
		want                        int
	}{
		{"github ping", ProviderGitHub, "ping", ping, http.StatusOK},
		{"github issues", ProviderGitHub, "issues", `{"action":"opened"}`, http.StatusOK},
		{"github pull_request", ProviderGitHub, "pull_request", `{"action":"opened"}`, http.StatusOK},
		{"gitlab merge request", ProviderGitLab, "Merge Request Hook", `{"object_kind":"merge_request"}`, http.StatusOK},
		{"gitlab pipeline", ProviderGitLab, "Pipeline Hook", `{"object_kind":"pipeline"}`, http.StatusOK},
		{"gitlab system hook, not a push", ProviderGitLab, "System Hook", `{"event_name":"project_create"}`, http.StatusOK},
		{"gitea create", ProviderGitea, "create", `{"ref":"main"}`, http.StatusOK},
		{"forgejo pull_request", ProviderForgejo, "pull_request", `{"action":"opened"}`, http.StatusOK},
		{"gitea ping is not a push", ProviderGitea, "ping", ping, http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			rec := h.do(http.MethodPost, signed(c.provider, c.event, testSecret, c.body), c.body)
			if rec.Code != c.want {
				t.Errorf("status %d, want %d", rec.Code, c.want)
			}
			if n := len(h.triggered()); n != 0 {
				t.Errorf("trigger fired %d times", n)
			}
		})
	}
	// A ping with a wrong signature is still refused.
	h := newHarness(t)
	if rec := h.do(http.MethodPost, signed(ProviderGitHub, "ping", "not-the-secret", ping), ping); rec.Code != http.StatusUnauthorized {
		t.Errorf("unsigned ping: status %d, want 401", rec.Code)
	}
}

func TestMissingEventHeader(t *testing.T) {
	body := pushJSON("refs/heads/main", mainSHA)
	for _, p := range providers {
		hdr := signed(p, pushEvent(p), testSecret, body)
		for _, n := range []string{"X-GitHub-Event", "X-Gitea-Event", "X-Forgejo-Event", "X-Gitlab-Event"} {
			hdr.Del(n)
		}
		h := newHarness(t)
		if rec := h.do(http.MethodPost, hdr, body); rec.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", p, rec.Code)
		}
		if len(h.triggered()) != 0 {
			t.Errorf("%s: triggered", p)
		}
	}
}

func TestGitLabSystemHookPush(t *testing.T) {
	h := newHarness(t)
	body := pushJSON("refs/heads/main", mainSHA)
	if rec := h.do(http.MethodPost, signed(ProviderGitLab, "System Hook", testSecret, body), body); rec.Code != http.StatusAccepted {
		t.Fatalf("status %d, want 202", rec.Code)
	}
	if evs := h.triggered(); len(evs) != 1 || evs[0].Commit != mainSHA {
		t.Errorf("events %+v", evs)
	}
}

func TestRefFilter(t *testing.T) {
	h := newHarness(t, "refs/heads/main", "refs/tags/stable")
	for _, c := range []struct {
		ref  string
		want int
	}{
		{"refs/heads/main", http.StatusAccepted},
		{"refs/tags/stable", http.StatusAccepted},
		{"refs/heads/feature", http.StatusOK},
		{"refs/heads/main-old", http.StatusOK},
		{"refs/tags/v1", http.StatusOK},
	} {
		body := pushJSON(c.ref, mainSHA)
		if rec := h.do(http.MethodPost, signed(ProviderGitLab, "Push Hook", testSecret, body), body); rec.Code != c.want {
			t.Errorf("%s: status %d, want %d", c.ref, rec.Code, c.want)
		}
	}
	evs := h.triggered()
	if len(evs) != 2 || evs[0].Ref != "refs/heads/main" || evs[1].Ref != "refs/tags/stable" {
		t.Errorf("events %+v", evs)
	}

	// An unreadable payload, correctly signed, still triggers: the ref is unknown.
	h = newHarness(t, "refs/heads/main")
	for _, body := range []string{`not json`, `{"ref":1}`, ``} {
		if rec := h.do(http.MethodPost, signed(ProviderGitHub, "push", testSecret, body), body); rec.Code != http.StatusAccepted {
			t.Errorf("payload %q: status %d, want 202", body, rec.Code)
		}
	}
	for _, ev := range h.triggered() {
		if ev.Ref != "" || ev.Commit != "" {
			t.Errorf("event from an unreadable payload %+v", ev)
		}
	}
	if n := len(h.triggered()); n != 3 {
		t.Errorf("%d triggers, want 3", n)
	}
}

func TestDeletedRef(t *testing.T) {
	for _, after := range []string{zeroSHA1, strings.Repeat("0", 64)} {
		h := newHarness(t)
		body := pushJSON("refs/heads/main", after)
		if rec := h.do(http.MethodPost, signed(ProviderGitHub, "push", testSecret, body), body); rec.Code != http.StatusAccepted {
			t.Fatalf("status %d", rec.Code)
		}
		if evs := h.triggered(); len(evs) != 1 || !evs[0].Deleted || evs[0].Commit != "" {
			t.Errorf("events %+v", evs)
		}
	}
}

func TestFormEncodedPayload(t *testing.T) {
	h := newHarness(t)
	body := url.Values{"payload": {pushJSON("refs/heads/main", mainSHA)}}.Encode()
	hdr := signed(ProviderGitHub, "push", testSecret, body)
	hdr.Set("Content-Type", "application/x-www-form-urlencoded")
	if rec := h.do(http.MethodPost, hdr, body); rec.Code != http.StatusAccepted {
		t.Fatalf("status %d", rec.Code)
	}
	if evs := h.triggered(); len(evs) != 1 || evs[0].Ref != "refs/heads/main" || evs[0].Commit != mainSHA {
		t.Errorf("events %+v", evs)
	}
}

func TestProviderPrecedence(t *testing.T) {
	body := pushJSON("refs/heads/main", mainSHA)
	// Gitea also sends X-Hub-Signature-256 and X-GitHub-Event; Forgejo also sends the
	// Gitea headers. The provider is the most specific one.
	for _, p := range []string{ProviderGitea, ProviderForgejo} {
		h := newHarness(t)
		h.do(http.MethodPost, signed(p, "push", testSecret, body), body)
		if evs := h.triggered(); len(evs) != 1 || evs[0].Provider != p {
			t.Errorf("%s: events %+v", p, evs)
		}
	}
}

// TestTriggerOncePerPush sends many pushes concurrently: each is one trigger call.
func TestTriggerOncePerPush(t *testing.T) {
	h := newHarness(t)
	srv := httptest.NewServer(h.recv)
	defer srv.Close()
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			p := providers[i%len(providers)]
			body := pushJSON("refs/heads/main", mainSHA)
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/hook/demo", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header = signed(p, pushEvent(p), testSecret, body)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Errorf("status %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if got := len(h.triggered()); got != n {
		t.Errorf("%d triggers for %d pushes", got, n)
	}
}

// TestLogsCarryNoPayloadOrSecret runs every kind of request and checks that the log
// never contains the secret, a presented signature or token, or payload content.
func TestLogsCarryNoPayloadOrSecret(t *testing.T) {
	h := newHarness(t, "refs/heads/main")
	body := pushJSON("refs/heads/main", mainSHA)
	other := pushJSON("refs/heads/feature", mainSHA)
	wrongToken := "almost-" + testSecret
	var presented []string
	send := func(hdr http.Header, b string) {
		for _, k := range []string{"X-Hub-Signature-256", "X-Gitea-Signature", "X-Forgejo-Signature", "X-Gitlab-Token"} {
			if v := hdr.Get(k); v != "" {
				presented = append(presented, strings.TrimPrefix(v, "sha256="))
			}
		}
		h.do(http.MethodPost, hdr, b)
	}
	for _, p := range providers {
		send(signed(p, pushEvent(p), testSecret, body), body)
		send(signed(p, pushEvent(p), testSecret, other), other)
		send(signed(p, pushEvent(p), wrongToken, body), body)
		send(signed(p, "Note Hook", testSecret, body), body)
	}
	send(signed(ProviderGitHub, "push", testSecret, "not json "+commitMessage), "not json "+commitMessage)
	logs := h.logs.String()
	if logs == "" {
		t.Fatal("nothing logged")
	}
	forbidden := append([]string{testSecret, wrongToken, commitMessage, authorEmail, "Anna Beispiel", "rathaus/workplace"}, presented...)
	for _, s := range forbidden {
		if strings.Contains(logs, s) {
			t.Errorf("log contains %q:\n%s", s, logs)
		}
	}
	for _, want := range []string{`"msg":"webhook push"`, `"msg":"webhook rejected"`, `"reason":"wrong token"`, `"reason":"wrong signature"`, `"ref":"refs/heads/main"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
}

func TestNewValidates(t *testing.T) {
	trigger := func(Event) {}
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"empty secret", Config{Trigger: trigger}},
		{"no trigger", Config{Secret: []byte("x")}},
		{"short ref", Config{Secret: []byte("x"), Trigger: trigger, Refs: []string{"main"}}},
		{"negative limit", Config{Secret: []byte("x"), Trigger: trigger, MaxBodyBytes: -1}},
	} {
		if _, err := New(c.cfg); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	// The receiver keeps its own copy of the secret.
	secret := []byte(testSecret)
	var n atomic.Int32
	r, err := New(Config{Secret: secret, Trigger: func(Event) { n.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	copy(secret, "XXXX")
	body := pushJSON("refs/heads/main", mainSHA)
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req.Header = signed(ProviderGitHub, "push", testSecret, body)
	r.ServeHTTP(httptest.NewRecorder(), req)
	if n.Load() != 1 {
		t.Error("secret changed through the caller's slice")
	}
}
