package webhook

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// MetricReceipts is the name of the receipts counter; docs/metrics.md describes it.
const MetricReceipts = "platzwart_webhook_receipts_total"

// Result is what the receiver did with a delivery: the result label.
type Result string

// Results.
const (
	// ResultAccepted: a push; the trigger was called (202).
	ResultAccepted Result = "accepted"
	// ResultIgnored: authenticated, but nothing to do (200).
	ResultIgnored Result = "ignored"
	// ResultRejected: refused with a 4xx.
	ResultRejected Result = "rejected"
)

// Reason says why a delivery got its result: the reason label. The values are fixed,
// so the label set stays bounded whatever clients send.
type Reason string

// Reasons, by result.
const (
	// ReasonPush: accepted.
	ReasonPush Reason = "push"

	// ReasonPing: a GitHub ping (ignored).
	ReasonPing Reason = "ping"
	// ReasonNotPush: an event other than a push (ignored).
	ReasonNotPush Reason = "not_push"
	// ReasonRefNotWatched: a push to a ref not in Config.Refs (ignored).
	ReasonRefNotWatched Reason = "ref_not_watched"

	// ReasonMethod: not POST (405).
	ReasonMethod Reason = "method_not_allowed"
	// ReasonNoSignature: no signature or token header, or only GitHub's SHA-1 one (401).
	ReasonNoSignature Reason = "no_signature"
	// ReasonWrongSecret: the GitLab token or the HMAC signature does not match the
	// secret (401).
	ReasonWrongSecret Reason = "wrong_secret"
	// ReasonMalformedSignature: the signature header is not a hex HMAC-SHA256 (401).
	ReasonMalformedSignature Reason = "malformed_signature"
	// ReasonBodyTooLarge: the body exceeds Config.MaxBodyBytes (413).
	ReasonBodyTooLarge Reason = "body_too_large"
	// ReasonBodyUnreadable: reading the body failed (400).
	ReasonBodyUnreadable Reason = "body_unreadable"
	// ReasonNoEvent: no event header for the provider (400).
	ReasonNoEvent Reason = "no_event_header"
)

// Outcomes lists every result with its reasons: the series the metrics export.
func Outcomes() map[Result][]Reason {
	return map[Result][]Reason{
		ResultAccepted: {ReasonPush},
		ResultIgnored:  {ReasonPing, ReasonNotPush, ReasonRefNotWatched},
		ResultRejected: {ReasonMethod, ReasonNoSignature, ReasonWrongSecret, ReasonMalformedSignature,
			ReasonBodyTooLarge, ReasonBodyUnreadable, ReasonNoEvent},
	}
}

// Metrics counts webhook deliveries by result and reason. It is safe for concurrent
// use; a nil *Metrics discards every observation.
type Metrics struct {
	receipts *prometheus.CounterVec
}

// NewMetrics creates the counter and registers it on reg (controller-runtime's
// metrics.Registry in the controller; tests pass prometheus.NewRegistry()). Every
// result and reason of [Outcomes] exists from the start, at 0, so that increase()
// sees the first rejection.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("webhook: no registerer")
	}
	m := &Metrics{receipts: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricReceipts,
		Help: "Webhook deliveries received, by result (accepted, ignored, rejected) and reason.",
	}, []string{"result", "reason"})}
	if err := reg.Register(m.receipts); err != nil {
		return nil, fmt.Errorf("webhook: registering metrics: %w", err)
	}
	for result, reasons := range Outcomes() {
		for _, reason := range reasons {
			m.receipts.WithLabelValues(string(result), string(reason))
		}
	}
	return m, nil
}

func (m *Metrics) observe(result Result, reason Reason) {
	if m == nil {
		return
	}
	m.receipts.WithLabelValues(string(result), string(reason)).Inc()
}
