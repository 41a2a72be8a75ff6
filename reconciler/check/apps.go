package check

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/platzwart/platzwart/reconciler/contract"
)

// probe is one request to an app and what a working installation answers.
type probe struct {
	// host is the public host, url the full URL requested.
	host, url string
	// needsDiscovery is true for a login hand-off, which must lead to the provider's
	// authorization endpoint.
	needsDiscovery bool
	// judge returns a zero verdict when the answer is right.
	judge func(resp *http.Response, body []byte, disc *discovery) verdict
	// link, when set, takes the URL from the body of the probe before (which must have
	// passed), resolved against url.
	link func(prev []byte) (string, bool)
}

// verdict is what is wrong with an answer; the zero value means nothing.
type verdict struct {
	reason  Reason
	message string
	fix     string
}

func (v verdict) ok() bool { return v.reason == "" }

// checkApp runs the probes of one component.
func (r *runner) checkApp(ctx context.Context, a app, tlsOK map[string]bool, disc *discovery) {
	if isMail(a) {
		r.checkMail(ctx, a, tlsOK, disc)
	}
	var prev []byte // body of the last probe that passed
	for _, p := range probesFor(a, r.exp) {
		body := prev
		prev = nil
		if p.link != nil {
			ref, ok := p.link(body)
			if !ok {
				r.report(skipped(CheckApp, p.url, a.component, "the page that links to it did not pass"))
				continue
			}
			p.url = resolveRef(p.url, ref)
			if hostOf(p.url) != p.host {
				r.report(Result{Name: CheckApp, Target: p.url, Component: a.component, Status: Fail, Reason: ReasonUnexpectedBody,
					Message: fmt.Sprintf("the login link leads off %s", p.host), Fix: "check the app's configured public URL (overwrite.cli.url, trusted domains)"})
				continue
			}
		}
		switch {
		case !tlsOK[p.host]:
			r.report(skipped(CheckApp, p.url, a.component, fmt.Sprintf("the TLS check of %s did not pass", p.host)))
			continue
		case p.needsDiscovery && disc == nil:
			r.report(skipped(CheckApp, p.url, a.component, "the identity provider's discovery did not pass"))
			continue
		}
		res := r.report(r.timed(ctx, func(ctx context.Context) Result {
			res := Result{Name: CheckApp, Target: p.url, Component: a.component, Status: Fail}
			resp, b, err := r.get(ctx, p.url)
			if err != nil {
				return connError(res, p.host, err)
			}
			v := p.judge(resp, b, disc)
			if v.ok() {
				res.Status = Pass
				res.Message = v.message
				body = b
				return res
			}
			res.Reason, res.Message, res.Fix = v.reason, v.message, v.fix
			return res
		}))
		if res.Status == Pass {
			prev = body
		}
	}
	if api := bbbAPIOf(a.values); a.component == "bigbluebutton" && api != nil {
		r.checkBBBAPI(ctx, a, api, tlsOK)
	}
}

// resolveRef resolves a link of a page at base.
func resolveRef(base, ref string) string {
	b, err := url.Parse(base)
	if err != nil {
		return ref
	}
	r, err := url.Parse(ref)
	if err != nil {
		return ref
	}
	return b.ResolveReference(r).String()
}

// probesFor returns the probes of a component, by the component's name: the built-in
// catalog's products. Components without probes (postgresql, valkey: not public) get none.
func probesFor(a app, exp *expectations) []probe {
	switch a.component {
	case "synapse":
		return synapseProbes(a, exp)
	case "nextcloud":
		return nextcloudProbes(a, exp)
	case "opencloud":
		return openCloudProbes(a, exp)
	case "collabora":
		return collaboraProbes(a)
	case "eurooffice":
		return euroOfficeProbes(a)
	case "jitsi":
		return jitsiProbes(a, exp)
	case "bigbluebutton":
		return greenlightProbes(a, exp)
	case "meet":
		return meetProbes(a, exp)
	case "portal":
		return portalProbes(a, exp)
	}
	return nil
}

