package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1 "k8s.io/api/core/v1"

	"github.com/platzwart/platzwart/reconciler/plan"
)

// CheckCA is the check that the workplace's CA can be read.
const CheckCA = "ca"

// trust is what the hosts' certificates are verified against.
type trust struct {
	// pool is nil for the system roots.
	pool *x509.CertPool
	// source says where the CA came from, for messages.
	source string
}

// KubeSecrets reads Secrets with a Kubernetes client (the CLI's or the controller's).
type KubeSecrets struct {
	Reader client.Reader
}

// SecretData implements SecretReader.
func (k KubeSecrets) SecretData(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	var s corev1.Secret
	if err := k.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
		return nil, err
	}
	return s.Data, nil
}

func newRunner(ctx context.Context, p *plan.Plan, exp *expectations, opts Options) (*runner, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	for h, addr := range opts.Resolve {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("resolve %s=%s: want ip:port: %w", h, addr, err)
		}
	}
	if opts.Address != "" {
		if _, _, err := net.SplitHostPort(opts.Address); err != nil {
			opts.Address = net.JoinHostPort(opts.Address, "443")
		}
	}
	r := &runner{plan: p, exp: exp, opts: opts}
	t, err := r.trust(ctx)
	if err != nil {
		return nil, err
	}
	r.tls = t
	tlsConfig := &tls.Config{RootCAs: t.pool, Time: opts.Now, MinVersion: tls.VersionTLS12}
	r.client = &http.Client{
		Transport: &http.Transport{
			DialContext:           r.dial,
			TLSClientConfig:       tlsConfig,
			TLSHandshakeTimeout:   opts.Timeout,
			ResponseHeaderTimeout: opts.Timeout,
			ForceAttemptHTTP2:     true,
			MaxIdleConnsPerHost:   4,
		},
		// A probe looks at the first answer: a redirect to the login page is the answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       opts.Timeout,
	}
	return r, nil
}

// trust loads the CA: --ca-file, else the plan's CA Secret, else the system roots. A
// CA Secret that cannot be read is a failed check (the TLS checks then use the system
// roots and say so), not an error: a half-installed workplace is what check is for.
func (r *runner) trust(ctx context.Context) (*trust, error) {
	if len(r.opts.CA) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(r.opts.CA) {
			return nil, errors.New("--ca-file: no PEM certificate in it")
		}
		return &trust{pool: pool, source: "the CA file"}, nil
	}
	ref := r.exp.ca
	if ref == nil {
		return &trust{source: "the system roots"}, nil
	}
	target := fmt.Sprintf("secret %s/%s key %s", r.plan.Namespace, ref.Name, ref.Key)
	res := Result{Name: CheckCA, Target: target, Status: Fail, Reason: ReasonSecretUnavailable}
	if r.opts.Secrets == nil {
		res.Status, res.Reason = Skip, ReasonNotApplicable
		res.Message = "no cluster access: the hosts are verified against the system roots"
		res.Fix = "pass --kubeconfig/--context, or the workplace's CA with --ca-file"
		r.report(res)
		return &trust{source: "the system roots"}, nil
	}
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	data, err := r.opts.Secrets.SecretData(sctx, r.plan.Namespace, ref.Name)
	cancel()
	res.Duration = time.Since(start).Round(time.Millisecond)
	pool := x509.NewCertPool()
	switch {
	case apierrors.IsNotFound(err):
		res.Message = fmt.Sprintf("the CA Secret %s does not exist", ref.Name)
		res.Fix = "run platzwart apply (it generates the workplace's CA), or give the CA with --ca-file"
	case err != nil:
		res.Message = fmt.Sprintf("cannot read the CA Secret %s: %v", ref.Name, err)
		res.Fix = "check the kubeconfig, the namespace (-n) and that you may get Secrets there, or give the CA with --ca-file"
	case len(data[ref.Key]) == 0:
		res.Message = fmt.Sprintf("the Secret %s has no key %s", ref.Name, ref.Key)
		res.Fix = "put the CA certificate (PEM) under that key, or give it with --ca-file"
	case !pool.AppendCertsFromPEM(data[ref.Key]):
		res.Message = fmt.Sprintf("key %s of the Secret %s holds no PEM certificate", ref.Key, ref.Name)
		res.Fix = "put the CA certificate (PEM) under that key, or give it with --ca-file"
	default:
		res.Status, res.Reason = Pass, ""
		res.Message = "the workplace's CA"
		r.report(res)
		return &trust{pool: pool, source: "the workplace's CA (" + ref.Name + ")"}, nil
	}
	r.report(res)
	return &trust{source: "the system roots (the workplace's CA could not be read)"}, nil
}

