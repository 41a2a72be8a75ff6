package catalog_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/platzwart/platzwart/reconciler/catalog"
)

// mailComponent is a component x without a chart, hosts web and mx, a Secret dkim with an rsa key and a hex key,
// and the given lines indented under spec.
func mailComponent(extra string) fstest.MapFS {
	doc := `apiVersion: platzwart.io/v1alpha1
kind: Component
metadata: {name: x}
spec:
  capability: redis
  licence: MIT
  url: https://example.org
  hosts:
    - {name: web, subdomain: mail}
    - {name: mx, subdomain: mx}
  secrets:
    - name: dkim
      keys:
        private.pem: {format: rsa}
        token: {format: hex}
` + extra
	return fstest.MapFS{"components/x/component.yaml": &fstest.MapFile{Data: []byte(doc)}}
}

// TestDNSRecordsAccepted: every record type a mail component needs loads, with its
// fields as declared.
func TestDNSRecordsAccepted(t *testing.T) {
	c, err := catalog.Load(catalog.Layer{FS: mailComponent(`  dns:
    - {type: MX, name: "@", host: mx, priority: 10}
    - {type: TXT, text: "v=spf1 mx -all"}
    - {type: TXT, name: _dmarc, ttl: 300, text: "v=DMARC1; p=quarantine; rua=mailto:postmaster@{{ .Workplace.Domain }}"}
    - {type: SRV, name: _submissions._tcp, host: mx, priority: 0, weight: 1, port: 465}
    - {type: CNAME, name: autoconfig, host: web}
    - {type: DKIM, selector: platzwart, secret: dkim, key: private.pem}
`), Label: "repo"})
	if err != nil {
		t.Fatal(err)
	}
	recs := c.Components["x"].Spec.DNS
	if len(recs) != 6 || recs[3].Port != 465 || recs[5].Secret != "dkim" || recs[2].TTL != 300 {
		t.Errorf("records = %+v", recs)
	}
}

