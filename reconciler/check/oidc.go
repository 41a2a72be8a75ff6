package check

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxBody bounds what a probe reads of any answer.
const maxBody = 1 << 20

// discovery is the part of the OpenID provider metadata the checks use
// (OpenID Connect Discovery 1.0, section 3; RFC 7009 for revocation_endpoint).
type discovery struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
	EndSessionEndpoint    string `json:"end_session_endpoint"`
}

// oauthError is an OAuth 2.0 error response (RFC 6749, section 5.2).
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// get fetches u and returns status, headers and at most maxBody bytes of the body.
func (r *runner) get(ctx context.Context, u string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	return r.do(req)
}

func (r *runner) do(req *http.Request) (*http.Response, []byte, error) {
	req.Header.Set("User-Agent", "platzwart-check")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, nil, err
	}
	return resp, body, nil
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Hostname()
}

// checkDiscovery fetches the issuer's discovery document and compares its issuer.
func (r *runner) checkDiscovery(ctx context.Context, tlsOK map[string]bool) *discovery {
	id := r.exp.identity
	u := strings.TrimSuffix(id.issuerURL, "/") + "/.well-known/openid-configuration"
	if h := hostOf(id.issuerURL); !tlsOK[h] {
		r.report(skipped(CheckDiscovery, u, id.component, fmt.Sprintf("the TLS check of %s did not pass", h)))
		return nil
	}
	var disc *discovery
	r.report(r.timed(ctx, func(ctx context.Context) Result {
		res := Result{Name: CheckDiscovery, Target: u, Component: id.component, Status: Fail}
		resp, body, err := r.get(ctx, u)
		if err != nil {
			return connError(res, hostOf(u), err)
		}
		if resp.StatusCode != http.StatusOK {
			res.Reason = ReasonUnexpectedStatus
			res.Message = fmt.Sprintf("discovery answered HTTP %d, not 200", resp.StatusCode)
			res.Fix = fmt.Sprintf("check that the identity provider runs and that its realm %q exists (Keycloak: the realm import Job of release %s)", r.plan.Workplace, r.releaseOf(id.component))
			if id.external {
				res.Fix = fmt.Sprintf("set spec.values.%s.issuerURL to the issuer of the organisation's provider (its discovery document is at <issuer>/.well-known/openid-configuration)", id.component)
			}
			return res
		}
		var d discovery
		if err := json.Unmarshal(body, &d); err != nil || d.Issuer == "" || d.AuthorizationEndpoint == "" || d.TokenEndpoint == "" || d.JWKSURI == "" {
			res.Reason = ReasonDiscoveryInvalid
			res.Message = "discovery is not OpenID provider metadata (issuer, authorization_endpoint, token_endpoint and jwks_uri are required)"
			res.Fix = "check that the route of " + hostOf(u) + " leads to the identity provider"
			return res
		}
		if d.Issuer != id.issuerURL {
			res.Reason = ReasonIssuerMismatch
			res.Message = fmt.Sprintf("discovery names the issuer %q, the workplace's apps expect %q", d.Issuer, id.issuerURL)
			res.Fix = "set the identity provider's public hostname to the workplace's (Keycloak: hostname and proxy headers); apps reject tokens of another issuer"
			if id.external {
				res.Fix = fmt.Sprintf("set spec.values.%s.issuerURL to exactly the issuer the provider names; apps reject tokens of another issuer", id.component)
			}
			return res
		}
		disc = &d
		res.Status = Pass
		res.Message = "issuer " + d.Issuer
		return res
	}))
	return disc
}

func (r *runner) releaseOf(component string) string {
	for _, rel := range r.plan.Releases {
		if rel.Component == component {
			return rel.Name
		}
	}
	return component
}

