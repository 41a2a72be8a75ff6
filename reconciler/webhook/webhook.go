package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Providers, as reported in [Event.Provider] and in logs.
const (
	ProviderGitLab  = "gitlab"
	ProviderGitHub  = "github"
	ProviderGitea   = "gitea"
	ProviderForgejo = "forgejo"
)

// DefaultMaxBodyBytes is the body size limit when [Config.MaxBodyBytes] is zero. Push
// payloads are a few kilobytes; GitHub caps its own at 25 MB, GitLab lists at most 20
// commits, so 1 MiB leaves room without inviting large uploads.
const DefaultMaxBodyBytes = 1 << 20

// Config configures a [Receiver].
type Config struct {
	// Secret is the webhook secret configured at the Git host: the HMAC key for GitHub,
	// Gitea and Forgejo, the token for GitLab. Required.
	Secret []byte
	// Logger receives one record per request (see the package documentation for what
	// is logged). Nil discards. A logr.Logger converts with logr.ToSlogHandler.
	Logger *slog.Logger
	// Trigger is called once per accepted push, synchronously, before the response is
	// written. It must not block: send without waiting, or use [Signal.Fire]. Required.
	Trigger func(Event)
	// Refs, when not empty, lists the full ref names ("refs/heads/main",
	// "refs/tags/v1") that trigger; a push to another ref is acknowledged with 200 and
	// does not trigger. A push whose ref cannot be read from the payload triggers.
	Refs []string
	// MaxBodyBytes limits the request body; 0 means [DefaultMaxBodyBytes].
	MaxBodyBytes int64
	// Metrics counts every delivery by result and reason; nil counts nothing.
	Metrics *Metrics
}

// Event is what an accepted push reports to [Config.Trigger]. Everything but Provider
// and Received comes from the payload, which the sender signed but which may be a
// replay: treat it as a hint, fetch the configured ref.
type Event struct {
	// Provider is one of the Provider constants.
	Provider string
	// Ref is the pushed ref ("refs/heads/main"); empty when the payload had none.
	Ref string
	// Commit is the payload's "after": the object the ref points to after the push
	// (for an annotated tag the tag object, not its commit); empty when the payload
	// had none or the push deleted the ref.
	Commit string
	// Deleted is true when the push deleted the ref.
	Deleted bool
	// Delivery is the sender's delivery id (X-GitHub-Delivery, X-Gitea-Delivery,
	// X-Forgejo-Delivery, X-Gitlab-Event-UUID), when it sent one.
	Delivery string
	// Received is when the request reached the receiver.
	Received time.Time
}

// Receiver verifies push webhooks and calls [Config.Trigger]. It is safe for concurrent
// use; it holds no state between requests.
type Receiver struct {
	secret    []byte
	tokenHash [sha256.Size]byte
	logger    *slog.Logger
	trigger   func(Event)
	refs      map[string]bool
	maxBody   int64
	metrics   *Metrics
}

// New returns a Receiver for cfg. It fails when the secret is empty (an empty secret
// would let anyone trigger), when Trigger is nil, or when a ref in Refs is not a full
// ref name.
func New(cfg Config) (*Receiver, error) {
	if len(cfg.Secret) == 0 {
		return nil, errors.New("webhook: empty secret")
	}
	if cfg.Trigger == nil {
		return nil, errors.New("webhook: no trigger")
	}
	if cfg.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("webhook: negative body limit %d", cfg.MaxBodyBytes)
	}
	r := &Receiver{
		secret:    append([]byte(nil), cfg.Secret...),
		tokenHash: sha256.Sum256(cfg.Secret),
		logger:    cfg.Logger,
		trigger:   cfg.Trigger,
		maxBody:   cfg.MaxBodyBytes,
		metrics:   cfg.Metrics,
	}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	if r.maxBody == 0 {
		r.maxBody = DefaultMaxBodyBytes
	}
	if len(cfg.Refs) > 0 {
		r.refs = make(map[string]bool, len(cfg.Refs))
		for _, ref := range cfg.Refs {
			if !strings.HasPrefix(ref, "refs/") {
				return nil, fmt.Errorf("webhook: ref %q is not a full ref name (refs/heads/..., refs/tags/...)", ref)
			}
			r.refs[ref] = true
		}
	}
	return r, nil
}

