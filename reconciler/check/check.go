package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/plan"
)

// DefaultTimeout bounds each probe when Options.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// Status is the outcome of one check.
type Status string

// Outcomes of a check.
const (
	// Pass: the workplace answered the way a working installation does.
	Pass Status = "Pass"
	// Fail: it did not; Reason, Message and Fix say why and what to do.
	Fail Status = "Fail"
	// Skip: the check could not run because something it needs failed or is absent.
	Skip Status = "Skip"
)

// Reason classifies a failed or skipped check, for callers to switch on.
type Reason string

// Reasons of failed and skipped checks.
const (
	ReasonUnresolvable         Reason = "Unresolvable"         // the host name does not resolve
	ReasonUnreachable          Reason = "Unreachable"          // no TCP connection (refused, no route)
	ReasonTimeout              Reason = "Timeout"              // no answer within the probe's timeout
	ReasonTLSHandshake         Reason = "TLSHandshake"         // the TLS handshake failed for another reason
	ReasonUntrustedCertificate Reason = "UntrustedCertificate" // not signed by the workplace's CA (or a public one)
	ReasonCertificateExpired   Reason = "CertificateExpired"   // expired or not yet valid
	ReasonHostnameMismatch     Reason = "HostnameMismatch"     // the certificate is not valid for the host
	ReasonIssuerMismatch       Reason = "IssuerMismatch"       // discovery names another issuer
	ReasonDiscoveryInvalid     Reason = "DiscoveryInvalid"     // discovery is not OpenID provider metadata
	ReasonClientUnauthorized   Reason = "ClientUnauthorized"   // the provider rejects the client's id and secret
	ReasonRedirectURIRejected  Reason = "RedirectURIRejected"  // the provider refuses a redirect URI the plan needs
	ReasonRedirectURIUnchecked Reason = "RedirectURIUnchecked" // the provider accepts a redirect URI nobody registered
	ReasonLogoutURIRejected    Reason = "LogoutURIRejected"    // the provider refuses a post-logout redirect URI
	ReasonUnexpectedStatus     Reason = "UnexpectedStatus"     // an HTTP status a working installation does not answer
	ReasonUnexpectedBody       Reason = "UnexpectedBody"       // a body that is not what a working installation serves
	ReasonSecretUnavailable    Reason = "SecretUnavailable"    // a Secret the check needs cannot be read
	ReasonDependencyFailed     Reason = "DependencyFailed"     // skipped: a check it depends on failed
	ReasonNotApplicable        Reason = "NotApplicable"        // skipped: nothing to check (public client, no identity)
)

// Names of the checks.
const (
	CheckTLS       = "tls"
	CheckDiscovery = "oidc-discovery"
	CheckClient    = "oidc-client"
	CheckRedirect  = "oidc-redirect-uri"
	CheckLogout    = "oidc-logout-uri"
	CheckApp       = "app"
)

// Result is the outcome of one check of one target.
type Result struct {
	// Name is what was checked (CheckTLS, CheckDiscovery, ...).
	Name string `json:"name"`
	// Target is the host, URL or client checked.
	Target string `json:"target"`
	// Component is the component the target belongs to ("" for workplace-wide checks).
	Component string `json:"component,omitempty"`
	// Status is Pass, Fail or Skip.
	Status Status `json:"status"`
	// Reason classifies a Fail or Skip.
	Reason Reason `json:"reason,omitempty"`
	// Message says in one sentence what was seen.
	Message string `json:"message"`
	// Fix suggests what to do about a failure.
	Fix string `json:"fix,omitempty"`
	// NotAfter is when the host's certificate expires (TLS checks).
	NotAfter *time.Time `json:"notAfter,omitempty"`
	// Duration is how long the check took.
	Duration time.Duration `json:"duration"`
}

// Report is every check of one workplace.
type Report struct {
	// Workplace and Namespace checked.
	Workplace string `json:"workplace"`
	Namespace string `json:"namespace"`
	// Checks in a stable order: TLS, identity provider, clients, apps.
	Checks []Result `json:"checks"`
}

// Failed returns the checks that failed.
func (r *Report) Failed() []Result {
	var out []Result
	for _, c := range r.Checks {
		if c.Status == Fail {
			out = append(out, c)
		}
	}
	return out
}

// OK is true when no check failed.
func (r *Report) OK() bool { return len(r.Failed()) == 0 }

// SecretReader reads the data of a Secret in the workplace's namespace. KubeSecrets
// implements it with a Kubernetes client.
type SecretReader interface {
	SecretData(ctx context.Context, namespace, name string) (map[string][]byte, error)
}

// Options configure a run.
type Options struct {
	// Timeout bounds each probe (connection, TLS handshake, request and body); 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// Secrets reads the workplace's CA and the OIDC client secrets. Nil skips the client
	// authentication checks and trusts CA (or the system roots).
	Secrets SecretReader
	// CA is a PEM bundle to trust instead of the CA Secret the plan names (--ca-file).
	CA []byte
	// Address is where every host of the workplace is dialled, "ip" or "ip:port" (port
	// default 443), instead of what its name resolves to: minikube's IP, or a loopback
	// server in tests. An external identity provider's host is not the workplace's: it
	// is dialled where it resolves (or where Resolve says).
	Address string
	// Resolve maps a host name to the "ip:port" it is dialled at, overriding Address
	// for that host (like curl --resolve).
	Resolve map[string]string
	// Progress, when set, is called with each result as it is known, from several
	// goroutines one at a time.
	Progress func(Result)
	// Now is the clock certificates are verified at (default time.Now).
	Now func() time.Time
	// DNS, when set, compares the workplace's records with what a resolver answers
	// (checks named CheckDNS); nil checks no DNS.
	DNS *DNSOptions
}