// checkClient checks that the provider knows client c with its secret, its redirect
// URIs and its post-logout redirect URIs, and refuses a redirect URI nobody registered.
func (r *runner) checkClient(ctx context.Context, c oidcClient, disc *discovery) {
	unregistered := "https://" + c.probeHost + "/platzwart-check/unregistered-redirect"
	if disc == nil {
		why := "the identity provider's discovery did not pass"
		r.report(skipped(CheckClient, c.id, c.component, why))
		for _, u := range c.redirectURIs {
			r.report(skipped(CheckRedirect, u, c.component, why))
		}
		r.report(skipped(CheckRedirect, unregistered+" (unregistered)", c.component, why))
		for _, u := range c.postLogoutRedirectURIs {
			r.report(skipped(CheckLogout, u, c.component, why))
		}
		return
	}
	r.report(r.timed(ctx, func(ctx context.Context) Result { return r.clientAuth(ctx, c, disc) }))
	for _, u := range c.redirectURIs {
		r.report(r.timed(ctx, func(ctx context.Context) Result { return r.redirect(ctx, c, disc, u, true) }))
	}
	r.report(r.timed(ctx, func(ctx context.Context) Result { return r.redirect(ctx, c, disc, unregistered, false) }))
	for _, u := range c.postLogoutRedirectURIs {
		r.report(r.timed(ctx, func(ctx context.Context) Result { return r.logout(ctx, c, disc, u) }))
	}
}

