package check

import (
	"encoding/json"
	"net/http"
	"strings"
)

// meetProbes: La Suite Meet (video kind meet) and its LiveKit server.
//   - GET /api/v1.0/config/ on the meet host: the backend's frontend configuration
//     (suitenumerique/meet@v1.27.0 src/backend/core/api/__init__.py
//     get_frontend_configuration), whose livekit.url is LIVEKIT_API_URL, the URL every
//     browser connects to: it must be the workplace's LiveKit host.
//   - GET / on the livekit host: LiveKit's health check answers "OK" when its node
//     statistics are current (livekit/livekit@v1.13.5 pkg/service/server.go
//     healthCheck), through the same route browsers open the WebSocket on.
//   - GET /api/v1.0/authenticate/ with an identity component: mozilla-django-oidc's
//     authentication request (django-lasuite OIDCAuthenticationRequestView) redirects
//     to the provider's authorization endpoint as the registered client.
func meetProbes(a app, exp *expectations) []probe {
	meet, livekit := a.hosts["meet"], a.hosts["livekit"]
	base := "https://" + meet
	ps := []probe{{host: meet, url: base + "/api/v1.0/config/", judge: func(resp *http.Response, body []byte, _ *discovery) verdict {
		if v := status(resp, http.StatusOK, "Meet's configuration", "check the backend pod of the meet release (its log: database, Redis, settings) and the route of "+meet+"/api/"); !v.ok() {
			return v
		}
		var cfg struct {
			LiveKit *struct {
				URL string `json:"url"`
			} `json:"livekit"`
		}
		if json.Unmarshal(body, &cfg) != nil || cfg.LiveKit == nil {
			return unexpected("/api/v1.0/config/ is not Meet's frontend configuration (no livekit section)")
		}
		want := "https://" + livekit
		if strings.TrimSuffix(cfg.LiveKit.URL, "/") != want {
			return verdict{reason: ReasonUnexpectedBody, fix: "the chart sets LIVEKIT_API_URL from the livekit host: check the values of the meet release",
				message: "Meet sends browsers to LiveKit at " + cfg.LiveKit.URL + ", not at the workplace's " + want}
		}
		return passed("Meet's backend answers and sends browsers to LiveKit at %s", want)
	}}}
	if livekit != "" {
		ps = append(ps, probe{host: livekit, url: "https://" + livekit + "/", judge: func(resp *http.Response, body []byte, _ *discovery) verdict {
			if v := status(resp, http.StatusOK, "LiveKit's health check", "check the livekit pod of the meet release and the route of "+livekit); !v.ok() {
				if resp.StatusCode == http.StatusNotAcceptable {
					v.message += ": " + trimBody(body)
				}
				return v
			}
			if strings.TrimSpace(string(body)) != "OK" {
				return unexpected("LiveKit's health check answered %q, not \"OK\"", trimBody(body))
			}
			return passed("LiveKit is healthy")
		}})
	}
	if c := clientOf(exp, a.component); c != nil {
		ps = append(ps, probe{host: meet, needsDiscovery: true, url: base + "/api/v1.0/authenticate/",
			judge: handOff("Meet's backend", c.id, "check the backend of the meet release: its OIDC_OP_AUTHORIZATION_ENDPOINT and OIDC_RP_CLIENT_ID (oidc.endpoints for a provider that is not Keycloak)")})
	}
	return ps
}
