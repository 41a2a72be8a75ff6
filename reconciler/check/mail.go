package check

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/platzwart/platzwart/reconciler/contract"
)

// mailProtocol is a mail protocol the mail host serves over implicit TLS and the
// line a working server greets with after the handshake.
type mailProtocol struct {
	// name is the chart's Service port name and the target's scheme.
	name string
	// port is the standard port (RFC 8314: submissions 465, IMAPS 993).
	port int
	// greeting is the prefix of the server's first line: IMAP's untagged OK
	// (RFC 9051 7.1.1) or SMTP's 220 (RFC 5321 4.2).
	greeting string
	what     string
}

var mailProtocols = []mailProtocol{
	{name: "imaps", port: 993, greeting: "* OK", what: "IMAP"},
	{name: "submissions", port: 465, greeting: "220", what: "SMTP submission"},
}

// checkMail runs the probes of a mail component: the web client hands the login to
// the identity provider, and the mail host answers IMAPS and submissions with a
// certificate valid for it.
func (r *runner) checkMail(ctx context.Context, a app, tlsOK map[string]bool, disc *discovery) {
	if web := a.hosts["webmail"]; web != "" && a.identity {
		r.checkWebmailLogin(ctx, a, web, tlsOK, disc)
	}
	host := a.hosts["mail"]
	if host == "" {
		return
	}
	for _, p := range mailProtocols {
		port, ok := mailPort(a.values, p)
		target := fmt.Sprintf("%s://%s", p.name, net.JoinHostPort(host, strconv.Itoa(port)))
		if !ok {
			r.report(Result{Name: CheckApp, Target: p.name + "://" + host, Component: a.component, Status: Skip, Reason: ReasonNotApplicable,
				Message: "the mail Service is a NodePort without a fixed node port: the port is the cluster's choice",
				Fix:     "set mailService.nodePorts in the profile, or check with kubectl get service"})
			continue
		}
		r.report(r.timed(ctx, func(ctx context.Context) Result {
			return r.mailGreeting(ctx, a.component, host, port, target, p)
		}))
	}
}

// mailPort is where the protocol is reached: the fixed node port of a NodePort
// Service (values mailService.nodePorts), else the standard port.
func mailPort(values map[string]any, p mailProtocol) (int, bool) {
	svc, _ := values["mailService"].(map[string]any)
	if t, _ := svc["type"].(string); t != "NodePort" {
		return p.port, true
	}
	ports, _ := svc["nodePorts"].(map[string]any)
	switch n := ports[p.name].(type) {
	case int:
		return n, n > 0
	case int64:
		return int(n), n > 0
	case float64:
		return int(n), n > 0
	}
	return 0, false
}

// mailAddr is where host:port is dialled: a Resolve entry for "host:port", else the
// address (IP) Resolve or Address give for the host with this port, else the name.
func (r *runner) mailAddr(host string, port int) string {
	hp := net.JoinHostPort(host, strconv.Itoa(port))
	if to, ok := r.opts.Resolve[hp]; ok {
		return to
	}
	for _, to := range []string{r.opts.Resolve[host], r.opts.Address} {
		if to == "" {
			continue
		}
		ip, _, err := net.SplitHostPort(to)
		if err != nil {
			ip = to
		}
		return net.JoinHostPort(ip, strconv.Itoa(port))
	}
	return hp
}

