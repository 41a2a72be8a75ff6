package plan

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler/catalog"
)

// resolvedProfile is a profile merged along its extends chain.
type resolvedProfile struct {
	components map[string]string
	routing    v1alpha1.Routing
	settings   map[string]any
	values     map[string]map[string]any
	backups    catalog.Backups
}

// resolveProfile merges the named profile over the ones it extends, base first.
func resolveProfile(cat *catalog.Catalog, name string) (resolvedProfile, error) {
	var chain []*catalog.Profile
	seen := map[string]bool{}
	for n := name; n != ""; {
		p, ok := cat.Profiles[n]
		if !ok {
			known := make([]string, 0, len(cat.Profiles))
			for k := range cat.Profiles {
				known = append(known, k)
			}
			sort.Strings(known)
			if n == name {
				return resolvedProfile{}, fmt.Errorf("unknown profile %q (known: %s)", n, strings.Join(known, ", "))
			}
			return resolvedProfile{}, fmt.Errorf("profile %q extends unknown profile %q", chain[len(chain)-1].Metadata.Name, n)
		}
		if seen[n] {
			names := make([]string, 0, len(chain)+1)
			for _, c := range chain {
				names = append(names, c.Metadata.Name)
			}
			return resolvedProfile{}, fmt.Errorf("%s: profiles extend each other in a cycle: %s → %s", p.File, strings.Join(names, " → "), n)
		}
		seen[n] = true
		chain = append(chain, p)
		n = p.Spec.Extends
	}
	r := resolvedProfile{components: map[string]string{}, settings: map[string]any{}, values: map[string]map[string]any{}}
	for i := len(chain) - 1; i >= 0; i-- {
		p := chain[i]
		for k, v := range p.Spec.Components {
			r.components[k] = v
		}
		if p.Spec.Routing != nil {
			r.routing = mergeRouting(r.routing, *p.Spec.Routing)
		}
		if b := p.Spec.Backups; b != nil {
			if field, err := checkBackups(b); err != nil {
				return resolvedProfile{}, fmt.Errorf("%s: Profile %q: %s: %w", p.File, p.Metadata.Name, field, err)
			}
			if b.Size != "" {
				r.backups.Size = b.Size
			}
			if b.StorageClassName != "" {
				r.backups.StorageClassName = b.StorageClassName
			}
			// An S3 target is replaced as a whole: its fields belong together.
			if b.S3 != nil {
				s3 := *b.S3
				r.backups.S3 = &s3
			}
		}
		for k, raw := range p.Spec.Settings {
			var v any
			if err := json.Unmarshal(raw.Raw, &v); err != nil {
				return resolvedProfile{}, fmt.Errorf("%s: spec.settings.%s: %w", p.File, k, err)
			}
			r.settings = merge(r.settings, map[string]any{k: v})
		}
		for comp, raw := range p.Spec.Values {
			m, err := fromJSON(raw)
			if err != nil {
				return resolvedProfile{}, fmt.Errorf("%s: spec.values.%s: %w", p.File, comp, err)
			}
			r.values[comp] = merge(r.values[comp], m)
		}
	}
	return r, nil
}

// mergeRouting overlays the set fields of o on r.
func mergeRouting(r, o v1alpha1.Routing) v1alpha1.Routing {
	if o.Mode != "" {
		r.Mode = o.Mode
	}
	if o.IngressClassName != "" {
		r.IngressClassName = o.IngressClassName
	}
	if o.Gateway != nil {
		g := *o.Gateway
		r.Gateway = &g
	}
	if o.ControllerNamespace != "" {
		r.ControllerNamespace = o.ControllerNamespace
	}
	if o.TLS != nil {
		t := *o.TLS
		r.TLS = &t
	}
	return r
}