// auth is how a request authenticates: the provider and the header that carries the
// signature or token.
type auth struct {
	provider string
	header   string
	value    string
}

// authHeaders in order of precedence (see the package documentation).
var authHeaders = [...]struct{ provider, header string }{
	{ProviderForgejo, "X-Forgejo-Signature"},
	{ProviderGitea, "X-Gitea-Signature"},
	{ProviderGitHub, "X-Hub-Signature-256"},
	{ProviderGitLab, "X-Gitlab-Token"},
}

func findAuth(h http.Header) (auth, bool) {
	for _, a := range authHeaders {
		if v := h.Values(a.header); len(v) > 0 {
			return auth{provider: a.provider, header: a.header, value: v[0]}, true
		}
	}
	return auth{}, false
}

// eventHeaders per provider, first present wins.
var eventHeaders = map[string][]string{
	ProviderForgejo: {"X-Forgejo-Event", "X-Gitea-Event"},
	ProviderGitea:   {"X-Gitea-Event"},
	ProviderGitHub:  {"X-GitHub-Event"},
	ProviderGitLab:  {"X-Gitlab-Event"},
}

var deliveryHeaders = map[string][]string{
	ProviderForgejo: {"X-Forgejo-Delivery", "X-Gitea-Delivery"},
	ProviderGitea:   {"X-Gitea-Delivery"},
	ProviderGitHub:  {"X-GitHub-Delivery"},
	ProviderGitLab:  {"X-Gitlab-Event-UUID"},
}

func firstHeader(h http.Header, names []string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// ServeHTTP handles one webhook delivery; see the package documentation for the
// responses.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	received := time.Now()
	if req.Method != http.MethodPost {
		r.metrics.observe(ResultRejected, ReasonMethod)
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a, ok := findAuth(req.Header)
	if !ok {
		reason := "no signature or token header"
		if req.Header.Get("X-Hub-Signature") != "" {
			reason = "only X-Hub-Signature (SHA-1), X-Hub-Signature-256 required"
		}
		r.reject(w, req, "", "", ReasonNoSignature, reason, http.StatusUnauthorized)
		return
	}
	delivery := clip(firstHeader(req.Header, deliveryHeaders[a.provider]), 128)

	// GitLab sends the secret itself: check it before reading a byte of the body.
	if a.provider == ProviderGitLab {
		got := sha256.Sum256([]byte(a.value))
		if subtle.ConstantTimeCompare(got[:], r.tokenHash[:]) != 1 {
			r.reject(w, req, a.provider, delivery, ReasonWrongSecret, "wrong token", http.StatusUnauthorized)
			return
		}
	}

	if req.ContentLength > r.maxBody {
		r.reject(w, req, a.provider, delivery, ReasonBodyTooLarge, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.maxBody))
	if err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			r.reject(w, req, a.provider, delivery, ReasonBodyTooLarge, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.reject(w, req, a.provider, delivery, ReasonBodyUnreadable, "reading body failed", http.StatusBadRequest)
		return
	}

	if a.provider != ProviderGitLab {
		if reason, msg := r.verifyHMAC(a, body); msg != "" {
			r.reject(w, req, a.provider, delivery, reason, msg, http.StatusUnauthorized)
			return
		}
	}

	event := firstHeader(req.Header, eventHeaders[a.provider])
	if event == "" {
		r.reject(w, req, a.provider, delivery, ReasonNoEvent, "no event header", http.StatusBadRequest)
		return
	}
	log := r.logger.With("provider", a.provider, "delivery", delivery)

	payload, perr := parsePush(req.Header.Get("Content-Type"), body)
	switch {
	case a.provider == ProviderGitHub && event == "ping":
		log.Info("webhook ping")
		r.metrics.observe(ResultIgnored, ReasonPing)
		respond(w, http.StatusOK, "pong")
		return
	case !isPush(a.provider, event, payload):
		log.Debug("webhook event ignored", "event", clip(event, 64))
		r.metrics.observe(ResultIgnored, ReasonNotPush)
		respond(w, http.StatusOK, "ignored: not a push")
		return
	}

	ev := Event{Provider: a.provider, Delivery: delivery, Received: received}
	if perr != nil {
		log.Warn("webhook push payload unreadable, triggering anyway", "error", perr)
	} else {
		ev.Ref = payload.Ref
		ev.Commit = payload.After
		if isZeroSHA(ev.Commit) {
			ev.Commit, ev.Deleted = "", true
		}
	}
	if ev.Ref != "" && r.refs != nil && !r.refs[ev.Ref] {
		log.Debug("webhook push to unwatched ref ignored", "ref", clip(ev.Ref, 256))
		r.metrics.observe(ResultIgnored, ReasonRefNotWatched)
		respond(w, http.StatusOK, "ignored: ref not watched")
		return
	}
	r.trigger(ev)
	r.metrics.observe(ResultAccepted, ReasonPush)
	log.Info("webhook push", "ref", clip(ev.Ref, 256), "commit", clip(ev.Commit, 64), "deleted", ev.Deleted)
	respond(w, http.StatusAccepted, "accepted")
}

// verifyHMAC checks an HMAC-SHA256 signature header; it returns an empty msg when it
// holds, else why not (never the value).
func (r *Receiver) verifyHMAC(a auth, body []byte) (reason Reason, msg string) {
	sig := a.value
	if a.provider == ProviderGitHub {
		var ok bool
		if sig, ok = strings.CutPrefix(sig, "sha256="); !ok {
			return ReasonMalformedSignature, "malformed signature"
		}
	}
	got, err := hex.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return ReasonMalformedSignature, "malformed signature"
	}
	mac := hmac.New(sha256.New, r.secret)
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), got) {
		return ReasonWrongSecret, "wrong signature"
	}
	return "", ""
}

