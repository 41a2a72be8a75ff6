// Package dns computes the records of a workplace's DNS zone: an address record for
// every public host of every selected component, pointing at the routing's external
// address (the ingress controller's Service or the Gateway) or, for a host reached at
// a Service of its own (component.yaml spec.hosts[].service), at that Service's;
// and every record the components declare in spec.dns (MX, TXT, SRV, CNAME, and DKIM
// with the public half of the generated private key). The cluster is read, never
// written, and only for addresses and DKIM keys; without it those records carry the
// reason their value is unknown instead of a value. The private key never leaves
// this process: only the public key derived from it is returned.
package dns

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/contract"
	"github.com/platzwart/platzwart/reconciler/plan"
)

// Type is a DNS record type.
type Type string

// Record types of a workplace's zone.
const (
	A     Type = "A"
	AAAA  Type = "AAAA"
	CNAME Type = "CNAME"
	MX    Type = "MX"
	TXT   Type = "TXT"
	SRV   Type = "SRV"
)

// Record is one record of the workplace's zone.
type Record struct {
	// Name is relative to the workplace's domain: "@" for the domain itself.
	Name string `json:"name"`
	// FQDN is the absolute name, with the trailing dot.
	FQDN string `json:"fqdn"`
	// Type is A, AAAA, CNAME, MX, TXT or SRV (a DKIM key is a TXT record).
	Type Type `json:"type"`
	// TTL in seconds.
	TTL int `json:"ttl"`
	// Priority of MX and SRV records; Weight and Port of SRV records.
	Priority int `json:"priority,omitempty"`
	Weight   int `json:"weight,omitempty"`
	Port     int `json:"port,omitempty"`
	// Value is the address (A, AAAA), the absolute target name with its trailing dot
	// (CNAME, MX, SRV) or the text (TXT); "" when Unknown says why it is not known.
	Value string `json:"value,omitempty"`
	// Unknown says why the value could not be determined (no cluster access, a
	// LoadBalancer without an address yet, a Secret not generated yet).
	Unknown string `json:"unknown,omitempty"`
	// Note is what the operator should know about the record (a NodePort Service's
	// ports, a CNAME at the domain itself).
	Note string `json:"note,omitempty"`
	// Component declares the record; Source is where: the host key or spec.dns[i].
	Component string `json:"component"`
	Source    string `json:"source"`
}

// Known reports whether the record's value is known.
func (r Record) Known() bool { return r.Unknown == "" }

// Options configure Records.
type Options struct {
	// Reader reads the cluster: the ingress controller's Service, the Gateway, the
	// Services of hosts with a Service, and the DKIM Secrets. Nil: those values are
	// unknown.
	Reader client.Reader
	// Address, when set, is the routing's external address (an IP or a host name),
	// instead of what the cluster says (--address). A Service's own LoadBalancer
	// address still wins for its hosts.
	Address string
}

// Records computes the records the workplace of p needs, in a stable order (by
// name, "@" first, then type and value). cat is the catalog p was built from. An
// error means the plan's declarations cannot be turned into records (a TXT template
// that fails); what the cluster cannot tell is a record's Unknown.
func Records(ctx context.Context, p *plan.Plan, cat *catalog.Catalog, opts Options) ([]Record, error) {
	if cat == nil {
		return nil, fmt.Errorf("workplace %s/%s: no catalog", p.Namespace, p.Workplace)
	}
	l := &lister{plan: p, opts: opts, services: map[string]address{}}
	l.routing = l.routingAddress(ctx)
	var out []Record
	seen := map[string]bool{}
	for _, sel := range p.Components {
		def, ok := cat.Components[sel.Component]
		if !ok {
			return nil, fmt.Errorf("workplace %s/%s: component %q is not in the catalog", p.Namespace, p.Workplace, sel.Component)
		}
		release := sel.Release
		if release == "" {
			release = contract.ReleaseName(p.Workplace, sel.Component)
		}
		hosts := map[string]string{}
		for _, h := range def.Spec.Hosts {
			name := relName(h.Subdomain)
			hosts[h.Name] = fqdn(name, p.Domain)
			// The domain itself may be served by several components; one set of
			// address records is enough.
			if seen[name] {
				continue
			}
			seen[name] = true
			addr := l.routing
			if h.Service != "" {
				addr = l.serviceAddress(ctx, release+"-"+h.Service)
			}
			out = append(out, addressRecords(name, p.Domain, addr, sel.Component, "spec.hosts."+h.Name)...)
		}
		tctx := textContext(p, sel, release, hosts)
		for i, d := range def.Spec.DNS {
			r, err := l.declared(ctx, d, hosts, release, tctx)
			if err != nil {
				return nil, fmt.Errorf("workplace %s/%s: component %q: %s: spec.dns[%d]: %w", p.Namespace, p.Workplace, sel.Component, def.File, i, err)
			}
			r.Component, r.Source = sel.Component, fmt.Sprintf("spec.dns[%d]", i)
			out = append(out, r)
		}
	}
	Sort(out)
	return out, nil
}

