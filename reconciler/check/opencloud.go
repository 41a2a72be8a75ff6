package check

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// openCloudApps maps an office component's kind to the app name OpenCloud's
// collaboration service registers for it (COLLABORATION_APP_NAME as
// charts/opencloud sets it, template opencloud.officeApp).
var openCloudApps = map[string]string{"collabora": "Collabora", "onlyoffice": "OnlyOffice", "eurooffice": "EuroOffice"}

// openCloudProbes: status.php (ocdav's status document behind the proxy, served
// without a login), the OpenID configuration the proxy serves on the files host
// (PROXY_OIDC_REWRITE_WELLKNOWN: fetched from the issuer, so it proves the proxy
// reaches and trusts the identity provider; services/proxy/pkg/staticroutes), the
// web client's config.json (its authority and client id: services/web/pkg/config
// OIDC), and with an office component the app list (frontend's /app/list, served
// without a login), which names the collaboration service's app once it has
// registered with the office server's WOPI discovery.
func openCloudProbes(a app, exp *expectations) []probe {
	files := a.hosts["files"]
	base := "https://" + files
	ps := []probe{{host: files, url: base + "/status.php", judge: func(resp *http.Response, body []byte, _ *discovery) verdict {
		if v := status(resp, http.StatusOK, "status.php", "check the OpenCloud pod and the route of "+files); !v.ok() {
			return v
		}
		var st struct {
			Installed   *bool  `json:"installed"`
			Maintenance bool   `json:"maintenance"`
			ProductName string `json:"productname"`
			Version     string `json:"versionstring"`
		}
		fix := "check that " + files + " is routed to the OpenCloud release's Service"
		switch {
		case json.Unmarshal(body, &st) != nil || st.Installed == nil:
			return verdict{reason: ReasonUnexpectedBody, fix: fix, message: "status.php is not OpenCloud's status document"}
		case !strings.EqualFold(st.ProductName, "OpenCloud"):
			return verdict{reason: ReasonUnexpectedBody, fix: fix, message: fmt.Sprintf("status.php names the product %q, not OpenCloud", st.ProductName)}
		case st.Maintenance:
			return verdict{reason: ReasonUnexpectedBody, message: "OpenCloud is in maintenance mode", fix: "check the OpenCloud pod's log"}
		}
		return passed("OpenCloud %s answers", st.Version)
	}}}
	if exp.identity != nil {
		ps = append(ps, openCloudSignInProbes(a, exp, files)...)
	}
	if p, ok := openCloudOfficeProbe(a, files); ok {
		ps = append(ps, p)
	}
	return ps
}

// openCloudSignInProbes: the proxy's OpenID configuration and the web client's
// config.json name the identity provider and the plan's client.
func openCloudSignInProbes(a app, exp *expectations, files string) []probe {
	base := "https://" + files
	issuer := exp.identity.issuerURL
	ps := []probe{{host: files, needsDiscovery: true, url: base + "/.well-known/openid-configuration",
		judge: func(resp *http.Response, body []byte, _ *discovery) verdict {
			fix := "the proxy fetches the issuer's discovery: check OC_OIDC_ISSUER and SSL_CERT_FILE of the opencloud container and its log"
			if v := status(resp, http.StatusOK, "the OpenID configuration on the files host", fix); !v.ok() {
				return v
			}
			var d discovery
			if err := json.Unmarshal(body, &d); err != nil || d.Issuer == "" {
				return verdict{reason: ReasonUnexpectedBody, fix: fix, message: "the files host serves no OpenID configuration at /.well-known/openid-configuration"}
			}
			if d.Issuer != issuer {
				return verdict{reason: ReasonIssuerMismatch, fix: fix,
					message: fmt.Sprintf("the files host points clients at issuer %s, the identity provider is %s", d.Issuer, issuer)}
			}
			return passed("the proxy serves the identity provider's configuration (issuer %s)", issuer)
		}}}
	if c := clientOf(exp, a.component); c != nil {
		ps = append(ps, probe{host: files, url: base + "/config.json", judge: func(resp *http.Response, body []byte, _ *discovery) verdict {
			fix := "check OC_OIDC_ISSUER and WEB_OIDC_CLIENT_ID of the opencloud container"
			if v := status(resp, http.StatusOK, "the web client's config.json", fix); !v.ok() {
				return v
			}
			var cfg struct {
				OIDC *struct {
					Authority string `json:"authority"`
					ClientID  string `json:"client_id"`
				} `json:"openIdConnect"`
			}
			switch {
			case json.Unmarshal(body, &cfg) != nil || cfg.OIDC == nil:
				return verdict{reason: ReasonUnexpectedBody, fix: fix, message: "config.json has no openIdConnect settings"}
			case strings.TrimSuffix(cfg.OIDC.Authority, "/") != strings.TrimSuffix(issuer, "/"):
				return verdict{reason: ReasonIssuerMismatch, fix: fix,
					message: fmt.Sprintf("the web client signs in at %s, the identity provider is %s", cfg.OIDC.Authority, issuer)}
			case cfg.OIDC.ClientID != c.id:
				return verdict{reason: ReasonUnexpectedBody, fix: fix,
					message: fmt.Sprintf("the web client signs in as client %q, the identity provider registers %q", cfg.OIDC.ClientID, c.id)}
			}
			return passed("the web client signs in at the identity provider as client %q", c.id)
		}})
	}
	return ps
}

// openCloudOfficeProbe: with an office component, the app list names the app the
// collaboration service registers for the office kind.
func openCloudOfficeProbe(a app, files string) (probe, bool) {
	kind := officeKind(a)
	if kind == "" {
		return probe{}, false
	}
	base := "https://" + files
	want := openCloudApps[kind]
	return probe{host: files, url: base + "/app/list", judge: func(resp *http.Response, body []byte, _ *discovery) verdict {
		fix := "check the collaboration container of the OpenCloud pod: it registers the app after reading the office server's WOPI discovery (COLLABORATION_APP_ADDR)"
		if want == "" {
			return verdict{reason: ReasonUnexpectedBody, fix: "select an office component OpenCloud speaks WOPI with (collabora, onlyoffice, eurooffice)",
				message: fmt.Sprintf("OpenCloud has no WOPI connector for office kind %q", kind)}
		}
		if v := status(resp, http.StatusOK, "the app list", fix); !v.ok() {
			return v
		}
		var list struct {
			MimeTypes []struct {
				Providers []struct {
					Name string `json:"name"`
				} `json:"app_providers"`
			} `json:"mime-types"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return verdict{reason: ReasonUnexpectedBody, fix: fix, message: "/app/list is not OpenCloud's app list"}
		}
		n := 0
		for _, m := range list.MimeTypes {
			for _, p := range m.Providers {
				if p.Name == want {
					n++
					break
				}
			}
		}
		if n == 0 {
			return verdict{reason: ReasonUnexpectedBody, fix: fix, message: fmt.Sprintf("no file type opens in %s: the collaboration service has not registered", want)}
		}
		return passed("%d file types open in %s", n, want)
	}}, true
}

// officeKind is the office kind the plan wired into a files component's values
// (office.kind, from the office component's `kind` export), "" without office.
func officeKind(a app) string {
	office, _ := a.values["office"].(map[string]any)
	if on, _ := office["enabled"].(bool); !on {
		return ""
	}
	kind, _ := office["kind"].(string)
	return strings.ToLower(kind)
}
