package source_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/platzwart/platzwart/reconciler/source"
)

// fetchCounts gathers the fetch counter and duration histogram by result.
func fetchCounts(t *testing.T, reg *prometheus.Registry) (counts map[string]float64, observed map[string]uint64) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts, observed = map[string]float64{}, map[string]uint64{}
	result := func(m *dto.Metric) string {
		for _, l := range m.GetLabel() {
			if l.GetName() == "result" {
				return l.GetValue()
			}
		}
		t.Fatalf("series without a result label: %v", m.GetLabel())
		return ""
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case source.MetricFetches:
				counts[result(m)] = m.GetCounter().GetValue()
			case source.MetricFetchDuration:
				observed[result(m)] = m.GetHistogram().GetSampleCount()
			default:
				t.Errorf("unexpected family %s", f.GetName())
			}
		}
	}
	return counts, observed
}

// TestMetricsClassifyRealFetches fetches from a real Git server over HTTPS: a new
// revision, the same revision again, a commit whose signature does not verify, and the
// server gone; each lands in its own result series.
func TestMetricsClassifyRealFetches(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := source.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	counts, _ := fetchCounts(t, reg)
	if fmt.Sprint(counts) != "map[failure:0 success:0 unchanged:0 unverified:0]" {
		t.Errorf("before any fetch: %v, want every result at 0", counts)
	}

	trusted, ring := openPGPKey(t, "trusted")
	r := newRepo(t)
	signed := r.commit("signed", v1Files, trusted)
	srv := serveHTTPS(t, r)
	opts := httpsOptions(srv, source.Ref{Branch: "main"}, t.TempDir())
	opts.Verify = &source.Verification{Mode: source.VerifyOpenPGP, Keys: [][]byte{ring}}
	observe := func(last string) (*source.Artifact, error) {
		start := time.Now()
		a, err := source.Fetch(context.Background(), opts, last)
		m.ObserveFetch(time.Since(start), err)
		return a, err
	}

	a, err := observe("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := observe(a.Revision); !errors.Is(err, source.ErrUnchanged) {
		t.Fatalf("second fetch: %v, want ErrUnchanged", err)
	}
	r.commit("unsigned", map[string]string{"x.yaml": "x"}, nil)
	if _, err := observe(signedRevision(signed)); !errors.Is(err, source.ErrUnverified) {
		t.Fatalf("unsigned commit: %v, want ErrUnverified", err)
	}
	srv.Close()
	if _, err := observe(a.Revision); err == nil || errors.Is(err, source.ErrUnverified) || errors.Is(err, source.ErrUnchanged) {
		t.Fatalf("server gone: %v, want a plain failure", err)
	}

	counts, observed := fetchCounts(t, reg)
	if fmt.Sprint(counts) != "map[failure:1 success:1 unchanged:1 unverified:1]" {
		t.Errorf("fetches by result: %v, want one of each", counts)
	}
	if fmt.Sprint(observed) != "map[failure:1 success:1 unchanged:1 unverified:1]" {
		t.Errorf("durations by result: %v, want one of each", observed)
	}
}

func TestResultOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want source.FetchResult
	}{
		{nil, source.FetchSuccess},
		{source.ErrUnchanged, source.FetchUnchanged},
		{fmt.Errorf("git source: %w", &source.VerificationError{Commit: "abc", Reason: "not signed"}), source.FetchUnverified},
		{errors.New("connection refused"), source.FetchFailure},
		{context.DeadlineExceeded, source.FetchFailure},
	} {
		if got := source.ResultOf(tc.err); got != tc.want {
			t.Errorf("ResultOf(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

func TestNewMetricsRegistersOnce(t *testing.T) {
	t.Parallel()
	if _, err := source.NewMetrics(nil); err == nil {
		t.Error("nil registerer accepted")
	}
	reg := prometheus.NewRegistry()
	if _, err := source.NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := source.NewMetrics(reg); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
	var m *source.Metrics
	m.ObserveFetch(time.Second, nil) // a nil Metrics discards
}
