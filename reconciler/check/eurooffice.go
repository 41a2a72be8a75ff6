package check

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
)

// euroOfficeProbes: the Document Server of Euro-Office (an ONLYOFFICE Docs fork).
// /healthcheck answers "true" once docservice reaches its database and message
// queue ("false" otherwise: DocService/sources/DocsCoServer.js healthCheck, read in
// ONLYOFFICE/server v9.3.0.140, which Euro-Office/server forked); /hosting/discovery
// is the WOPI discovery OpenCloud reads (served only with wopi.enable, its urlsrc
// built from the request's public URL: DocService/sources/wopiClient.js discovery).
func euroOfficeProbes(a app) []probe {
	office := a.hosts["office"]
	base := "https://" + office
	health := probe{host: office, url: base + "/healthcheck", judge: func(resp *http.Response, body []byte, _ *discovery) verdict {
		if v := status(resp, http.StatusOK, "health check", "check the Document Server pod and the route of "+office); !v.ok() {
			return v
		}
		if got := string(bytes.TrimSpace(body)); got != "true" {
			return verdict{reason: ReasonUnexpectedBody,
				message: fmt.Sprintf("the Document Server reports itself unhealthy (%q)", got),
				fix:     "docservice cannot reach its database or RabbitMQ: read the pod's log (kubectl logs) and check the database Secret"}
		}
		return passed("the Document Server is healthy")
	}}
	wopi := probe{host: office, url: base + "/hosting/discovery", judge: func(resp *http.Response, body []byte, _ *discovery) verdict {
		if v := status(resp, http.StatusOK, "WOPI discovery", "WOPI_ENABLED must be true (chart value wopi.enabled); check the route of "+office); !v.ok() {
			return v
		}
		n, wrong, err := wopiActions(body, base)
		if err != nil {
			return unexpected("/hosting/discovery is not WOPI discovery XML: %v", err)
		}
		if wrong != "" {
			return verdict{reason: ReasonUnexpectedBody,
				message: fmt.Sprintf("WOPI discovery sends editors to %s, not to %s", wrong, base),
				fix:     "the Document Server builds its URLs from the request: the routing controller must pass Host and X-Forwarded-Proto"}
		}
		if n == 0 {
			return unexpected("WOPI discovery lists no editor")
		}
		return passed("WOPI discovery lists %d editor actions at %s", n, base)
	}}
	return []probe{health, wopi}
}

// wopiActions counts the actions of a WOPI discovery document and returns the first
// urlsrc outside base ("" when all are under it).
func wopiActions(body []byte, base string) (int, string, error) {
	var doc struct {
		XMLName xml.Name `xml:"wopi-discovery"`
		Zones   []struct {
			Apps []struct {
				Actions []struct {
					URLSrc string `xml:"urlsrc,attr"`
				} `xml:"action"`
			} `xml:"app"`
		} `xml:"net-zone"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		return 0, "", err
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
					return n, act.URLSrc, nil
				}
			}
		}
	}
	return n, "", nil
}
