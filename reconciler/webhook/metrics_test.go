package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// receipts gathers the receipts counter as "result/reason" → value.
func receipts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != MetricReceipts {
			t.Errorf("unexpected family %s", f.GetName())
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if len(l) != 2 {
				t.Errorf("labels %v, want result and reason", l)
			}
			out[l["result"]+"/"+l["reason"]] = m.GetCounter().GetValue()
		}
	}
	return out
}

type failingBody struct{}

func (failingBody) Read([]byte) (int, error) { return 0, errors.New("connection reset") }
func (failingBody) Close() error             { return nil }

// TestMetricsCountEveryOutcome sends one delivery of each kind and checks that each is
// counted once, under its result and reason, and that every series existed at 0 before.
func TestMetricsCountEveryOutcome(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	before := receipts(t, reg)
	n := 0
	for result, reasons := range Outcomes() {
		for _, reason := range reasons {
			n++
			if v, ok := before[string(result)+"/"+string(reason)]; !ok || v != 0 {
				t.Errorf("%s/%s before any delivery: %v (present %v), want 0", result, reason, v, ok)
			}
		}
	}
	if len(before) != n {
		t.Errorf("%d series before any delivery, want %d", len(before), n)
	}

	r, err := New(Config{Secret: []byte(testSecret), Trigger: func(Event) {}, Refs: []string{"refs/heads/main"}, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	body := pushJSON("refs/heads/main", mainSHA)
	other := pushJSON("refs/heads/feature", mainSHA)
	noSig := signed(ProviderGitHub, "push", testSecret, body)
	noSig.Del("X-Hub-Signature-256")
	malformed := signed(ProviderGitHub, "push", testSecret, body)
	malformed.Set("X-Hub-Signature-256", "sha256=zz")
	noEvent := signed(ProviderGitHub, "push", testSecret, body)
	noEvent.Del("X-GitHub-Event")
	big := strings.Repeat("x", DefaultMaxBodyBytes+1)
	cases := []struct {
		name   string
		method string
		hdr    http.Header
		body   string
		unread bool
		code   int
		want   string
	}{
		{"push", http.MethodPost, signed(ProviderGitHub, "push", testSecret, body), body, false, http.StatusAccepted, "accepted/push"},
		{"ping", http.MethodPost, signed(ProviderGitHub, "ping", testSecret, `{}`), `{}`, false, http.StatusOK, "ignored/ping"},
		{"issue", http.MethodPost, signed(ProviderGitLab, "Issue Hook", testSecret, body), body, false, http.StatusOK, "ignored/not_push"},
		{"other ref", http.MethodPost, signed(ProviderGitea, "push", testSecret, other), other, false, http.StatusOK, "ignored/ref_not_watched"},
		{"GET", http.MethodGet, signed(ProviderGitHub, "push", testSecret, body), body, false, http.StatusMethodNotAllowed, "rejected/method_not_allowed"},
		{"no signature", http.MethodPost, noSig, body, false, http.StatusUnauthorized, "rejected/no_signature"},
		{"wrong token", http.MethodPost, signed(ProviderGitLab, "Push Hook", "wrong", body), body, false, http.StatusUnauthorized, "rejected/wrong_secret"},
		{"wrong hmac", http.MethodPost, signed(ProviderForgejo, "push", "wrong", body), body, false, http.StatusUnauthorized, "rejected/wrong_secret"},
		{"malformed", http.MethodPost, malformed, body, false, http.StatusUnauthorized, "rejected/malformed_signature"},
		{"too large", http.MethodPost, signed(ProviderGitHub, "push", testSecret, big), big, false, http.StatusRequestEntityTooLarge, "rejected/body_too_large"},
		{"unreadable", http.MethodPost, signed(ProviderGitHub, "push", testSecret, body), "", true, http.StatusBadRequest, "rejected/body_unreadable"},
		{"no event", http.MethodPost, noEvent, body, false, http.StatusBadRequest, "rejected/no_event_header"},
	}
	want := map[string]float64{}
	for k := range before {
		want[k] = 0
	}
	for _, c := range cases {
		req := httptest.NewRequest(c.method, "/hook", strings.NewReader(c.body))
		if c.unread {
			req.Body, req.ContentLength = failingBody{}, -1
		}
		for k, v := range c.hdr {
			req.Header[k] = v
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if rec.Code != c.code {
			t.Errorf("%s: status %d, want %d", c.name, rec.Code, c.code)
		}
		want[c.want]++
	}
	got := receipts(t, reg)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		keys := make([]string, 0, len(want))
		for k := range want {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if got[k] != want[k] {
				t.Errorf("%s = %v, want %v", k, got[k], want[k])
			}
		}
		if len(got) != len(want) {
			t.Errorf("series %v, want %v", got, want)
		}
	}
}

func TestNewMetricsValidates(t *testing.T) {
	if _, err := NewMetrics(nil); err == nil {
		t.Error("nil registerer accepted")
	}
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
	var m *Metrics
	m.observe(ResultAccepted, ReasonPush) // a nil Metrics discards
}
