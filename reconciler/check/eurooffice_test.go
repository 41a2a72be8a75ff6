package check

import (
	"net/http"
	"strings"
	"testing"
)

// TestEuroOfficeProbes: a healthy Document Server with WOPI discovery at its public
// URL passes both probes; "false" from /healthcheck, discovery that sends editors
// to the pod's own address, WOPI switched off (404) and a page that is not
// discovery XML each fail with their reason. The probes are chosen by the office
// component's name, like Collabora's.
func TestEuroOfficeProbes(t *testing.T) {
	office := "office." + testDomain
	a := app{component: "eurooffice", capability: "office", hosts: map[string]string{"office": office}}
	ps := probesFor(a, &expectations{})
	if len(ps) != 2 {
		t.Fatalf("%d probes, want health check and WOPI discovery", len(ps))
	}
	health, wopi := ps[0], ps[1]
	if health.url != "https://"+office+"/healthcheck" || wopi.url != "https://"+office+"/hosting/discovery" {
		t.Fatalf("probes at %s and %s", health.url, wopi.url)
	}
	ok := &http.Response{StatusCode: http.StatusOK}
	cases := []struct {
		name   string
		p      probe
		resp   *http.Response
		body   []byte
		reason Reason
	}{
		{"healthy", health, ok, []byte("true"), ""},
		{"unhealthy", health, ok, []byte("false"), ReasonUnexpectedBody},
		{"bad gateway", health, &http.Response{StatusCode: http.StatusBadGateway}, []byte("<html>502</html>"), ReasonUnexpectedStatus},
		{"discovery at the public URL", wopi, ok, file(t, "eurooffice/discovery-public.xml").body, ""},
		{"discovery at localhost", wopi, ok, file(t, "eurooffice/discovery-localhost.xml").body, ReasonUnexpectedBody},
		{"WOPI off", wopi, &http.Response{StatusCode: http.StatusNotFound}, []byte("Not Found"), ReasonUnexpectedStatus},
		{"not XML", wopi, ok, []byte("<html>welcome</html>"), ReasonUnexpectedBody},
		{"no editors", wopi, ok, []byte(`<wopi-discovery><net-zone name="external-http"/></wopi-discovery>`), ReasonUnexpectedBody},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.p.judge(tc.resp, tc.body, nil)
			if tc.reason == "" {
				if !v.ok() {
					t.Fatalf("failed: %s", v.message)
				}
				if tc.p.url == wopi.url && !strings.Contains(v.message, "3 editor actions") {
					t.Errorf("message %q does not count the fixture's 3 actions", v.message)
				}
				return
			}
			if v.ok() || v.reason != tc.reason {
				t.Errorf("verdict %q (%s), want %s", v.reason, v.message, tc.reason)
			}
		})
	}
}
