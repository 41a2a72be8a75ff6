package source

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names; docs/metrics.md describes each.
const (
	MetricFetches       = "platzwart_source_fetches_total"
	MetricFetchDuration = "platzwart_source_fetch_duration_seconds"
)

// FetchResult classifies the outcome of one [Fetch]: the result label of the metrics.
type FetchResult string

// Fetch results.
const (
	// FetchSuccess: a new revision was fetched (and verified, when verification is on).
	FetchSuccess FetchResult = "success"
	// FetchUnchanged: the remote still points at the last revision ([ErrUnchanged]).
	FetchUnchanged FetchResult = "unchanged"
	// FetchUnverified: the commit's signature did not verify ([ErrUnverified]); the
	// commit was refused.
	FetchUnverified FetchResult = "unverified"
	// FetchFailure: any other error (the remote unreachable, credentials refused, a
	// ref that does not exist, a timeout).
	FetchFailure FetchResult = "failure"
)

// FetchResults lists every result, in the order the metrics document them.
func FetchResults() []FetchResult {
	return []FetchResult{FetchSuccess, FetchUnchanged, FetchUnverified, FetchFailure}
}

// ResultOf classifies the error [Fetch] returned.
func ResultOf(err error) FetchResult {
	switch {
	case err == nil:
		return FetchSuccess
	case errors.Is(err, ErrUnchanged):
		return FetchUnchanged
	case errors.Is(err, ErrUnverified):
		return FetchUnverified
	}
	return FetchFailure
}

// fetchBuckets are the duration bounds in seconds: an unchanged remote is one
// ls-remote (tens of milliseconds), a clone of a large repository takes minutes.
func fetchBuckets() []float64 {
	return []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}
}

// Metrics counts and times fetches of the Git source. It is safe for concurrent use.
// A nil *Metrics discards every observation.
type Metrics struct {
	fetches  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics creates the collectors and registers them on reg (controller-runtime's
// metrics.Registry in the controller; tests pass prometheus.NewRegistry()). Every
// result series of the counter exists from the start, at 0, so that increase() sees
// the first failure. On error nothing stays registered.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("source: no registerer")
	}
	m := &Metrics{
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricFetches,
			Help: "Fetches of the Git source, by result (success: a new revision; unchanged; unverified: the commit signature did not verify; failure).",
		}, []string{"result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricFetchDuration,
			Help:    "Duration of fetches of the Git source, by result.",
			Buckets: fetchBuckets(),
		}, []string{"result"}),
	}
	if err := reg.Register(m.fetches); err != nil {
		return nil, fmt.Errorf("source: registering metrics: %w", err)
	}
	if err := reg.Register(m.duration); err != nil {
		reg.Unregister(m.fetches)
		return nil, fmt.Errorf("source: registering metrics: %w", err)
	}
	for _, r := range FetchResults() {
		m.fetches.WithLabelValues(string(r))
	}
	return m, nil
}

// ObserveFetch records one fetch that took d and returned err.
func (m *Metrics) ObserveFetch(d time.Duration, err error) {
	if m == nil {
		return
	}
	r := string(ResultOf(err))
	m.fetches.WithLabelValues(r).Inc()
	m.duration.WithLabelValues(r).Observe(d.Seconds())
}
