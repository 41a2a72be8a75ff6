package catalog

import (
	"fmt"
	"math"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultDNSTTL is the TTL of a record whose declaration sets none, in seconds.
const DefaultDNSTTL = 3600

// dnsLabel is one label of a record name relative to the workplace's domain: letters,
// digits, hyphens and underscores (_dmarc, _submissions, _tcp), at most 63 characters.
var dnsLabel = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$`)

// validateDNS checks spec.hosts[].service and spec.dns against the component's hosts
// and secrets; bad formats an error naming the field.
func validateDNS(s ComponentSpec, hosts map[string]bool, bad func(field, format string, args ...any) error) []error {
	var errs []error
	for i, h := range s.Hosts {
		if h.Service == "" {
			continue
		}
		if s.Chart == "" {
			errs = append(errs, bad(fmt.Sprintf("spec.hosts[%d].service", i), "a component without a chart has no Service"))
		}
		for _, msg := range validation.IsDNS1035Label(h.Service) {
			errs = append(errs, bad(fmt.Sprintf("spec.hosts[%d].service", i), "%s", msg))
		}
	}
	rsaKeys := map[string]map[string]bool{} // secret -> key -> format rsa
	for _, sec := range s.Secrets {
		rsaKeys[sec.Name] = map[string]bool{}
		for k, g := range sec.Keys {
			rsaKeys[sec.Name][k] = g.Format == "rsa"
		}
	}
	known := strings.Join(sortedKeys(hosts), ", ")
	for i, r := range s.DNS {
		field := fmt.Sprintf("spec.dns[%d]", i)
		not := func(name string, set bool) {
			if set {
				errs = append(errs, bad(field+"."+name, "not used by %s records", r.Type))
			}
		}
		if r.TTL < 0 || r.TTL > math.MaxInt32 {
			errs = append(errs, bad(field+".ttl", "must be between 1 and %d seconds (0: %d)", math.MaxInt32, DefaultDNSTTL))
		}
		switch r.Type {
		case DNSMX, DNSTXT, DNSSRV, DNSCNAME:
			errs = append(errs, checkRecordName(r, field, bad)...)
		case DNSDKIM:
		default:
			errs = append(errs, bad(field+".type", "unknown record type %q (known: %s, %s, %s, %s, %s)", r.Type, DNSMX, DNSTXT, DNSSRV, DNSCNAME, DNSDKIM))
			continue
		}
		switch r.Type {
		case DNSMX, DNSSRV, DNSCNAME:
			if r.Host == "" {
				errs = append(errs, bad(field+".host", "required: the key of the host the record points at (known: %s)", known))
			} else if !hosts[r.Host] {
				errs = append(errs, bad(field+".host", "%q is not one of spec.hosts (known: %s)", r.Host, known))
			}
		default:
			not("host", r.Host != "")
		}
		switch r.Type {
		case DNSMX, DNSSRV:
			if r.Priority < 0 || r.Priority > math.MaxUint16 {
				errs = append(errs, bad(field+".priority", "must be between 0 and 65535"))
			}
		default:
			not("priority", r.Priority != 0)
		}
		if r.Type == DNSSRV {
			if r.Weight < 0 || r.Weight > math.MaxUint16 {
				errs = append(errs, bad(field+".weight", "must be between 0 and 65535"))
			}
			if r.Port < 1 || r.Port > math.MaxUint16 {
				errs = append(errs, bad(field+".port", "must be between 1 and 65535"))
			}
		} else {
			not("weight", r.Weight != 0)
			not("port", r.Port != 0)
		}
		if r.Type == DNSTXT {
			if strings.TrimSpace(r.Text) == "" {
				errs = append(errs, bad(field+".text", "required"))
			} else if _, err := ParseTemplate("dns text", r.Text); err != nil {
				errs = append(errs, bad(field+".text", "template: %v", err))
			}
		} else {
			not("text", r.Text != "")
		}
		if r.Type != DNSDKIM {
			not("selector", r.Selector != "")
			not("secret", r.Secret != "")
			not("key", r.Key != "")
			continue
		}
		not("name", r.Name != "")
		for _, msg := range validation.IsDNS1123Label(r.Selector) {
			errs = append(errs, bad(field+".selector", "%s", msg))
		}
		keys, ok := rsaKeys[r.Secret]
		switch {
		case r.Secret == "":
			errs = append(errs, bad(field+".secret", "required: one of spec.secrets, holding the private key"))
		case !ok:
			errs = append(errs, bad(field+".secret", "%q is not one of spec.secrets (known: %s)", r.Secret, strings.Join(sortedKeys(rsaKeys), ", ")))
		case r.Key == "":
			errs = append(errs, bad(field+".key", "required: the key of Secret %q holding the private key", r.Secret))
		default:
			rsa, has := keys[r.Key]
			if !has {
				errs = append(errs, bad(field+".key", "%q is not a key of spec.secrets %q (known: %s)", r.Key, r.Secret, strings.Join(sortedKeys(keys), ", ")))
			} else if !rsa {
				errs = append(errs, bad(field+".key", "key %q of spec.secrets %q must be generated with format: rsa", r.Key, r.Secret))
			}
		}
	}
	return errs
}

// checkRecordName checks the name of an MX, TXT, SRV or CNAME record: "@" or names
// relative to the workplace's domain; SRV names are _service._proto; a CNAME cannot
// be at the domain itself.
func checkRecordName(r DNSRecord, field string, bad func(field, format string, args ...any) error) []error {
	name := r.Name
	if name == "" || name == "@" {
		switch r.Type {
		case DNSSRV:
			return []error{bad(field+".name", "required: _service._proto, e.g. _submissions._tcp")}
		case DNSCNAME:
			return []error{bad(field+".name", "a CNAME cannot be at the domain itself")}
		}
		return nil
	}
	if strings.HasSuffix(name, ".") || len(name) > 200 {
		return []error{bad(field+".name", "%q must be relative to the workplace's domain (no trailing dot, at most 200 characters)", name)}
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if !dnsLabel.MatchString(l) {
			return []error{bad(field+".name", "%q: label %q is not a DNS label (letters, digits, - and _, at most 63 characters)", name, l)}
		}
	}
	if r.Type == DNSSRV && (len(labels) < 2 || !strings.HasPrefix(labels[0], "_") || (labels[1] != "_tcp" && labels[1] != "_udp")) {
		return []error{bad(field+".name", "%q is not a service name: _service._tcp or _service._udp", name)}
	}
	return nil
}