// dial connects to addr ("host:port"), at the address Resolve or Address give for the
// host when set.
func (r *runner) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if to, ok := r.opts.Resolve[host]; ok {
		addr = to
	} else if r.opts.Address != "" && !r.external(host) {
		addr = r.opts.Address
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// checkTLS connects to host:443 and verifies its certificate for host under the trust.
func (r *runner) checkTLS(ctx context.Context, host, component string) Result {
	return r.timed(ctx, func(ctx context.Context) Result {
		res := Result{Name: CheckTLS, Target: host, Component: component}
		conn, err := r.dial(ctx, "tcp", net.JoinHostPort(host, "443"))
		if err != nil {
			return connError(res, host, err)
		}
		defer conn.Close()
		tc := tls.Client(conn, &tls.Config{ServerName: host, RootCAs: r.tls.pool, Time: r.opts.Now, MinVersion: tls.VersionTLS12})
		err = tc.HandshakeContext(ctx)
		if err == nil {
			cert := tc.ConnectionState().PeerCertificates[0]
			notAfter := cert.NotAfter
			res.NotAfter = &notAfter
			res.Status = Pass
			res.Message = fmt.Sprintf("certificate valid under %s until %s (%d days)", r.tls.source,
				notAfter.UTC().Format(time.DateOnly), int(notAfter.Sub(r.opts.Now()).Hours()/24))
			return res
		}
		res = tlsError(res, host, r.tls.source, r.opts.Now(), err)
		if r.external(host) && res.Reason == ReasonUntrustedCertificate {
			res.Fix = fmt.Sprintf("the apps trust only the workplace's CA and public roots: name the CA that signed the certificate of %s in spec.routing.tls.caSecret (docs/catalog.md, external-oidc), or give the provider a publicly trusted certificate", host)
		}
		return res
	})
}

// external reports whether host is an external identity provider's: it is not behind
// the workplace's ingress, so Address does not apply to it.
func (r *runner) external(host string) bool {
	id := r.exp.identity
	return id != nil && id.external && hostOf(id.issuerURL) == host
}

// tlsError classifies a failed handshake.
func tlsError(res Result, host, source string, now time.Time, err error) Result {
	res.Status = Fail
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return connError(res, host, err)
		}
		res.Reason = ReasonTLSHandshake
		res.Message = fmt.Sprintf("TLS handshake with %s failed: %v", host, err)
		res.Fix = "check that the route of this host has TLS configured (routing.tls in the profile or workplace)"
		return res
	}
	if len(verr.UnverifiedCertificates) > 0 {
		notAfter := verr.UnverifiedCertificates[0].NotAfter
		res.NotAfter = &notAfter
	}
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		res.Reason = ReasonCertificateExpired
		leaf := verr.UnverifiedCertificates[0]
		if now.Before(leaf.NotBefore) {
			res.Message = fmt.Sprintf("the certificate of %s is not valid before %s", host, leaf.NotBefore.UTC().Format(time.RFC3339))
			res.Fix = "check the clock of this machine and of the cluster"
		} else {
			res.Message = fmt.Sprintf("the certificate of %s (or its CA) expired on %s", host, expiry(verr.UnverifiedCertificates, now).UTC().Format(time.RFC3339))
			res.Fix = "renew the certificate: for SelfSigned delete the workplace's TLS Secret and run platzwart apply (then trust the new CA); for an Issuer check cert-manager's Certificate"
		}
	case errors.As(err, &hostErr):
		res.Reason = ReasonHostnameMismatch
		res.Message = fmt.Sprintf("the certificate presented for %s is not valid for it (valid for %v)", host, hostErr.Certificate.DNSNames)
		res.Fix = "check the routing's TLS Secret or Issuer of this host, and that --address points at the workplace's ingress"
	case errors.As(err, &unknown):
		res.Reason = ReasonUntrustedCertificate
		res.Message = fmt.Sprintf("the certificate of %s is not signed by %s (issuer %q)", host, source, unknown.Cert.Issuer.String())
		res.Fix = "check that the route serves the workplace's certificate (not the ingress controller's default), or give the right CA with --ca-file"
	default:
		res.Reason = ReasonUntrustedCertificate
		res.Message = fmt.Sprintf("the certificate of %s does not verify under %s: %v", host, source, verr.Err)
		res.Fix = "check the routing's TLS Secret or Issuer of this host"
	}
	return res
}

// expiry returns the earliest NotAfter of the chain that is already past.
func expiry(chain []*x509.Certificate, now time.Time) time.Time {
	t := chain[0].NotAfter
	for _, c := range chain {
		if c.NotAfter.Before(now) && c.NotAfter.Before(t) {
			t = c.NotAfter
		}
	}
	return t
}