// Run checks the deployed workplace of p through its public URLs: TLS of every host,
// the identity provider's discovery, each consumer's OIDC client, and each app. cat is
// the catalog the plan was built from (the components' OIDC client definitions). An
// error means the checks could not start (bad options, unreadable plan); every
// problem of the workplace itself is a failed Result.
func Run(ctx context.Context, p *plan.Plan, cat *catalog.Catalog, opts Options) (*Report, error) {
	exp, err := expect(p, cat)
	if err != nil {
		return nil, fmt.Errorf("workplace %s/%s: %w", p.Namespace, p.Workplace, err)
	}
	r, err := newRunner(ctx, p, exp, opts)
	if err != nil {
		return nil, fmt.Errorf("workplace %s/%s: %w", p.Namespace, p.Workplace, err)
	}
	rep := &Report{Workplace: p.Workplace, Namespace: p.Namespace}
	rep.Checks = r.run(ctx)
	return rep, nil
}

// runner holds what every probe of one run shares.
type runner struct {
	plan    *plan.Plan
	exp     *expectations
	opts    Options
	client  *http.Client
	tls     *trust
	mu      sync.Mutex
	results []Result
}

func (r *runner) report(res Result) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results = append(r.results, res)
	if r.opts.Progress != nil {
		r.opts.Progress(res)
	}
	return res
}

// run performs the checks: all hosts' TLS in parallel first; then discovery; then the
// clients and the apps in parallel. A check whose host failed TLS is skipped.
func (r *runner) run(ctx context.Context) []Result {
	tlsOK := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range r.exp.hosts {
		wg.Go(func() {
			res := r.report(r.checkTLS(ctx, h.name, h.component))
			mu.Lock()
			tlsOK[h.name] = res.Status == Pass
			mu.Unlock()
		})
	}
	wg.Wait()

	var disc *discovery
	if r.exp.identity != nil {
		disc = r.checkDiscovery(ctx, tlsOK)
	}
	for _, c := range r.exp.clients {
		wg.Go(func() { r.checkClient(ctx, c, disc) })
	}
	for _, a := range r.exp.apps {
		wg.Go(func() { r.checkApp(ctx, a, tlsOK, disc) })
	}
	if r.opts.DNS != nil {
		wg.Go(func() { r.checkDNS(ctx) })
	}
	wg.Wait()

	out := append([]Result(nil), r.results...)
	sort.SliceStable(out, func(i, j int) bool {
		if oi, oj := nameOrder(out[i].Name), nameOrder(out[j].Name); oi != oj {
			return oi < oj
		}
		if out[i].Component != out[j].Component {
			return out[i].Component < out[j].Component
		}
		// TLS checks run in parallel: by host. The others of one component run one
		// after the other and keep that order.
		// DNS checks too.
		return (out[i].Name == CheckTLS || out[i].Name == CheckDNS) && out[i].Target < out[j].Target
	})
	return out
}

func nameOrder(name string) int {
	for i, n := range []string{CheckCA, CheckTLS, CheckDiscovery, CheckClient, CheckRedirect, CheckLogout, CheckApp, CheckDNS} {
		if n == name {
			return i
		}
	}
	return 99
}

// timed runs probe under the probe timeout and fills in the result's duration.
func (r *runner) timed(ctx context.Context, probe func(ctx context.Context) Result) Result {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	start := time.Now()
	res := probe(ctx)
	res.Duration = time.Since(start).Round(time.Millisecond)
	return res
}

// skipped is a Skip result because a check it needs did not pass.
func skipped(name, target, component, why string) Result {
	return Result{Name: name, Target: target, Component: component, Status: Skip, Reason: ReasonDependencyFailed, Message: why}
}

// connError turns an error of dialling or of a request into a failed result.
func connError(res Result, host string, err error) Result {
	res.Status = Fail
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &dnsErr):
		res.Reason = ReasonUnresolvable
		res.Message = fmt.Sprintf("%s does not resolve: %v", host, dnsErr.Err)
		res.Fix = fmt.Sprintf("point %s (or a wildcard for the workplace domain) at the cluster's ingress address in DNS, or pass --address <ingress IP>", host)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		res.Reason = ReasonTimeout
		res.Message = fmt.Sprintf("%s did not answer in time", host)
		res.Fix = "check that the ingress (or gateway) controller runs and that its address is reachable from here; raise --timeout for a slow network"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		res.Reason = ReasonUnreachable
		res.Message = fmt.Sprintf("cannot connect to %s: %v", host, opErr.Err)
		res.Fix = "check that the ingress (or gateway) controller runs and exposes port 443 at the address the host resolves to (minikube: minikube addons enable ingress)"
	default:
		res.Reason = ReasonUnreachable
		res.Message = fmt.Sprintf("request to %s failed: %v", host, err)
		res.Fix = "check the ingress (or gateway) controller and the route of this host"
	}
	return res
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// trimBody shortens an upstream error body for a message: first line, at most 120 bytes.
func trimBody(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
