package guard

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/platzwart/platzwart/reconciler/postrender"
)

// Route is a host and path an Ingress or an HTTPRoute serves.
type Route struct {
	// Host is the hostname; Path the path prefix ("/" when none is given).
	Host string
	Path string
	// Object is the Ingress or HTTPRoute (Kind.group/namespace/name).
	Object string
}

// Routes lists the hosts and paths of the Ingresses and HTTPRoutes among objs.
func Routes(objs []*postrender.Object) []Route {
	var out []Route
	for _, o := range objs {
		spec, _ := o.Fields["spec"].(map[string]any)
		switch {
		case o.Group() == "networking.k8s.io" && o.Kind == "Ingress":
			rules, _ := spec["rules"].([]any)
			for _, r := range rules {
				rule, _ := r.(map[string]any)
				host, _ := rule["host"].(string)
				if host == "" {
					continue
				}
				http, _ := rule["http"].(map[string]any)
				paths, _ := http["paths"].([]any)
				for _, p := range paths {
					pm, _ := p.(map[string]any)
					path, _ := pm["path"].(string)
					out = append(out, Route{Host: host, Path: orSlash(path), Object: o.ID()})
				}
				if len(paths) == 0 {
					out = append(out, Route{Host: host, Path: "/", Object: o.ID()})
				}
			}
		case o.Group() == "gateway.networking.k8s.io" && (o.Kind == "HTTPRoute" || o.Kind == "GRPCRoute"):
			hosts, _ := spec["hostnames"].([]any)
			var paths []string
			rules, _ := spec["rules"].([]any)
			for _, r := range rules {
				rule, _ := r.(map[string]any)
				matches, _ := rule["matches"].([]any)
				for _, m := range matches {
					mm, _ := m.(map[string]any)
					pm, _ := mm["path"].(map[string]any)
					v, _ := pm["value"].(string)
					paths = append(paths, orSlash(v))
				}
			}
			if len(paths) == 0 {
				paths = []string{"/"}
			}
			for _, h := range hosts {
				host, _ := h.(string)
				for _, p := range dedupe(paths) {
					out = append(out, Route{Host: host, Path: p, Object: o.ID()})
				}
			}
		}
	}
	return out
}

func orSlash(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// ValidHost checks that host is a DNS-1123 subdomain (a leading `*.` allowed) and not
// an IP address.
func ValidHost(host string) error {
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return fmt.Errorf("host %q is an IP address; Ingress and HTTPRoute hosts must be names (for example %s.sslip.io)", host, strings.ReplaceAll(strings.Trim(host, "[]"), ":", "-"))
	}
	if msgs := validation.IsDNS1123Subdomain(strings.TrimPrefix(host, "*.")); len(msgs) > 0 {
		return fmt.Errorf("host %q is not a valid DNS-1123 subdomain: %s", host, strings.Join(msgs, "; "))
	}
	return nil
}

// Claim is a host (and path) claimed by a component of a workplace.
type Claim struct {
	Route
	// File declares the workplace; Workplace is namespace/name.
	File      string
	Workplace string
	// Component claims the host; Key is its host key in component.yaml (hosts[].name),
	// or "" when the host does not come from one (values set it).
	Component string
	Key       string
}

func (c *Claim) String() string {
	key := "host key " + c.Key
	if c.Key == "" {
		key = "no host key (set by values)"
	}
	s := fmt.Sprintf("workplace %s (%s) component %q, %s", c.Workplace, c.File, c.Component, key)
	if c.Object != "" {
		s += ", " + c.Object
	}
	return s
}

// HostsInWorkplace refuses a host and path that two components of one workplace
// serve, and invalid hosts. claims are one workplace's routes.
func HostsInWorkplace(claims []Claim) error {
	sortClaims(claims)
	var errs []error
	first := map[[2]string]*Claim{}
	for i := range claims {
		c := &claims[i]
		if err := ValidHost(c.Host); err != nil {
			errs = append(errs, fmt.Errorf("%s: Workplace %q: component %q: %s: %w", c.File, name(c.Workplace), c.Component, c.Object, err))
			continue
		}
		k := [2]string{strings.ToLower(c.Host), c.Path}
		prev, ok := first[k]
		if !ok {
			first[k] = c
			continue
		}
		if prev.Component != c.Component {
			errs = append(errs, fmt.Errorf("%s: Workplace %q: host %q path %q is served twice: by %s and by %s",
				c.File, name(c.Workplace), c.Host, c.Path, prev, c))
		}
	}
	return errors.Join(errs...)
}