// portalProbes: the start page asks for a login. oauth2-proxy with
// skip_provider_button answers a request without a session by sending the browser to
// the provider's authorization endpoint (oauth2-proxy v7.15.6 oauthproxy.go Proxy,
// ErrNeedsLogin → doOAuthStart) with its callback /oauth2/callback as redirect_uri:
// that it found the endpoint shows it read the issuer's discovery over TLS.
func portalProbes(a app, exp *expectations) []probe {
	c := clientOf(exp, a.component)
	if c == nil {
		return nil
	}
	portal := a.hosts["portal"]
	fix := "check the oauth2-proxy container of the portal release: its OAUTH2_PROXY_OIDC_ISSUER_URL, OAUTH2_PROXY_CLIENT_ID and its log (a failed discovery of the issuer stops it at start)"
	handOver := handOff("the portal", c.id, fix)
	return []probe{{host: portal, needsDiscovery: true, url: "https://" + portal + "/",
		judge: func(resp *http.Response, body []byte, disc *discovery) verdict {
			if v := handOver(resp, body, disc); !v.ok() {
				return v
			}
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if got := loc.Query().Get("redirect_uri"); !slices.Contains(c.redirectURIs, got) {
				return verdict{reason: ReasonUnexpectedBody, fix: "check OAUTH2_PROXY_REDIRECT_URL of the portal release",
					message: fmt.Sprintf("the portal asks the provider to return to %q, which is not its registered redirect URI %s", got, strings.Join(c.redirectURIs, ", "))}
			}
			return passed("the portal asks for a login at the identity provider as client %q", c.id)
		}}}
}

func status(resp *http.Response, want int, what, fix string) verdict {
	if resp.StatusCode == want {
		return verdict{}
	}
	return verdict{reason: ReasonUnexpectedStatus, message: fmt.Sprintf("%s answered HTTP %d, a working installation %d", what, resp.StatusCode, want), fix: fix}
}

func unexpected(format string, args ...any) verdict {
	return verdict{reason: ReasonUnexpectedBody, message: fmt.Sprintf(format, args...)}
}

func passed(format string, args ...any) verdict {
	return verdict{message: fmt.Sprintf(format, args...)}
}

// handOff judges a login hand-off: a redirect to the provider's authorization endpoint
// for client clientID. The app built it from the provider's discovery (Synapse,
// Nextcloud) or its configuration (the Jitsi adapter), so it proves the app reaches
// and trusts the provider.
func handOff(what, clientID, fix string) func(*http.Response, []byte, *discovery) verdict {
	return func(resp *http.Response, body []byte, disc *discovery) verdict {
		if !isRedirect(resp.StatusCode) {
			return verdict{reason: ReasonUnexpectedStatus, fix: fix,
				message: fmt.Sprintf("%s answered HTTP %d instead of sending the browser to the identity provider: %s", what, resp.StatusCode, trimBody(body))}
		}
		loc, err := url.Parse(resp.Header.Get("Location"))
		auth, aerr := url.Parse(disc.AuthorizationEndpoint)
		if err != nil || aerr != nil || loc.Host != auth.Host || loc.Path != auth.Path {
			return verdict{reason: ReasonUnexpectedBody, fix: fix,
				message: fmt.Sprintf("%s sends the browser to %s, not to the identity provider's authorization endpoint %s", what, resp.Header.Get("Location"), disc.AuthorizationEndpoint)}
		}
		if got := loc.Query().Get("client_id"); got != clientID {
			return verdict{reason: ReasonUnexpectedBody, fix: fix,
				message: fmt.Sprintf("%s signs in as client %q, the identity provider registers %q", what, got, clientID)}
		}
		return passed("%s hands the login to the identity provider as client %q", what, clientID)
	}
}

