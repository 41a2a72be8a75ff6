package check

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/dns"
	"github.com/platzwart/platzwart/reconciler/dns/dnstest"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
)

// dkimText is the DKIM record text of a new RSA key.
func dkimText(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
}

// mailRecords plans a workplace with the test catalog layer's mail component and
// lists its records with every host at 192.0.2.1, the mx host's Service at
// 192.0.2.25 and the DKIM key dkim (what dns.Records reads from the cluster;
// reconciler/dns tests that part).
func mailRecords(t *testing.T, dkim string) (*plan.Plan, []dns.Record) {
	t.Helper()
	dir := t.TempDir()
	dnstest.WriteMailComponent(t, dir)
	doc := `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata: {name: wp, namespace: demo}
spec:
  domain: ` + testDomain + `
  profile: minikube
  components: {mail: testmail}
  values:
    jitsi: {jvb: {advertiseAddress: 192.0.2.10}}
`
	if err := os.WriteFile(filepath.Join(dir, "workplace.yaml"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	repo, err := load.Dir(dir, platzwart.Builtin(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := dns.Records(t.Context(), p, repo.Catalog, dns.Options{Address: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		switch {
		case strings.HasSuffix(r.Name, "._domainkey"):
			recs[i].Value, recs[i].Unknown = dkim, ""
		case r.Name == "mx": // the smtp Service's address
			recs[i].Value, recs[i].Unknown = "192.0.2.25", ""
		}
	}
	return p, recs
}

// zoneOf is the zone snippet `platzwart dns` writes for recs.
func zoneOf(t *testing.T, p *plan.Plan, recs []dns.Record) string {
	t.Helper()
	var b bytes.Buffer
	if err := dns.WriteZone(&b, p.Namespace+"/"+p.Workplace, p.Domain, recs); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// edit replaces the zone's lines matching re with repl ("" deletes them).
func edit(t *testing.T, zone, re, repl string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var out []string
	n := 0
	for _, l := range strings.Split(zone, "\n") {
		if !strings.HasPrefix(l, ";") && rx.MatchString(l) {
			n++
			if repl != "" {
				out = append(out, repl)
			}
			continue
		}
		out = append(out, l)
	}
	if n == 0 {
		t.Fatalf("no line of the zone matches %s:\n%s", re, zone)
	}
	return strings.Join(out, "\n")
}

// dnsRun runs the DNS checks alone against resolver.
func dnsRun(t *testing.T, p *plan.Plan, recs []dns.Record, resolver string) map[string][]Result {
	t.Helper()
	r := &runner{plan: p, opts: Options{Timeout: time.Second, DNS: &DNSOptions{Records: recs, Resolver: resolver}}}
	out := map[string][]Result{}
	for _, res := range r.checkDNS(t.Context()) {
		out[res.Target] = append(out[res.Target], res)
	}
	return out
}

// TestDNSAgainstAnAuthoritativeServer: the DNS checks against a real DNS server
// (miekg/dns on loopback, standing in for the operator's DNS server) serving the
// zone snippet platzwart dns writes: as written every record passes; each edit an
// operator could get wrong is reported as a typed failure of that record.
func TestDNSAgainstAnAuthoritativeServer(t *testing.T) {
	key := dkimText(t)
	p, recs := mailRecords(t, key)
	zone := zoneOf(t, p, recs)
	srv := dnstest.Serve(t, zone)
	const (
		mx   = testDomain + ". MX"
		txt  = testDomain + ". TXT"
		dkim = "platzwart._domainkey." + testDomain + ". TXT"
		id   = "id." + testDomain + ". A"
	)

	t.Run("as written", func(t *testing.T) {
		got := dnsRun(t, p, recs, srv.Addr)
		if len(got) != len(recs) {
			t.Errorf("%d targets checked, want one per record (%d): %v", len(got), len(recs), got)
		}
		for target, rs := range got {
			for _, r := range rs {
				if r.Status != Pass {
					t.Errorf("%s: %+v, want Pass", target, r)
				}
			}
		}
	})

	cases := []struct {
		name, line, repl, target string
		reason                   Reason
	}{
		{"MX missing", `^@ +\d+ IN MX `, "", mx, ReasonDNSMissing},
		{"SPF missing", `^@ +\d+ IN TXT +"v=spf1`, "", txt, ReasonDNSMissing},
		{"DKIM key of an old key", `^platzwart\._domainkey `, "platzwart._domainkey 3600 IN TXT \"" + strings.Replace(dkimText(t), "p=", `p=" "`, 1) + `"`, dkim, ReasonDNSDifferent},
		{"address wrong", `^id +\d+ IN A `, "id 3600 IN A 198.51.100.9", id, ReasonDNSDifferent},
		{"a second address", `^id +\d+ IN A `, "id 3600 IN A 192.0.2.1\nid 3600 IN A 198.51.100.9", id, ReasonDNSExtra},
		{"a second SPF record", `^@ +\d+ IN TXT +"v=spf1`, "@ 3600 IN TXT \"v=spf1 mx -all\"\n@ 3600 IN TXT \"v=spf1 include:other.example -all\"\n@ 3600 IN TXT \"site-verification=abc\"", txt, ReasonDNSExtra},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := dnstest.Serve(t, edit(t, zone, tc.line, tc.repl))
			got := dnsRun(t, p, recs, srv.Addr)
			found := false
			for target, rs := range got {
				for _, r := range rs {
					switch {
					case target == tc.target && r.Reason == tc.reason:
						found = r.Status == Fail && r.Message != "" && (r.Fix != "")
					case r.Status != Pass && !(target == tc.target):
						t.Errorf("%s: %+v; only %s should fail", target, r, tc.target)
					}
				}
			}
			if !found {
				t.Errorf("%s: %+v, want a failure %s with message and fix", tc.target, got[tc.target], tc.reason)
			}
		})
	}

	t.Run("server unreachable", func(t *testing.T) {
		for _, addr := range []string{dnstest.Closed(t), dnstest.Silent(t)} {
			start := time.Now()
			got := dnsRun(t, p, recs, addr)
			took := time.Since(start)
			if took > 3*time.Second {
				t.Errorf("%s: took %s with a 1s timeout", addr, took)
			}
			rs := got[addr]
			if len(rs) != 1 || rs[0].Status != Fail || (rs[0].Reason != ReasonUnreachable && rs[0].Reason != ReasonTimeout) {
				t.Errorf("%s: %+v, want one failure naming the resolver", addr, rs)
			}
			skipped := 0
			for _, rs := range got {
				for _, r := range rs {
					if r.Status == Skip && r.Reason == ReasonDependencyFailed {
						skipped++
					}
				}
			}
			if skipped != len(recs) {
				t.Errorf("%s: %d records skipped, want all %d", addr, skipped, len(recs))
			}
		}
	})
}
