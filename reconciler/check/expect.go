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
	var identityRel *plan.Release
	for _, sel := range p.Components {
		if sel.Capability == contract.Identity {
			identityRel = rels[sel.Component]
			def := cat.Components[sel.Component]
			if def == nil || identityRel == nil {
				return nil, fmt.Errorf("identity component %q: not in the catalog or the plan", sel.Component)
			}
			issuer, err := issuerURL(p, identityRel, def)
			if err != nil {
				return nil, fmt.Errorf("component %q: %s: spec.exports: %w", def.Metadata.Name, def.File, err)
			}
			exp.identity = &identity{component: sel.Component, issuerURL: issuer}
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
			selected: byCap, videoKind: videoKind, identity: exp.identity != nil})
		o := def.Spec.OIDCClient
		if o == nil || exp.identity == nil {
			continue
		}
		root := "https://" + rel.Hosts[o.Host]
		c := oidcClient{id: sel.Component, component: sel.Component, probeHost: rel.Hosts[o.Host],
			redirectURIs: concrete(root, o.RedirectPaths), postLogoutRedirectURIs: concrete(root, o.PostLogoutRedirectPaths)}
		if !o.PublicClient {
			ref := contract.OIDCClientSecret(rel.Name)
			c.secret = &ref
		}
		exp.clients = append(exp.clients, c)
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

// issuerURL computes the identity component's exported issuerURL as the plan did:
// its exports template over the release's hosts.
func issuerURL(p *plan.Plan, rel *plan.Release, def *catalog.Component) (string, error) {
	t, err := catalog.ParseTemplate(def.Metadata.Name+" exports", def.Spec.Exports)
	if err != nil {
		return "", err
	}
	hosts, urls := map[string]any{}, map[string]any{}
	for k, v := range rel.Hosts {
		hosts[k] = v
		urls[k] = "https://" + v
	}
	out, err := t.Execute(map[string]any{
		"Workplace": map[string]any{"Name": p.Workplace, "Namespace": p.Namespace, "Domain": p.Domain},
		"Release":   map[string]any{"Name": rel.Name, "Namespace": rel.Namespace},
		"Component": map[string]any{"Name": rel.Component, "Capability": rel.Capability},
		"Hosts":     hosts,
		"URLs":      urls,
	})
	if err != nil {
		return "", err
	}
	issuer, _ := out["issuerURL"].(string)
	if issuer == "" {
		return "", fmt.Errorf("exports no issuerURL")
	}
	return issuer, nil
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