// mailGreeting connects with TLS, verifies the certificate for host and reads the
// server's first line.
func (r *runner) mailGreeting(ctx context.Context, component, host string, port int, target string, p mailProtocol) Result {
	res := Result{Name: CheckApp, Target: target, Component: component}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", r.mailAddr(host, port))
	if err != nil {
		res = connError(res, host, err)
		res.Fix = fmt.Sprintf("check the Service %s of the mail release (its type and external address) and that port %d reaches it from here", "<release>-mail", port)
		return res
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	tc := tls.Client(conn, &tls.Config{ServerName: host, RootCAs: r.tls.pool, Time: r.opts.Now, MinVersion: tls.VersionTLS12})
	if err := tc.HandshakeContext(ctx); err != nil {
		res = tlsError(res, host, r.tls.source, r.opts.Now(), err)
		if res.Reason == ReasonTLSHandshake || res.Reason == ReasonHostnameMismatch || res.Reason == ReasonUntrustedCertificate {
			res.Fix = "the mail server presents the certificate of the workplace's TLS Secret (charts/stalwart README.md, \"TLS\"): check that the Secret exists and the provisioning Job set it as the default certificate"
		}
		return res
	}
	line, err := bufio.NewReader(tc).ReadString('\n')
	if err != nil && line == "" {
		res = connError(res, host, err)
		res.Reason, res.Message = ReasonUnexpectedBody, fmt.Sprintf("%s on %s sent no greeting after the TLS handshake: %v", p.what, target, err)
		res.Fix = "check the mail server's listener for this port (its log shows the listeners it binds at start)"
		return res
	}
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(line, p.greeting) {
		res.Status, res.Reason = Fail, ReasonUnexpectedBody
		res.Message = fmt.Sprintf("%s answers %q, not a %s greeting (%s…)", target, trimBody([]byte(line)), p.what, p.greeting)
		res.Fix = "check that the mail Service's port leads to the mail server's listener of this protocol"
		return res
	}
	res.Status = Pass
	res.Message = fmt.Sprintf("%s over TLS with a certificate for %s under %s", p.what, host, r.tls.source)
	return res
}

// checkWebmailLogin: Bulwark starts its login with POST /api/auth/sso/start
// {redirect_uri, locale} and answers {authorize_url}, built from the issuer's
// discovery (bulwarkmail/webmail@1.6.0 app/api/auth/sso/start/route.ts): that URL at
// the provider's authorization endpoint for the component's client, returning to a
// registered callback, shows the web client reaches and trusts the issuer.
func (r *runner) checkWebmailLogin(ctx context.Context, a app, web string, tlsOK map[string]bool, disc *discovery) {
	target := "https://" + web + "/api/auth/sso/start"
	c := clientOf(r.exp, a.component)
	switch {
	case c == nil:
		return
	case !tlsOK[web]:
		r.report(skipped(CheckApp, target, a.component, fmt.Sprintf("the TLS check of %s did not pass", web)))
		return
	case disc == nil:
		r.report(skipped(CheckApp, target, a.component, "the identity provider's discovery did not pass"))
		return
	}
	origin := "https://" + web
	callback := origin + "/en/auth/callback"
	r.report(r.timed(ctx, func(ctx context.Context) Result {
		res := Result{Name: CheckApp, Target: target, Component: a.component, Status: Fail}
		body, _ := json.Marshal(map[string]string{"redirect_uri": callback, "locale": "en"})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			return connError(res, web, err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		resp, b, err := r.do(req)
		if err != nil {
			return connError(res, web, err)
		}
		fix := "check the web client's OAUTH_ISSUER_URL and OAUTH_CLIENT_ID and its log (a failed discovery of the issuer answers 502)"
		if v := status(resp, http.StatusOK, "the web mail's login start", fix); !v.ok() {
			res.Reason, res.Message, res.Fix = v.reason, v.message+": "+trimBody(b), v.fix
			return res
		}
		var out struct {
			AuthorizeURL string `json:"authorize_url"`
		}
		if json.Unmarshal(b, &out) != nil || out.AuthorizeURL == "" {
			res.Reason, res.Message, res.Fix = ReasonUnexpectedBody, "the web mail's login start is not {authorize_url}: "+trimBody(b), fix
			return res
		}
		loc, err := url.Parse(out.AuthorizeURL)
		auth, aerr := url.Parse(disc.AuthorizationEndpoint)
		switch {
		case err != nil || aerr != nil || loc.Host != auth.Host || loc.Path != auth.Path:
			res.Reason, res.Fix = ReasonUnexpectedBody, fix
			res.Message = fmt.Sprintf("the web mail sends the browser to %s, not to the identity provider's authorization endpoint %s", out.AuthorizeURL, disc.AuthorizationEndpoint)
		case loc.Query().Get("client_id") != c.id:
			res.Reason, res.Fix = ReasonUnexpectedBody, fix
			res.Message = fmt.Sprintf("the web mail signs in as client %q, the identity provider registers %q", loc.Query().Get("client_id"), c.id)
		case !slices.Contains(c.redirectURIs, loc.Query().Get("redirect_uri")):
			res.Reason, res.Fix = ReasonUnexpectedBody, "check the component's oidcClient.redirectPaths against the web client's callback pages"
			res.Message = fmt.Sprintf("the web mail returns to %q, which is not a registered redirect URI", loc.Query().Get("redirect_uri"))
		default:
			res.Status = Pass
			res.Message = fmt.Sprintf("the web mail hands the login to the identity provider as client %q", c.id)
		}
		return res
	}))
}

// isMail reports whether an app fills the mail capability.
func isMail(a app) bool { return a.capability == contract.Mail }