// synapseProbes: the client-server API's versions and login flows (Matrix spec
// GET /_matrix/client/versions and GET /_matrix/client/v3/login), the login hand-off,
// Element's config.json and the .well-known delegation of the bare domain. With
// Matrix Authentication Service (host "auth"), login is delegated to it: the flows
// offer m.login.sso without identity providers (MAS crates/handlers/src/compat/login.rs),
// Synapse publishes MAS's metadata (GET /_matrix/client/v1/auth_metadata, MSC2965,
// synapse/rest/client/auth_metadata.py), and MAS hands the login to the identity
// provider at /upstream/authorize/{provider_id} (MAS crates/router/src/endpoints.rs).
func synapseProbes(a app, exp *expectations) []probe {
	matrix, chat, wellknown, mas := a.hosts["matrix"], a.hosts["chat"], a.hosts["wellknown"], a.hosts["auth"]
	base := "https://" + matrix
	ps := []probe{
		{host: matrix, url: base + "/_matrix/client/versions", judge: func(resp *http.Response, body []byte, _ *discovery) verdict {
			if v := status(resp, http.StatusOK, "the homeserver", "check the Synapse pod and the route of "+matrix); !v.ok() {
				return v
			}
			var doc struct {
				Versions []string `json:"versions"`
			}
			if json.Unmarshal(body, &doc) != nil || len(doc.Versions) == 0 {
				return unexpected("/_matrix/client/versions is not a Matrix versions document")
			}
			return passed("Matrix client-server API, spec versions up to %s", doc.Versions[len(doc.Versions)-1])
		}},
	}
	if a.identity {
		ps = append(ps, probe{host: matrix, url: base + "/_matrix/client/v3/login", judge: func(resp *http.Response, body []byte, _ *discovery) verdict {
			if v := status(resp, http.StatusOK, "the login flows", "check the Synapse pod"); !v.ok() {
				return v
			}
			flows, ok := loginFlows(body)
			if !ok {
				return unexpected("/_matrix/client/v3/login is not a list of login flows")
			}
			for _, f := range flows {
				switch {
				case f.Type != "m.login.sso":
				case len(f.IdentityProviders) > 0:
					return passed("login through single sign-on (%s)", f.IdentityProviders[0].Name)
				case mas != "":
					return passed("login delegated to the Matrix Authentication Service (m.login.sso)")
				}
			}
			v := unexpected("the homeserver offers no single sign-on login (m.login.sso with an identity provider)")
			v.fix = "check oidc_providers in Synapse's configuration and Synapse's log at start-up (a failed discovery of the issuer disables it)"
			if mas != "" {
				v.fix = "check that the route of " + matrix + " sends the login endpoints to the Matrix Authentication Service"
			}
			return v
		}})
		if mas != "" {
			ps = append(ps, probe{host: matrix, url: base + "/_matrix/client/v1/auth_metadata", judge: func(resp *http.Response, body []byte, _ *discovery) verdict {
				if v := status(resp, http.StatusOK, "the homeserver's auth metadata", "check matrix_authentication_service in Synapse's configuration"); !v.ok() {
					return v
				}
				var md struct {
					Issuer string `json:"issuer"`
				}
				if json.Unmarshal(body, &md) != nil || hostOf(md.Issuer) != mas {
					return verdict{reason: ReasonUnexpectedBody, message: fmt.Sprintf("the homeserver's auth metadata names the issuer %q, not the Matrix Authentication Service at %s", md.Issuer, mas),
						fix: "check matrix_authentication_service.endpoint in Synapse's configuration and MAS's http.public_base"}
				}
				return passed("Matrix clients sign in at the Matrix Authentication Service %s", md.Issuer)
			}})
		}
		if c := clientOf(exp, a.component); c != nil {
			if u, host, ok := synapseHandOff(c, mas, matrix, chat); ok {
				ps = append(ps, probe{host: host, needsDiscovery: true, url: u,
					judge: handOff("the Matrix login", c.id, "the homeserver (or MAS) must reach the issuer and trust its certificate: check its log for the OIDC discovery error")})
			}
		}
	}
	if chat != "" {
		ps = append(ps, probe{host: chat, url: "https://" + chat + "/config.json", judge: func(resp *http.Response, body []byte, _ *discovery) verdict {
			return elementConfig(resp, body, base, a)
		}})
	}
	if wellknown != "" {
		ps = append(ps, probe{host: wellknown, url: "https://" + wellknown + "/.well-known/matrix/client", judge: func(resp *http.Response, body []byte, _ *discovery) verdict {
			if v := status(resp, http.StatusOK, ".well-known/matrix/client", "check the Element pod (it serves the delegation) and the route of "+wellknown); !v.ok() {
				return v
			}
			var doc struct {
				Homeserver struct {
					BaseURL string `json:"base_url"`
				} `json:"m.homeserver"`
			}
			if json.Unmarshal(body, &doc) != nil || strings.TrimSuffix(doc.Homeserver.BaseURL, "/") != base {
				return unexpected(".well-known/matrix/client does not point at %s", base)
			}
			return passed("clients discover the homeserver %s", base)
		}})
	}
	return ps
}

