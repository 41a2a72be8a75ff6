package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/platzwart/platzwart/reconciler/dns"
)

// CheckDNS is the name of the checks comparing the workplace's records with DNS.
const CheckDNS = "dns"

// Reasons of failed and skipped DNS checks.
const (
	ReasonDNSMissing   Reason = "DNSMissing"   // DNS has no record of the name and type
	ReasonDNSDifferent Reason = "DNSDifferent" // DNS has records of the name and type, none with the value needed
	ReasonDNSExtra     Reason = "DNSExtra"     // DNS has records of the name and type the workplace does not need (another address, a second SPF)
	ReasonDNSError     Reason = "DNSError"     // the resolver answered with an error (SERVFAIL, REFUSED)
	ReasonValueUnknown Reason = "ValueUnknown" // skipped: the value needed is not known (no cluster access, no address yet)
)

// DNSOptions configure the DNS checks.
type DNSOptions struct {
	// Records are what the workplace needs (dns.Records).
	Records []dns.Record
	// Resolver is the host:port queried (recursion desired), e.g. the system's
	// resolver (SystemResolver) or the operator's authoritative server.
	Resolver string
	// Skip, when set, skips the DNS checks saying why.
	Skip string
}

// SystemResolver returns the first name server of /etc/resolv.conf as host:port.
func SystemResolver() (string, error) {
	conf, err := mdns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return "", fmt.Errorf("reading the system's resolver: %w", err)
	}
	if len(conf.Servers) == 0 {
		return "", fmt.Errorf("no name server in /etc/resolv.conf")
	}
	return net.JoinHostPort(conf.Servers[0], conf.Port), nil
}

// rrset is the records of one name and type.
type rrset struct {
	fqdn string
	typ  dns.Type
	recs []dns.Record
}