// clientAuth authenticates the client at the revocation endpoint with a token that
// does not exist. RFC 7009 (section 2.1) has the provider authenticate the client
// first and (section 2.2) answer 200 for an invalid token: 200 means the provider knows
// the client and its secret, 401 / invalid_client that it does not. Keycloak
// (TokenRevocationEndpoint: checkClient before checkToken, "Invalid token" with status
// 200) and zitadel/oidc's op (ParseTokenRevocationRequest authenticates, RevokeToken
// ignores unknown tokens) both do so. It changes nothing: no token is revoked.
func (r *runner) clientAuth(ctx context.Context, c oidcClient, disc *discovery) Result {
	res := Result{Name: CheckClient, Target: c.id, Component: c.component, Status: Skip, Reason: ReasonNotApplicable}
	switch {
	case c.secret == nil:
		res.Message = "public client: no secret to authenticate with"
		return res
	case r.opts.Secrets == nil:
		res.Message = "no cluster access to read the client secret"
		res.Fix = "pass --kubeconfig/--context and -n"
		return res
	case disc.RevocationEndpoint == "":
		res.Message = "the provider advertises no revocation_endpoint to authenticate at"
		return res
	}
	res.Status, res.Reason = Fail, ""
	data, err := r.opts.Secrets.SecretData(ctx, r.plan.Namespace, c.secret.Name)
	if err != nil || len(data[c.secret.Key]) == 0 {
		res.Reason = ReasonSecretUnavailable
		res.Message = fmt.Sprintf("cannot read the client secret (Secret %s key %s)", c.secret.Name, c.secret.Key)
		if err != nil {
			res.Message += ": " + err.Error()
		}
		res.Fix = "run platzwart apply (it generates the secret), and check that you may get Secrets in " + r.plan.Namespace
		if r.exp.identity.external {
			res.Fix = fmt.Sprintf("create Secret %s in namespace %s with key %s holding the secret the provider issued for client %q (spec.values.%s.clients.%s.clientSecret), and check that you may get Secrets there",
				c.secret.Name, r.plan.Namespace, c.secret.Key, c.id, r.exp.identity.component, c.component)
		}
		return res
	}
	form := url.Values{"token": {"platzwart-check-" + rand.Text()}, "token_type_hint": {"refresh_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, disc.RevocationEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		res.Reason = ReasonDiscoveryInvalid
		res.Message = fmt.Sprintf("revocation_endpoint %q: %v", disc.RevocationEndpoint, err)
		return res
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// client_secret_basic: id and secret are form-urlencoded first (RFC 6749, 2.3.1).
	req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(string(data[c.secret.Key])))
	resp, body, err := r.do(req)
	if err != nil {
		return connError(res, hostOf(disc.RevocationEndpoint), err)
	}
	var oe oauthError
	_ = json.Unmarshal(body, &oe)
	switch {
	case resp.StatusCode == http.StatusOK:
		res.Status = Pass
		res.Message = fmt.Sprintf("the provider authenticates client %q with the secret of Secret %s", c.id, c.secret.Name)
	case resp.StatusCode == http.StatusUnauthorized || oe.Error == "invalid_client" || oe.Error == "unauthorized_client":
		res.Reason = ReasonClientUnauthorized
		res.Message = fmt.Sprintf("the provider does not know client %q or rejects its secret (HTTP %d %s)", c.id, resp.StatusCode, oe.Error)
		res.Fix = fmt.Sprintf("run platzwart apply: the identity component registers one client per consumer with the secret of Secret %s (Keycloak: see the logs of the config Job of release %s)",
			c.secret.Name, r.releaseOf(r.exp.identity.component))
		if r.exp.identity.external {
			res.Fix = fmt.Sprintf("register client %q at the provider, or correct spec.values.%s.clients.%s; put the secret the provider issued into Secret %s key %s",
				c.id, r.exp.identity.component, c.component, c.secret.Name, c.secret.Key)
		}
	default:
		res.Reason = ReasonUnexpectedStatus
		res.Message = fmt.Sprintf("client authentication answered HTTP %d %s", resp.StatusCode, oe.Error)
		res.Fix = "check the identity provider's logs"
	}
	return res
}

// redirect sends an authorization request for c with redirectURI. A registered URI
// leads to the login page (200, or a redirect to it); an unregistered one to the
// provider's error page (400) and never back to the URI: OpenID Connect Core 1.0,
// 3.1.2.1 and 3.1.2.6; Keycloak (AuthorizationEndpoint: "Invalid parameter:
// redirect_uri", 400) and zitadel/oidc's op (ValidateAuthReqRedirectURI, redirects
// disabled for the error, 400) both answer so.
func (r *runner) redirect(ctx context.Context, c oidcClient, disc *discovery, redirectURI string, registered bool) Result {
	res := Result{Name: CheckRedirect, Target: redirectURI, Component: c.component, Status: Fail}
	if !registered {
		res.Target = redirectURI + " (unregistered)"
	}
	q := url.Values{
		"client_id": {c.id}, "redirect_uri": {redirectURI}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"platzwart-check"}, "nonce": {rand.Text()},
	}
	u, err := withQuery(disc.AuthorizationEndpoint, q)
	if err != nil {
		res.Reason = ReasonDiscoveryInvalid
		res.Message = err.Error()
		return res
	}
	resp, body, err := r.get(ctx, u)
	if err != nil {
		return connError(res, hostOf(u), err)
	}
	loc := resp.Header.Get("Location")
	toURI := isRedirect(resp.StatusCode) && strings.HasPrefix(loc, redirectURI)
	accepted := resp.StatusCode == http.StatusOK || (isRedirect(resp.StatusCode) && !toURI)
	refused := resp.StatusCode >= 400 && resp.StatusCode < 500
	switch {
	case registered && accepted:
		res.Status = Pass
		res.Message = fmt.Sprintf("client %q: the provider accepts this redirect URI and shows its login", c.id)
	case registered && refused:
		res.Reason = ReasonRedirectURIRejected
		res.Message = fmt.Sprintf("client %q: the provider refuses this redirect URI, or does not know the client (HTTP %d: %s)", c.id, resp.StatusCode, trimBody(body))
		res.Fix = fmt.Sprintf("run platzwart apply: the identity component registers %s for client %q (Keycloak: see the logs of the config Job of release %s)",
			redirectURI, c.id, r.releaseOf(r.exp.identity.component))
		if r.exp.identity.external {
			res.Fix = fmt.Sprintf("register %s as a redirect URI of client %q at the provider (platzwart plan lists every URI to register)", redirectURI, c.id)
		}
	case registered && toURI:
		res.Reason = ReasonUnexpectedStatus
		res.Message = fmt.Sprintf("client %q: the provider sends an error back to the app: %s", c.id, errorOf(loc))
		res.Fix = "check the client's settings at the identity provider (standard flow enabled, scope openid allowed)"
	case !registered && refused:
		res.Status = Pass
		res.Message = fmt.Sprintf("client %q: the provider refuses a redirect URI nobody registered (HTTP %d)", c.id, resp.StatusCode)
	case !registered && (accepted || toURI):
		res.Reason = ReasonRedirectURIUnchecked
		res.Message = fmt.Sprintf("client %q: the provider accepts a redirect URI nobody registered: authorization codes could be sent anywhere", c.id)
		res.Fix = "remove wildcard redirect URIs of this client at the identity provider"
	default:
		res.Reason = ReasonUnexpectedStatus
		res.Message = fmt.Sprintf("the authorization endpoint answered HTTP %d", resp.StatusCode)
		res.Fix = "check the identity provider's logs"
	}
	return res
}