// TestDNSRecordsRefused: every mistake in spec.dns or spec.hosts[].service names the
// file, the document and the field.
func TestDNSRecordsRefused(t *testing.T) {
	const prefix = `repo/components/x/component.yaml: Component "x": `
	cases := []struct{ name, extra, want string }{
		{"unknown type", "  dns: [{type: SPF, text: x}]\n", prefix + `spec.dns[0].type: unknown record type "SPF" (known: MX, TXT, SRV, CNAME, DKIM)`},
		{"MX without host", "  dns: [{type: MX}]\n", prefix + "spec.dns[0].host: required: the key of the host the record points at (known: mx, web)"},
		{"MX to an unknown host", "  dns: [{type: MX, host: smtp}]\n", prefix + `spec.dns[0].host: "smtp" is not one of spec.hosts (known: mx, web)`},
		{"MX priority out of range", "  dns: [{type: MX, host: mx, priority: 70000}]\n", prefix + "spec.dns[0].priority: must be between 0 and 65535"},
		{"negative TTL", "  dns: [{type: MX, host: mx, ttl: -1}]\n", prefix + "spec.dns[0].ttl: must be between 1 and"},
		{"TXT without text", "  dns: [{type: TXT, name: _dmarc}]\n", prefix + "spec.dns[0].text: required"},
		{"TXT with a bad template", "  dns: [{type: TXT, text: \"v=spf1 {{ .Hosts.mx \"}]\n", prefix + "spec.dns[0].text: template:"},
		{"TXT with a host", "  dns: [{type: TXT, text: x, host: mx}]\n", prefix + "spec.dns[0].host: not used by TXT records"},
		{"bad name", "  dns: [{type: TXT, name: \"a b\", text: x}]\n", prefix + `spec.dns[0].name: "a b": label "a b" is not a DNS label`},
		{"absolute name", "  dns: [{type: TXT, name: \"_dmarc.example.org.\", text: x}]\n", prefix + `spec.dns[0].name: "_dmarc.example.org." must be relative to the workplace's domain`},
		{"SRV without name", "  dns: [{type: SRV, host: mx, port: 465}]\n", prefix + "spec.dns[0].name: required: _service._proto"},
		{"SRV name not a service", "  dns: [{type: SRV, name: submissions, host: mx, port: 465}]\n", prefix + `spec.dns[0].name: "submissions" is not a service name`},
		{"SRV without port", "  dns: [{type: SRV, name: _caldavs._tcp, host: web}]\n", prefix + "spec.dns[0].port: must be between 1 and 65535"},
		{"SRV port out of range", "  dns: [{type: SRV, name: _caldavs._tcp, host: web, port: 65536}]\n", prefix + "spec.dns[0].port: must be between 1 and 65535"},
		{"SRV weight out of range", "  dns: [{type: SRV, name: _caldavs._tcp, host: web, port: 443, weight: -1}]\n", prefix + "spec.dns[0].weight: must be between 0 and 65535"},
		{"port on MX", "  dns: [{type: MX, host: mx, port: 25}]\n", prefix + "spec.dns[0].port: not used by MX records"},
		{"CNAME at the apex", "  dns: [{type: CNAME, name: \"@\", host: web}]\n", prefix + "spec.dns[0].name: a CNAME cannot be at the domain itself"},
		{"DKIM without selector", "  dns: [{type: DKIM, secret: dkim, key: private.pem}]\n", prefix + "spec.dns[0].selector: a lowercase RFC 1123 label"},
		{"DKIM with a name", "  dns: [{type: DKIM, name: mail, selector: s1, secret: dkim, key: private.pem}]\n", prefix + "spec.dns[0].name: not used by DKIM records"},
		{"DKIM of an unknown Secret", "  dns: [{type: DKIM, selector: s1, secret: keys, key: private.pem}]\n", prefix + `spec.dns[0].secret: "keys" is not one of spec.secrets (known: dkim)`},
		{"DKIM without key", "  dns: [{type: DKIM, selector: s1, secret: dkim}]\n", prefix + `spec.dns[0].key: required: the key of Secret "dkim"`},
		{"DKIM of an unknown key", "  dns: [{type: DKIM, selector: s1, secret: dkim, key: dkim.pem}]\n", prefix + `spec.dns[0].key: "dkim.pem" is not a key of spec.secrets "dkim" (known: private.pem, token)`},
		{"DKIM of a key that is not rsa", "  dns: [{type: DKIM, selector: s1, secret: dkim, key: token}]\n", prefix + `spec.dns[0].key: key "token" of spec.secrets "dkim" must be generated with format: rsa`},
		{"selector on TXT", "  dns: [{type: TXT, text: x, selector: s1}]\n", prefix + "spec.dns[0].selector: not used by TXT records"},
		{"unknown field", "  dns: [{type: TXT, text: x, value: y}]\n", prefix + "spec.dns[0].value: unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := catalog.Load(catalog.Layer{FS: mailComponent(tc.extra), Label: "repo"})
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// TestHostServiceRefused: a host's Service must be a DNS-1035 label of a component
// with a chart.
func TestHostServiceRefused(t *testing.T) {
	const prefix = `repo/components/x/component.yaml: Component "x": `
	doc := func(service string) fstest.MapFS {
		return fstest.MapFS{"components/x/component.yaml": &fstest.MapFile{Data: []byte(`apiVersion: platzwart.io/v1alpha1
kind: Component
metadata: {name: x}
spec:
  capability: redis
  licence: MIT
  url: https://example.org
  hosts:
    - {name: mx, subdomain: mx, service: "` + service + `"}
`)}}
	}
	for _, tc := range []struct{ service, want string }{
		{"smtp", prefix + "spec.hosts[0].service: a component without a chart has no Service"},
		{"SMTP_in", prefix + "spec.hosts[0].service: a DNS-1035 label"},
	} {
		_, err := catalog.Load(catalog.Layer{FS: doc(tc.service), Label: "repo"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("service %q: error %v\nwant it to contain %q", tc.service, err, tc.want)
		}
	}
}
