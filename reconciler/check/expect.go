package check

import (
	"fmt"
	"sort"
	"strings"

	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/contract"
	"github.com/platzwart/platzwart/reconciler/plan"
)

// expectations is what a working installation of the plan serves.
type expectations struct {
	// hosts are the public hosts, sorted.
	hosts []host
	// ca is the Secret key holding the CA the hosts' certificates chain to; nil means
	// a public CA (the system roots).
	ca *contract.SecretRef
	// identity is the identity provider; nil when no identity component is selected.
	identity *identity
	// clients are the OIDC clients the plan registers at the identity provider.
	clients []oidcClient
	// apps are the components with a probe, with what the probe needs to know.
	apps []app
}

type host struct {
	name      string
	component string
}

type identity struct {
	component string
	issuerURL string
	// external is true for a provider outside the workplace: the operator registers
	// the clients and creates their Secrets.
	external bool
}

// oidcClient is a client the identity provider must know.
type oidcClient struct {
	id        string
	component string
	// secret is where the client secret lives; nil for public clients.
	secret                 *contract.SecretRef
	redirectURIs           []string
	postLogoutRedirectURIs []string
	// probeHost is the host an unregistered redirect URI is made up on.
	probeHost string
}

// app is a selected component and what its probe compares against.
type app struct {
	component  string
	capability string
	hosts      map[string]string
	// selected maps each capability to the hosts of the component filling it.
	selected map[string]map[string]string
	// videoKind is the selected video component ("" when none).
	videoKind string
	// identity is true when an identity component is selected.
	identity bool
	// values are the component's chart values as planned (its wiring, e.g. the
	// office kind a files component was given).
	values map[string]any
}

// expect derives the expectations from the plan and the catalog it was built with.
func expect(p *plan.Plan, cat *catalog.Catalog) (*expectations, error) {
	if cat == nil {
		return nil, fmt.Errorf("no catalog")
	}
	exp := &expectations{ca: caSecret(p)}
	byCap := map[string]map[string]string{}
	seen := map[string]bool{}
	for _, rel := range p.Releases {
		byCap[rel.Capability] = rel.Hosts
		for _, name := range rel.Hosts {
			if !seen[name] {
				seen[name] = true
				exp.hosts = append(exp.hosts, host{name: name, component: rel.Component})
			}
		}
	}
	sort.Slice(exp.hosts, func(i, j int) bool { return exp.hosts[i].name < exp.hosts[j].name })

	rels := map[string]*plan.Release{}
	for _, rel := range p.Releases {
		rels[rel.Component] = rel
	}
	if id := p.Identity; id != nil {
		if id.IssuerURL == "" {
			return nil, fmt.Errorf("identity component %q exports no issuerURL", id.Component)
		}
		exp.identity = &identity{component: id.Component, issuerURL: id.IssuerURL, external: id.External}
		// An external provider's host is no release's: check its TLS too, as
		// discovery and every client check depend on it.
		if h := hostOf(id.IssuerURL); id.External && !seen[h] {
			seen[h] = true
			exp.hosts = append(exp.hosts, host{name: h, component: id.Component})
			sort.Slice(exp.hosts, func(i, j int) bool { return exp.hosts[i].name < exp.hosts[j].name })
		}
		for _, c := range id.Clients {
			oc := oidcClient{id: c.ClientID, component: c.Component, probeHost: hostOf(c.RootURL),
				redirectURIs: concrete("", c.RedirectURIs), postLogoutRedirectURIs: concrete("", c.PostLogoutRedirectURIs)}
			if c.Secret != nil {
				ref := *c.Secret
				oc.secret = &ref
			}
			exp.clients = append(exp.clients, oc)
		}
	}
	videoKind := ""
	for _, sel := range p.Components {
		if sel.Capability == contract.Video {
			videoKind = sel.Component
		}
	}
	for _, sel := range p.Components {
		rel := rels[sel.Component]
		def := cat.Components[sel.Component]
		if rel == nil || def == nil {
			continue
		}
		exp.apps = append(exp.apps, app{component: sel.Component, capability: sel.Capability, hosts: rel.Hosts,
			selected: byCap, videoKind: videoKind, identity: exp.identity != nil, values: rel.Values})
	}
	return exp, nil
}

// concrete joins the paths to root as the plan registers them, and turns a trailing
// wildcard (a prefix registration such as /static/oidc-adapter.html*) into the URI an
// app really sends that matches it.
func concrete(root string, paths []string) []string {
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		out = append(out, root+strings.TrimSuffix(p, "*"))
	}
	return out
}

// caSecret returns the Secret key holding the workplace's CA: the routing contract's
// tls.caSecret when a chart's values carry it, else the self-signed certificate's
// Secret (key ca.crt), else nil (a public CA).
func caSecret(p *plan.Plan) *contract.SecretRef {
	for _, rel := range p.Releases {
		routing, _ := rel.Values["routing"].(map[string]any)
		tls, _ := routing["tls"].(map[string]any)
		ref, _ := tls["caSecret"].(map[string]any)
		name, _ := ref["name"].(string)
		key, _ := ref["key"].(string)
		if name != "" && key != "" {
			return &contract.SecretRef{Name: name, Key: key}
		}
	}
	for _, s := range p.Secrets {
		if s.Type == "kubernetes.io/tls" {
			return &contract.SecretRef{Name: s.Name, Key: "ca.crt"}
		}
	}
	return nil
}