// synapseHandOff returns the URL where the Matrix login starts towards the identity
// provider: MAS's upstream authorize endpoint for the provider whose callback is the
// client's redirect URI, or Synapse's SSO redirect (one identity provider: it goes
// there directly, synapse/handlers/sso.py handle_redirect_request).
func synapseHandOff(c *oidcClient, mas, matrix, chat string) (string, string, bool) {
	if mas == "" {
		return "https://" + matrix + "/_matrix/client/v3/login/sso/redirect?redirectUrl=" + url.QueryEscape("https://"+chat+"/"), matrix, true
	}
	for _, r := range c.redirectURIs {
		u, err := url.Parse(r)
		if err != nil || u.Host != mas {
			continue
		}
		if id, ok := strings.CutPrefix(u.Path, "/upstream/callback/"); ok && id != "" {
			return "https://" + mas + "/upstream/authorize/" + id, mas, true
		}
	}
	return "", "", false
}

type loginFlow struct {
	Type              string `json:"type"`
	IdentityProviders []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"identity_providers"`
}

func loginFlows(body []byte) ([]loginFlow, bool) {
	var doc struct {
		Flows []loginFlow `json:"flows"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Flows == nil {
		return nil, false
	}
	return doc.Flows, true
}

// elementConfig judges Element Web's config.json (element-web docs/config.md): its
// homeserver, and its Jitsi domain following the selected video component.
func elementConfig(resp *http.Response, body []byte, homeserver string, a app) verdict {
	if v := status(resp, http.StatusOK, "Element's config.json", "check the Element pod and the route of "+a.hosts["chat"]); !v.ok() {
		return v
	}
	var cfg struct {
		DefaultServerConfig struct {
			Homeserver struct {
				BaseURL string `json:"base_url"`
			} `json:"m.homeserver"`
		} `json:"default_server_config"`
		Jitsi *struct {
			PreferredDomain string `json:"preferred_domain"`
		} `json:"jitsi"`
	}
	if err := json.Unmarshal(body, &cfg); err != nil {
		return unexpected("Element's config.json is not JSON: %v", err)
	}
	if got := strings.TrimSuffix(cfg.DefaultServerConfig.Homeserver.BaseURL, "/"); got != homeserver {
		return unexpected("Element's config.json points at the homeserver %q, not %s", got, homeserver)
	}
	video := a.selected[contract.Video]
	var got string
	if cfg.Jitsi != nil {
		got = cfg.Jitsi.PreferredDomain
	}
	fix := "run platzwart apply (Element's config follows the video component), then reload Element"
	switch want := video["meet"]; {
	case a.videoKind == "jitsi" && got != want:
		return verdict{reason: ReasonUnexpectedBody, fix: fix, message: fmt.Sprintf("Element's conferences go to %q, the workplace's Jitsi is %s", got, want)}
	case a.videoKind != "jitsi" && got != "":
		return verdict{reason: ReasonUnexpectedBody, fix: fix, message: fmt.Sprintf("Element's conferences go to the Jitsi %q, but the workplace has no Jitsi", got)}
	case a.videoKind == "jitsi":
		return passed("Element uses the homeserver %s and the workplace's Jitsi %s", homeserver, got)
	}
	return passed("Element uses the homeserver %s (no Jitsi conferences)", homeserver)
}

