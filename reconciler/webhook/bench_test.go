package webhook

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// benchPayload is a push of a few kilobytes, the size of a typical one-commit push.
func benchPayload() string {
	p := pushJSON("refs/heads/main", mainSHA)
	return p[:len(p)-1] + `,"padding":"` + strings.Repeat("x", 4096) + `"}`
}

// BenchmarkWebhookToTrigger measures the time from receipt of a push to the trigger
// callback. "inprocess" calls ServeHTTP directly (verification, parsing, trigger);
// "loopback" goes through a real HTTP server on 127.0.0.1, timed from the client's
// send. trigger-ns is the mean latency from receipt (inprocess: Event.Received;
// loopback: before the client sends) to the callback.
func BenchmarkWebhookToTrigger(b *testing.B) {
	body := benchPayload()
	for _, p := range providers {
		b.Run("inprocess/"+p, func(b *testing.B) {
			var total time.Duration
			r, err := New(Config{Secret: []byte(testSecret), Trigger: func(e Event) { total += time.Since(e.Received) }})
			if err != nil {
				b.Fatal(err)
			}
			hdr := signed(p, pushEvent(p), testSecret, body)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/hook/demo", strings.NewReader(body))
				req.Header = hdr
				rec := httptest.NewRecorder()
				r.ServeHTTP(rec, req)
				if rec.Code != http.StatusAccepted {
					b.Fatalf("status %d", rec.Code)
				}
			}
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "trigger-ns")
		})
	}
	b.Run("loopback/github", func(b *testing.B) {
		fired := make(chan time.Time, 1)
		r, err := New(Config{Secret: []byte(testSecret), Trigger: func(Event) { fired <- time.Now() }})
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(r)
		defer srv.Close()
		client := srv.Client()
		hdr := signed(ProviderGitHub, "push", testSecret, body)
		var total time.Duration
		for b.Loop() {
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/hook/demo", strings.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			req.Header = hdr.Clone()
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			total += (<-fired).Sub(start)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
		b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "trigger-ns")
	})
}