// checkDNS queries the resolver for every name and type the records need and
// compares: one result per record (Pass, or Fail with ReasonDNSMissing or
// ReasonDNSDifferent), and one ReasonDNSExtra failure per name and type that has
// relevant answers nobody needs. The first query tells whether the resolver answers;
// when it does not, that is one failure and the other checks are skipped.
func (r *runner) checkDNS(ctx context.Context) []Result {
	o := r.opts.DNS
	target := o.Resolver
	if o.Skip != "" {
		return []Result{r.report(Result{Name: CheckDNS, Target: r.plan.Domain, Status: Skip, Reason: ReasonNotApplicable, Message: o.Skip})}
	}
	sets := groupRecords(o.Records)
	if len(sets) == 0 {
		return nil
	}
	q := &querier{resolver: o.Resolver, timeout: r.opts.Timeout}
	first := r.timed(ctx, func(ctx context.Context) Result {
		_, err := q.query(ctx, sets[0].fqdn, sets[0].typ)
		if err == nil {
			return Result{Status: Pass}
		}
		return resolverError(Result{Name: CheckDNS, Target: target}, o.Resolver, err)
	})
	if first.Status != Pass {
		out := []Result{r.report(first)}
		for _, s := range sets {
			for _, rec := range s.recs {
				out = append(out, r.report(skipped(CheckDNS, dnsTarget(rec), rec.Component, "the resolver "+o.Resolver+" did not answer")))
			}
		}
		return out
	}
	var mu sync.Mutex
	var out []Result
	var wg sync.WaitGroup
	for _, s := range sets {
		wg.Go(func() {
			var res []Result
			start := time.Now()
			ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
			defer cancel()
			answers, err := q.query(ctx, s.fqdn, s.typ)
			for _, x := range compare(s, answers, err, o.Resolver) {
				x.Duration = time.Since(start).Round(time.Millisecond)
				res = append(res, r.report(x))
			}
			mu.Lock()
			out = append(out, res...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// groupRecords groups records by name and type, in the records' order.
func groupRecords(recs []dns.Record) []*rrset {
	var out []*rrset
	index := map[string]*rrset{}
	for _, rec := range recs {
		key := strings.ToLower(rec.FQDN) + " " + string(rec.Type)
		s, ok := index[key]
		if !ok {
			s = &rrset{fqdn: rec.FQDN, typ: rec.Type}
			index[key] = s
			out = append(out, s)
		}
		s.recs = append(s.recs, rec)
	}
	return out
}

// dnsTarget names a record in results: "<fqdn> <type>".
func dnsTarget(rec dns.Record) string { return rec.FQDN + " " + string(rec.Type) }

// compare turns the answers for one name and type into results.
func compare(s *rrset, answers []string, err error, resolver string) []Result {
	var out []Result
	if err != nil {
		for _, rec := range s.recs {
			out = append(out, resolverError(Result{Name: CheckDNS, Target: dnsTarget(rec), Component: rec.Component}, resolver, err))
		}
		return out
	}
	relevant := answers
	if s.typ == dns.TXT {
		relevant = nil
		for _, a := range answers {
			for _, rec := range s.recs {
				if !rec.Known() || txtTag(a) == txtTag(rec.Value) {
					relevant = append(relevant, a)
					break
				}
			}
		}
	}
	matched := map[string]bool{}
	for _, rec := range s.recs {
		res := Result{Name: CheckDNS, Target: dnsTarget(rec), Component: rec.Component}
		want := ""
		if rec.Known() {
			want = rdata(rec)
		}
		switch {
		case !rec.Known() && len(relevant) == 0:
			res.Status, res.Reason = Fail, ReasonDNSMissing
			res.Message = fmt.Sprintf("DNS has no %s record for %s (the value needed is unknown: %s)", s.typ, s.fqdn, rec.Unknown)
			res.Fix = "add the record to the zone once its value is known: see platzwart dns"
		case !rec.Known():
			res.Status, res.Reason = Skip, ReasonValueUnknown
			res.Message = fmt.Sprintf("DNS answers %s; the value needed is unknown: %s", strings.Join(relevant, " | "), rec.Unknown)
		case slices.ContainsFunc(relevant, func(a string) bool { return sameRdata(s.typ, a, want) }):
			res.Status = Pass
			res.Message = "DNS answers " + want
			for _, a := range relevant {
				if sameRdata(s.typ, a, want) {
					matched[a] = true
				}
			}
		case len(relevant) == 0:
			res.Status, res.Reason = Fail, ReasonDNSMissing
			res.Message = fmt.Sprintf("DNS has no %s record for %s; want %s", s.typ, s.fqdn, want)
			res.Fix = "add it to the zone (platzwart dns prints the zone-file line)"
		default:
			res.Status, res.Reason = Fail, ReasonDNSDifferent
			res.Message = fmt.Sprintf("DNS answers %s; want %s", strings.Join(relevant, " | "), want)
			res.Fix = "replace the record in the zone with the one platzwart dns prints"
			for _, a := range relevant {
				matched[a] = true // reported here, not again as extra
			}
		}
		out = append(out, res)
	}
	var extra []string
	for _, a := range relevant {
		if !matched[a] && allKnown(s.recs) {
			extra = append(extra, a)
		}
	}
	if len(extra) > 0 {
		out = append(out, Result{Name: CheckDNS, Target: s.fqdn + " " + string(s.typ), Component: s.recs[0].Component, Status: Fail, Reason: ReasonDNSExtra,
			Message: fmt.Sprintf("DNS also answers %s, which the workplace does not need", strings.Join(extra, " | ")),
			Fix:     "remove the record from the zone unless it is meant to be there: clients may use it instead"})
	}
	return out
}

func allKnown(recs []dns.Record) bool {
	for _, r := range recs {
		if !r.Known() {
			return false
		}
	}
	return true
}

// txtTag is what makes TXT records of a name compete: the version tag of SPF, DMARC
// and DKIM ("v=spf1"), else the whole text.
func txtTag(text string) string {
	tag, _, _ := strings.Cut(text, ";")
	tag, _, _ = strings.Cut(strings.TrimSpace(tag), " ")
	if strings.HasPrefix(strings.ToLower(tag), "v=") {
		return strings.ToLower(tag)
	}
	return text
}

// rdata is a record's value as compare formats answers.
func rdata(rec dns.Record) string {
	switch rec.Type {
	case dns.MX:
		return fmt.Sprintf("%d %s", rec.Priority, rec.Value)
	case dns.SRV:
		return fmt.Sprintf("%d %d %d %s", rec.Priority, rec.Weight, rec.Port, rec.Value)
	}
	return rec.Value
}

// sameRdata compares values: TXT exactly, the others (names) case-insensitively.
func sameRdata(typ dns.Type, a, b string) bool {
	if typ == dns.TXT {
		return a == b
	}
	return strings.EqualFold(a, b)
}

// querier sends queries to one resolver.
type querier struct {
	resolver string
	timeout  time.Duration
}

// query asks for name and type and returns the answers' values: addresses (A and
// AAAA, following CNAMEs), targets (CNAME), "pref target" (MX), "prio weight port
// target" (SRV), the concatenated strings (TXT). A name that does not exist, or has
// no records of the type, gives no answers and no error.
func (q *querier) query(ctx context.Context, name string, typ dns.Type) ([]string, error) {
	qtype := mdns.StringToType[string(typ)]
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.SetEdns0(4096, false)
	c := &mdns.Client{Timeout: q.timeout}
	in, _, err := c.ExchangeContext(ctx, m, q.resolver)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.ExchangeContext(ctx, m, q.resolver)
	}
	if err != nil {
		return nil, err
	}
	switch in.Rcode {
	case mdns.RcodeSuccess, mdns.RcodeNameError:
	default:
		return nil, &rcodeError{rcode: in.Rcode}
	}
	var out []string
	for _, rr := range in.Answer {
		switch v := rr.(type) {
		case *mdns.A:
			if typ == dns.A {
				out = append(out, v.A.String())
			}
		case *mdns.AAAA:
			if typ == dns.AAAA {
				out = append(out, v.AAAA.String())
			}
		case *mdns.CNAME:
			if typ == dns.CNAME && strings.EqualFold(v.Hdr.Name, mdns.Fqdn(name)) {
				out = append(out, v.Target)
			}
		case *mdns.MX:
			out = append(out, fmt.Sprintf("%d %s", v.Preference, v.Mx))
		case *mdns.SRV:
			out = append(out, fmt.Sprintf("%d %d %d %s", v.Priority, v.Weight, v.Port, v.Target))
		case *mdns.TXT:
			out = append(out, strings.Join(v.Txt, ""))
		}
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

// rcodeError is an answer with an error code.
type rcodeError struct{ rcode int }

func (e *rcodeError) Error() string { return "answered " + mdns.RcodeToString[e.rcode] }

// resolverError turns a failed query into a failed result.
func resolverError(res Result, resolver string, err error) Result {
	res.Status = Fail
	var rc *rcodeError
	switch {
	case errors.As(err, &rc):
		res.Reason = ReasonDNSError
		res.Message = fmt.Sprintf("the resolver %s %v", resolver, err)
		res.Fix = "check the zone at its authoritative server (is it loaded, is the domain delegated to it?)"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		res.Reason = ReasonTimeout
		res.Message = fmt.Sprintf("the resolver %s did not answer in time", resolver)
		res.Fix = "check --resolver (host:port) and that it is reachable from here; raise --timeout for a slow network"
	default:
		res.Reason = ReasonUnreachable
		res.Message = fmt.Sprintf("cannot query the resolver %s: %v", resolver, err)
		res.Fix = "check --resolver (host:port) and that a DNS server listens there"
	}
	return res
}