// nextcloudProbes: status.php (Nextcloud server, status.php), the login page listing
// user_oidc's provider (core's LoginController provides the initial state
// alternativeLogins; user_oidc's AlternativeLoginProvider adds "Login with <name>" at
// /apps/user_oidc/login/<id>), and that provider's hand-off.
func nextcloudProbes(a app, exp *expectations) []probe {
	files := a.hosts["files"]
	base := "https://" + files
	ps := []probe{{host: files, url: base + "/status.php", judge: func(resp *http.Response, body []byte, _ *discovery) verdict {
		if v := status(resp, http.StatusOK, "status.php", "check the Nextcloud pod and the route of "+files); !v.ok() {
			return v
		}
		var st struct {
			Installed      *bool  `json:"installed"`
			Maintenance    bool   `json:"maintenance"`
			NeedsDBUpgrade bool   `json:"needsDbUpgrade"`
			VersionString  string `json:"versionstring"`
		}
		switch {
		case json.Unmarshal(body, &st) != nil || st.Installed == nil:
			return unexpected("status.php is not Nextcloud's status document")
		case !*st.Installed:
			return verdict{reason: ReasonUnexpectedBody, message: "Nextcloud is not installed", fix: "check the logs of the Nextcloud pod's installation (first start) and of the occ hook Job"}
		case st.Maintenance:
			return verdict{reason: ReasonUnexpectedBody, message: "Nextcloud is in maintenance mode", fix: "wait for the upgrade to finish, or run occ maintenance:mode --off"}
		case st.NeedsDBUpgrade:
			return verdict{reason: ReasonUnexpectedBody, message: "Nextcloud needs a database upgrade", fix: "run occ upgrade in the Nextcloud pod"}
		}
		return passed("Nextcloud %s installed", st.VersionString)
	}}}
	if !a.identity {
		return ps
	}
	ps = append(ps, probe{host: files, url: base + "/login", judge: func(resp *http.Response, body []byte, _ *discovery) verdict {
		if v := status(resp, http.StatusOK, "the login page", "check the Nextcloud pod"); !v.ok() {
			return v
		}
		logins, ok := alternativeLogins(body)
		if !ok {
			return unexpected("the login page carries no alternativeLogins state: is this Nextcloud's login page?")
		}
		for _, l := range logins {
			if isUserOIDC(l.Href) {
				return passed("the login page offers %q", l.Name)
			}
		}
		return verdict{reason: ReasonUnexpectedBody, message: "the login page offers no user_oidc provider",
			fix: "check the occ hook Job of the Nextcloud release (it enables user_oidc and adds the provider)"}
	}})
	if c := clientOf(exp, a.component); c != nil {
		ps = append(ps, probe{host: files, needsDiscovery: true, url: base + "/",
			link:  userOIDCLogin,
			judge: handOff("Nextcloud's user_oidc", c.id, "Nextcloud must reach the issuer's discovery and trust its certificate: check nextcloud.log for user_oidc errors")})
	}
	return ps
}

// userOIDCLogin returns the first user_oidc login link of a login page.
func userOIDCLogin(page []byte) (string, bool) {
	logins, _ := alternativeLogins(page)
	for _, l := range logins {
		if isUserOIDC(l.Href) {
			return l.Href, true
		}
	}
	return "", false
}