// Sort orders records by name ("@" first), type, priority and value.
func Sort(recs []Record) {
	sort.SliceStable(recs, func(i, j int) bool {
		a, b := recs[i], recs[j]
		if a.Name != b.Name {
			if a.Name == "@" || b.Name == "@" {
				return a.Name == "@"
			}
			return a.Name < b.Name
		}
		if ta, tb := typeOrder(a.Type), typeOrder(b.Type); ta != tb {
			return ta < tb
		}
		if a.Priority != b.Priority {
			return a.Priority < b.Priority
		}
		return a.Value < b.Value
	})
}

func typeOrder(t Type) int {
	for i, x := range []Type{A, AAAA, CNAME, MX, TXT, SRV} {
		if x == t {
			return i
		}
	}
	return 99
}

// relName is a host's subdomain as a record name ("@" for the domain itself).
func relName(sub string) string {
	if sub == "" {
		return "@"
	}
	return sub
}

// fqdn is the absolute name of a relative one, with the trailing dot.
func fqdn(name, domain string) string {
	domain = strings.TrimSuffix(domain, ".")
	if name == "@" || name == "" {
		return domain + "."
	}
	return name + "." + domain + "."
}

// textContext is what a TXT record's text template sees.
func textContext(p *plan.Plan, sel plan.Selection, release string, hosts map[string]string) map[string]any {
	h, urls := map[string]any{}, map[string]any{}
	for k, v := range hosts {
		v = strings.TrimSuffix(v, ".")
		h[k] = v
		urls[k] = "https://" + v
	}
	return map[string]any{
		"Workplace": map[string]any{"Name": p.Workplace, "Namespace": p.Namespace, "Domain": p.Domain},
		"Release":   map[string]any{"Name": sel.Release, "Namespace": p.Namespace},
		"Component": map[string]any{"Name": sel.Component, "Capability": sel.Capability},
		"Hosts":     h,
		"URLs":      urls,
	}
}

// declared turns one spec.dns entry into a record.
func (l *lister) declared(ctx context.Context, d catalog.DNSRecord, hosts map[string]string, release string, tctx map[string]any) (Record, error) {
	ttl := d.TTL
	if ttl == 0 {
		ttl = catalog.DefaultDNSTTL
	}
	name := d.Name
	if name == "" {
		name = "@"
	}
	r := Record{Name: name, TTL: ttl}
	switch d.Type {
	case catalog.DNSMX:
		r.Type, r.Priority, r.Value = MX, d.Priority, hosts[d.Host]
	case catalog.DNSSRV:
		r.Type, r.Priority, r.Weight, r.Port, r.Value = SRV, d.Priority, d.Weight, d.Port, hosts[d.Host]
	case catalog.DNSCNAME:
		r.Type, r.Value = CNAME, hosts[d.Host]
	case catalog.DNSTXT:
		t, err := catalog.ParseTemplate("dns text", d.Text)
		if err != nil {
			return r, fmt.Errorf("text: %w", err)
		}
		text, err := t.String(tctx)
		if err != nil {
			return r, fmt.Errorf("text: %w", err)
		}
		r.Type, r.Value = TXT, strings.TrimSpace(text)
	case catalog.DNSDKIM:
		r.Type, r.Name = TXT, d.Selector+"._domainkey"
		secret := contract.ComponentSecret(release, d.Secret)
		key, unknown := l.dkimKey(ctx, secret, d.Key)
		r.Value, r.Unknown = key, unknown
		if unknown == "" {
			r.Note = fmt.Sprintf("DKIM selector %s: the public key of Secret %s key %s", d.Selector, secret, d.Key)
		}
	default:
		return r, fmt.Errorf("unknown record type %q", d.Type)
	}
	if r.Value == "" && r.Unknown == "" {
		return r, fmt.Errorf("no value (host %q unknown)", d.Host)
	}
	r.FQDN = fqdn(r.Name, l.plan.Domain)
	return r, nil
}

// address is where a host is reached from outside the cluster.
type address struct {
	ips      []string
	hostname string
	// unknown says why neither is known.
	unknown string
	note    string
}

// addressRecords are the A, AAAA or CNAME records of a host at addr.
func addressRecords(name, domain string, addr address, component, source string) []Record {
	base := Record{Name: name, FQDN: fqdn(name, domain), TTL: catalog.DefaultDNSTTL, Component: component, Source: source, Note: addr.note}
	switch {
	case addr.unknown != "":
		r := base
		r.Type, r.Unknown = A, addr.unknown
		return []Record{r}
	case addr.hostname != "":
		r := base
		r.Type, r.Value = CNAME, strings.TrimSuffix(addr.hostname, ".")+"."
		if name == "@" {
			r.Note = joinNotes(r.Note, "a CNAME cannot be at the domain itself (nor beside its MX and TXT records): use your DNS provider's ALIAS or ANAME record, or the address "+addr.hostname+" resolves to")
		}
		return []Record{r}
	}
	var out []Record
	for _, ip := range addr.ips {
		r := base
		r.Type, r.Value = A, ip
		if parsed := net.ParseIP(ip); parsed != nil {
			r.Value = parsed.String()
			if parsed.To4() == nil {
				r.Type = AAAA
			}
		}
		out = append(out, r)
	}
	return out
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