// HostsAcrossWorkplaces refuses a host that two workplaces claim (two Workplaces with
// one domain, or one's host inside the other's names).
func HostsAcrossWorkplaces(claims []Claim) error {
	sortClaims(claims)
	first := map[string]*Claim{}
	// One error per pair of workplaces, naming the first host they share.
	type clash struct {
		prev, c *Claim
		hosts   map[string]bool
	}
	var pairs []string
	clashes := map[string]*clash{}
	for i := range claims {
		c := &claims[i]
		h := strings.ToLower(c.Host)
		prev, ok := first[h]
		if !ok {
			first[h] = c
			continue
		}
		if prev.Workplace == c.Workplace {
			continue
		}
		pair := prev.Workplace + " " + c.Workplace
		if cl, ok := clashes[pair]; ok {
			cl.hosts[h] = true
			continue
		}
		clashes[pair] = &clash{prev: prev, c: c, hosts: map[string]bool{h: true}}
		pairs = append(pairs, pair)
	}
	var errs []error
	for _, pair := range pairs {
		cl := clashes[pair]
		more := ""
		if n := len(cl.hosts) - 1; n > 0 {
			more = fmt.Sprintf(" (and %d more shared hosts)", n)
		}
		errs = append(errs, fmt.Errorf("%s: Workplace %q: host %q is claimed by two workplaces: %s and %s%s",
			cl.c.File, name(cl.c.Workplace), cl.c.Host, cl.prev, cl.c, more))
	}
	return errors.Join(errs...)
}

// name is the name part of namespace/name.
func name(workplace string) string {
	if i := strings.LastIndex(workplace, "/"); i >= 0 {
		return workplace[i+1:]
	}
	return workplace
}

func sortClaims(claims []Claim) {
	sort.SliceStable(claims, func(i, j int) bool {
		a, b := claims[i], claims[j]
		for _, p := range [][2]string{{a.Workplace, b.Workplace}, {a.Component, b.Component}, {a.Key, b.Key}, {a.Object, b.Object}, {a.Host, b.Host}, {a.Path, b.Path}} {
			if p[0] != p[1] {
				return p[0] < p[1]
			}
		}
		return false
	})
}

// NodePort is a fixed node port a Service asks for: node ports are one range for
// the whole cluster, so two claims of one port and protocol collide.
type NodePort struct {
	// Port and Protocol (TCP when unset).
	Port     int64
	Protocol string
	// File, Workplace (namespace/name), Component and Object (the Service) claim it.
	File      string
	Workplace string
	Component string
	Object    string
}

func (p *NodePort) String() string {
	return fmt.Sprintf("workplace %s (%s) component %q, %s", p.Workplace, p.File, p.Component, p.Object)
}

// NodePorts lists the fixed node ports of the Services among objs; the caller fills
// in File, Workplace and Component.
func NodePorts(objs []*postrender.Object) []NodePort {
	var out []NodePort
	for _, o := range objs {
		if o.Group() != "" || o.Kind != "Service" {
			continue
		}
		spec, _ := o.Fields["spec"].(map[string]any)
		ports, _ := spec["ports"].([]any)
		for _, p := range ports {
			pm, _ := p.(map[string]any)
			var port int64
			switch n := pm["nodePort"].(type) {
			case float64:
				port = int64(n)
			case int64:
				port = n
			}
			if port == 0 {
				continue
			}
			proto, _ := pm["protocol"].(string)
			if proto == "" {
				proto = "TCP"
			}
			out = append(out, NodePort{Port: port, Protocol: proto, Object: o.ID()})
		}
	}
	return out
}

// CheckNodePorts refuses a node port and protocol claimed twice, naming both claimants.
func CheckNodePorts(ports []NodePort) error {
	sort.SliceStable(ports, func(i, j int) bool {
		a, b := ports[i], ports[j]
		if a.Workplace != b.Workplace {
			return a.Workplace < b.Workplace
		}
		if a.Component != b.Component {
			return a.Component < b.Component
		}
		return a.Object < b.Object
	})
	var errs []error
	first := map[string]*NodePort{}
	for i := range ports {
		p := &ports[i]
		k := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		prev, ok := first[k]
		if !ok {
			first[k] = p
			continue
		}
		errs = append(errs, fmt.Errorf("%s: Workplace %q: node port %s is claimed twice (node ports are cluster-wide): by %s and by %s; give one of them another port in its values",
			p.File, name(p.Workplace), k, prev, p))
	}
	return errors.Join(errs...)
}