// reject counts a refused delivery under reason and answers code with msg, which the
// log and the response share.
func (r *Receiver) reject(w http.ResponseWriter, req *http.Request, provider, delivery string, reason Reason, msg string, code int) {
	r.metrics.observe(ResultRejected, reason)
	r.logger.Warn("webhook rejected",
		"provider", provider, "reason", msg, "status", code,
		"delivery", delivery, "remote", req.RemoteAddr)
	http.Error(w, http.StatusText(code)+": "+msg, code)
}

func respond(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}

// pushPayload holds the few fields read from a push payload.
type pushPayload struct {
	Ref   string `json:"ref"`
	After string `json:"after"`
	// EventName is set by GitLab ("push", "tag_push"); for system hooks it is the
	// only way to tell a push.
	EventName string `json:"event_name"`
}

// parsePush reads a JSON payload, or a form-encoded one whose "payload" field is JSON
// (GitHub, Gitea and Forgejo can send either).
func parsePush(contentType string, body []byte) (pushPayload, error) {
	var p pushPayload
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && mt == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return p, errors.New("form payload: malformed")
		}
		body = []byte(form.Get("payload"))
	}
	if err := json.Unmarshal(body, &p); err != nil {
		// The error of encoding/json can quote payload bytes; do not pass it on.
		return pushPayload{}, errors.New("payload is not a JSON object with string ref and after")
	}
	return p, nil
}

func isPush(provider, event string, p pushPayload) bool {
	switch provider {
	case ProviderGitLab:
		switch event {
		case "Push Hook", "Tag Push Hook":
			return true
		case "System Hook":
			return p.EventName == "push" || p.EventName == "tag_push"
		}
		return false
	default:
		return event == "push"
	}
}

// isZeroSHA reports whether s is an all-zero object id (SHA-1 or SHA-256), which the
// providers send as "after" when a push deletes a ref.
func isZeroSHA(s string) bool {
	return len(s) >= 40 && strings.Trim(s, "0") == ""
}

// clip shortens a header or payload value for logging.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