func isUserOIDC(href string) bool {
	u, err := url.Parse(href)
	return err == nil && strings.HasPrefix(u.Path, "/apps/user_oidc/login/")
}

type alternativeLogin struct {
	Name string `json:"name"`
	Href string `json:"href"`
}

var initialStateAltLogins = regexp.MustCompile(`<input[^>]*id="initial-state-core-alternativeLogins"[^>]*value="([^"]*)"`)

// alternativeLogins decodes the initial state Nextcloud renders into the login page:
// <input type="hidden" id="initial-state-<app>-<key>" value="<base64 JSON>">
// (core/templates/layout.guest.php).
func alternativeLogins(body []byte) ([]alternativeLogin, bool) {
	m := initialStateAltLogins.FindSubmatch(body)
	if m == nil {
		return nil, false
	}
	raw, err := base64.StdEncoding.DecodeString(html.UnescapeString(string(m[1])))
	if err != nil {
		return nil, false
	}
	var out []alternativeLogin
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, false
	}
	return out, true
}

// collaboraProbes: WOPI discovery (Collabora Online, discovery.xml served at
// /hosting/discovery with every urlsrc rewritten to the server's public URL).
func collaboraProbes(a app) []probe {
	office := a.hosts["office"]
	base := "https://" + office
	return []probe{{host: office, url: base + "/hosting/discovery", judge: func(resp *http.Response, body []byte, _ *discovery) verdict {
		if v := status(resp, http.StatusOK, "WOPI discovery", "check the Collabora pod and the route of "+office); !v.ok() {
			return v
		}
		var doc struct {
			XMLName xml.Name `xml:"wopi-discovery"`
			Zones   []struct {
				Apps []struct {
					Name    string `xml:"name,attr"`
					Actions []struct {
						Ext    string `xml:"ext,attr"`
						URLSrc string `xml:"urlsrc,attr"`
					} `xml:"action"`
				} `xml:"app"`
			} `xml:"net-zone"`
		}
		if err := xml.Unmarshal(body, &doc); err != nil {
			return unexpected("/hosting/discovery is not WOPI discovery XML: %v", err)
		}
		n := 0
		for _, z := range doc.Zones {
			for _, app := range z.Apps {
				for _, act := range app.Actions {
					if act.URLSrc == "" {
						continue
					}
					n++
					if !strings.HasPrefix(act.URLSrc, base+"/") {
						return verdict{reason: ReasonUnexpectedBody,
							message: fmt.Sprintf("WOPI discovery sends editors to %s, not to %s", act.URLSrc, base),
							fix:     "Collabora must know its public URL: check server_name and ssl.termination in the chart's settings"}
					}
				}
			}
		}
		if n == 0 {
			return unexpected("WOPI discovery lists no editor")
		}
		return passed("WOPI discovery lists %d editor actions at %s", n, base)
	}}}
}

// jsAssignment matches a string assignment of Jitsi's generated config.js, such as
// config.hosts.authdomain = 'meet.jitsi'; (docker-jitsi-meet web/rootfs/defaults/
// system-config.js and settings-config.js).
var jsAssignment = regexp.MustCompile(`(?m)^\s*config\.([A-Za-z0-9_.]+)\s*=\s*'([^']*)';`)

// jitsiConfig returns the string settings of a config.js.
func jitsiConfig(body []byte) map[string]string {
	out := map[string]string{}
	for _, m := range jsAssignment.FindAllSubmatch(body, -1) {
		out[string(m[1])] = string(m[2])
	}
	return out
}

