// Package dnstest is for tests only: an authoritative DNS server on loopback serving
// a zone file, standing in for the operator's DNS server, and a mail component in a
// test catalog layer declaring every kind of record `platzwart dns` lists.
package dnstest

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server is an authoritative DNS server for one zone on 127.0.0.1 (UDP and TCP on
// the same port). Queries for names outside the zone are refused.
type Server struct {
	// Addr is host:port of the server.
	Addr string

	origin string
	mu     sync.Mutex
	rrs    map[string][]dns.RR // by lower-case owner name
}

// Serve parses zone (a zone file, $ORIGIN included) with miekg/dns's zone parser
// and serves it until the test ends.
func Serve(t testing.TB, zone string) *Server {
	t.Helper()
	s := &Server{}
	s.Load(t, zone)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	s.Addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: s}
	tcp := &dns.Server{Listener: l, Handler: s}
	go func() { _ = udp.ActivateAndServe() }()
	go func() { _ = tcp.ActivateAndServe() }()
	t.Cleanup(func() {
		_ = udp.Shutdown()
		_ = tcp.Shutdown()
	})
	return s
}

// Load replaces the zone served.
func (s *Server) Load(t testing.TB, zone string) {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(zone), "", "zone")
	rrs := map[string][]dns.RR{}
	origin := ""
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		name := strings.ToLower(rr.Header().Name)
		rrs[name] = append(rrs[name], rr)
		if origin == "" || len(name) < len(origin) {
			origin = name
		}
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("zone file: %v\n%s", err, zone)
	}
	for _, line := range strings.Split(zone, "\n") {
		if o, ok := strings.CutPrefix(line, "$ORIGIN "); ok {
			origin = strings.ToLower(strings.TrimSpace(o))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rrs, s.origin = rrs, origin
}

// ServeDNS answers a query authoritatively from the zone.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !dns.IsSubDomain(s.origin, name) {
		m.Rcode = dns.RcodeRefused
		_ = w.WriteMsg(m)
		return
	}
	for range 8 { // follow CNAMEs inside the zone
		rrs, exists := s.rrs[name]
		if !exists {
			if len(m.Answer) == 0 {
				m.Rcode = dns.RcodeNameError
			}
			break
		}
		var cname *dns.CNAME
		for _, rr := range rrs {
			switch {
			case rr.Header().Rrtype == q.Qtype:
				m.Answer = append(m.Answer, rr)
			case rr.Header().Rrtype == dns.TypeCNAME:
				cname = rr.(*dns.CNAME)
			}
		}
		if cname == nil || q.Qtype == dns.TypeCNAME || len(m.Answer) > 0 {
			break
		}
		m.Answer = append(m.Answer, cname)
		name = strings.ToLower(cname.Target)
		if !dns.IsSubDomain(s.origin, name) {
			break
		}
	}
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// Silent is a UDP address on loopback that reads queries and never answers: a DNS
// server that does not respond.
func Silent(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return pc.LocalAddr().String()
}

// Closed is a loopback address where nothing listens (UDP or TCP).
func Closed(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// MailComponent is a test catalog layer's mail component, testmail: a web host
// (mail.<domain>), an MX host reached at its chart's Service <release>-smtp, a
// generated DKIM key, and MX, SPF, DMARC, DKIM, SRV and CNAME records.
const MailComponent = `apiVersion: platzwart.io/v1alpha1
kind: Component
metadata: {name: testmail}
spec:
  capability: mail
  licence: MIT
  url: https://example.org
  chart: charts/testmail
  images: [registry.example.org/testmail:1.0.0]
  hosts:
    - {name: web, subdomain: mail}
    - {name: mx, subdomain: mx, service: smtp}
  secrets:
    - name: dkim
      keys: {private.pem: {format: rsa}}
  dns:
    - {type: MX, host: mx, priority: 10}
    - {type: TXT, text: "v=spf1 mx -all"}
    - {type: TXT, name: _dmarc, ttl: 300, text: "v=DMARC1; p=quarantine; rua=mailto:postmaster@{{ .Workplace.Domain }}"}
    - {type: DKIM, selector: platzwart, secret: dkim, key: private.pem}
    - {type: SRV, name: _submissions._tcp, host: mx, priority: 0, weight: 1, port: 465}
    - {type: SRV, name: _caldavs._tcp, host: web, priority: 0, weight: 1, port: 443}
    - {type: CNAME, name: autoconfig, host: web}
  exports: |
    url: {{ .URLs.web }}
    host: {{ .Hosts.mx }}
    domain: {{ .Workplace.Domain }}
    smtpHost: {{ .Release.Name }}-relay
    smtpPort: 25
  values: |
    host: {{ .Hosts.web }}
`

// WriteMailComponent writes testmail and its (empty) chart into the repository dir.
func WriteMailComponent(t testing.TB, dir string) {
	t.Helper()
	files := map[string]string{
		"components/testmail/component.yaml": MailComponent,
		"charts/testmail/Chart.yaml":         "apiVersion: v2\nname: testmail\nversion: 0.1.0\n",
		"charts/testmail/values.yaml":        "host: \"\"\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