// logout asks the provider to end a session with client_id and post_logout_redirect_uri
// (OpenID Connect RP-Initiated Logout 1.0, section 2; no id_token_hint, so no session
// is ended). A registered URI leads to the confirmation page (Keycloak, 200) or to the
// URI (zitadel/oidc's op, 302); an unregistered one to an error (400).
func (r *runner) logout(ctx context.Context, c oidcClient, disc *discovery, uri string) Result {
	res := Result{Name: CheckLogout, Target: uri, Component: c.component, Status: Fail}
	if disc.EndSessionEndpoint == "" {
		res.Status, res.Reason = Skip, ReasonNotApplicable
		res.Message = "the provider advertises no end_session_endpoint"
		return res
	}
	u, err := withQuery(disc.EndSessionEndpoint, url.Values{"client_id": {c.id}, "post_logout_redirect_uri": {uri}})
	if err != nil {
		res.Reason = ReasonDiscoveryInvalid
		res.Message = err.Error()
		return res
	}
	resp, body, err := r.get(ctx, u)
	if err != nil {
		return connError(res, hostOf(u), err)
	}
	switch {
	case resp.StatusCode == http.StatusOK || isRedirect(resp.StatusCode):
		res.Status = Pass
		res.Message = fmt.Sprintf("client %q: the provider accepts this post-logout redirect URI", c.id)
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		res.Reason = ReasonLogoutURIRejected
		res.Message = fmt.Sprintf("client %q: the provider refuses this post-logout redirect URI (HTTP %d: %s)", c.id, resp.StatusCode, trimBody(body))
		res.Fix = fmt.Sprintf("run platzwart apply: the identity component registers %s for client %q", uri, c.id)
		if r.exp.identity.external {
			res.Fix = fmt.Sprintf("register %s as a post-logout redirect URI of client %q at the provider (platzwart plan lists every URI to register)", uri, c.id)
		}
	default:
		res.Reason = ReasonUnexpectedStatus
		res.Message = fmt.Sprintf("the end-session endpoint answered HTTP %d", resp.StatusCode)
		res.Fix = "check the identity provider's logs"
	}
	return res
}

func isRedirect(code int) bool { return code >= 300 && code < 400 }

// withQuery adds q to the endpoint's own query.
func withQuery(endpoint string, q url.Values) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" {
		return "", fmt.Errorf("endpoint %q is not an https URL", endpoint)
	}
	own := u.Query()
	for k, v := range q {
		own[k] = v
	}
	u.RawQuery = own.Encode()
	return u.String(), nil
}

// errorOf returns the OAuth error a redirect back to the client carries.
func errorOf(location string) string {
	u, err := url.Parse(location)
	if err != nil {
		return "an unreadable redirect"
	}
	q := u.Query()
	if e := q.Get("error"); e != "" {
		return strings.TrimSpace(e + " " + q.Get("error_description"))
	}
	return "a redirect without a code"
}
