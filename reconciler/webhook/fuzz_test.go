package webhook

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzReceiver feeds arbitrary bodies, event names and content types, correctly signed
// or not: the receiver must not panic, must answer with one of its documented codes,
// and must trigger exactly when it answers 202, and never without a valid signature.
func FuzzReceiver(f *testing.F) {
	f.Add([]byte(pushJSON("refs/heads/main", mainSHA)), "push", "application/json", true)
	f.Add([]byte(`payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%7D`), "push", "application/x-www-form-urlencoded", true)
	f.Add([]byte(`{"ref":null,"after":["x"]}`), "push", "application/json; charset=utf-8", true)
	f.Add([]byte(`{}`), "ping", "", false)
	f.Add([]byte(``), "", "text/plain", true)
	f.Fuzz(func(t *testing.T, body []byte, event, contentType string, sign bool) {
		n := 0
		r, err := New(Config{Secret: []byte(testSecret), Refs: []string{"refs/heads/main"}, Trigger: func(Event) { n++ }, MaxBodyBytes: 4096})
		if err != nil {
			t.Fatal(err)
		}
		secret := testSecret
		if !sign {
			secret = "not-the-secret"
		}
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", contentType)
		if event != "" {
			req.Header.Set("X-GitHub-Event", event)
		}
		req.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex(secret, string(body)))
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusAccepted, http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d", rec.Code)
		}
		if (rec.Code == http.StatusAccepted) != (n == 1) || n > 1 {
			t.Fatalf("status %d with %d triggers", rec.Code, n)
		}
		if !sign && n != 0 {
			t.Fatal("triggered without a valid signature")
		}
	})
}