// jitsiProbes: config.js asking for authentication (ENABLE_AUTH sets
// config.hosts.authdomain) and the OIDC adapter's hand-off (/oidc/auth redirects to
// the provider, nordeck/jitsi-keycloak-adapter adapter.ts).
func jitsiProbes(a app, exp *expectations) []probe {
	meet := a.hosts["meet"]
	base := "https://" + meet
	ps := []probe{{host: meet, url: base + "/config.js", judge: func(resp *http.Response, body []byte, _ *discovery) verdict {
		if v := status(resp, http.StatusOK, "config.js", "check the Jitsi web pod and the route of "+meet); !v.ok() {
			return v
		}
		cfg := jitsiConfig(body)
		if cfg["hosts.domain"] == "" {
			return unexpected("config.js is not Jitsi Meet's configuration (no config.hosts.domain)")
		}
		if !a.identity {
			return passed("Jitsi Meet's configuration (XMPP domain %s)", cfg["hosts.domain"])
		}
		if cfg["hosts.authdomain"] == "" && cfg["tokenAuthUrl"] == "" {
			return verdict{reason: ReasonUnexpectedBody, message: "config.js lets everyone open meetings: it asks for no authentication (no config.hosts.authdomain or config.tokenAuthUrl)",
				fix: "the chart sets ENABLE_AUTH=1 and AUTH_TYPE=jwt with auth.enabled: check the values of the Jitsi release"}
		}
		return passed("config.js asks for authentication (auth domain %s)", cfg["hosts.authdomain"])
	}}}
	if c := clientOf(exp, a.component); c != nil {
		ps = append(ps, probe{host: meet, needsDiscovery: true, url: base + "/oidc/auth?path=%2Fplatzwart-check&search=&hash=",
			judge: handOff("Jitsi's OIDC adapter", c.id, "check the adapter Deployment of the Jitsi release and its KEYCLOAK_ORIGIN, KEYCLOAK_REALM and KEYCLOAK_CLIENT_ID")})
	}
	return ps
}

// greenlightProbes: Greenlight v3's /health_check (HealthChecksController#check:
// "success", or 500 naming the database, Redis, SMTP or BigBlueButton) and
// /api/v1/env.json (EnvController#index: EXTERNAL_AUTH is true with OIDC).
func greenlightProbes(a app, _ *expectations) []probe {
	meet := a.hosts["meet"]
	base := "https://" + meet
	ps := []probe{{host: meet, url: base + "/health_check", judge: func(resp *http.Response, body []byte, _ *discovery) verdict {
		if resp.StatusCode == http.StatusInternalServerError {
			return verdict{reason: ReasonUnexpectedStatus, message: "Greenlight's health check fails: " + trimBody(body),
				fix: "check the database, Redis and BigBlueButton server it names (values servers[] of bigbluebutton)"}
		}
		if v := status(resp, http.StatusOK, "Greenlight's health check", "check the Greenlight pod and the route of "+meet); !v.ok() {
			return v
		}
		if strings.TrimSpace(string(body)) != "success" {
			return unexpected("Greenlight's health check answered %q, not \"success\"", trimBody(body))
		}
		return passed("Greenlight is healthy")
	}}}
	if a.identity {
		ps = append(ps, probe{host: meet, url: base + "/api/v1/env.json", judge: func(resp *http.Response, body []byte, _ *discovery) verdict {
			if v := status(resp, http.StatusOK, "Greenlight's environment", "check the Greenlight pod"); !v.ok() {
				return v
			}
			var env struct {
				Data *struct {
					ExternalAuth bool `json:"EXTERNAL_AUTH"`
				} `json:"data"`
			}
			if json.Unmarshal(body, &env) != nil || env.Data == nil {
				return unexpected("/api/v1/env.json is not Greenlight's environment document")
			}
			if !env.Data.ExternalAuth {
				return verdict{reason: ReasonUnexpectedBody, message: "Greenlight offers no single sign-on (EXTERNAL_AUTH is false)",
					fix: "the chart sets OPENID_CONNECT_ISSUER from the identity component: check the values of the bigbluebutton release"}
			}
			return passed("Greenlight signs in through the identity provider")
		}})
	}
	return ps
}

func clientOf(exp *expectations, component string) *oidcClient {
	for i := range exp.clients {
		if exp.clients[i].component == component {
			return &exp.clients[i]
		}
	}
	return nil
}
