// Package plan turns a Workplace, its profile and the catalog into an ordered set of
// Helm releases with fully computed values. It is pure: no cluster, no clock, no
// randomness; the same input gives byte-identical output. Every validation error is
// found here, naming file, document and field.
package plan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fluxcd/pkg/apis/kustomize"
	batchv1 "k8s.io/api/batch/v1"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/contract"
	"github.com/platzwart/platzwart/reconciler/guard"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/upgrade"
)

// DefaultTimeout is the readiness timeout of a release whose component sets none.
const DefaultTimeout = 5 * time.Minute

// Plan is the desired state of one workplace.
type Plan struct {
	// Workplace is the workplace name.
	Workplace string `json:"workplace"`
	// File is the file declaring the workplace, for messages.
	File string `json:"-"`
	// Namespace is where its releases and secrets live.
	Namespace string `json:"namespace"`
	// Domain is the workplace domain.
	Domain string `json:"domain"`
	// Profile is the profile used.
	Profile string `json:"profile"`
	// DataPolicy says what happens to data of removed components.
	DataPolicy v1alpha1.DataPolicy `json:"dataPolicy"`
	// Components are the selected components, by capability.
	Components []Selection `json:"components"`
	// Releases are the Helm releases in dependency order (providers first).
	Releases []*Release `json:"releases"`
	// Apps are the tiles of the selected components (component.yaml spec.tile),
	// sorted by name and component: what the portal lists as .Apps.
	Apps []App `json:"apps,omitempty"`
	// Secrets are generated once in the namespace before any release needs them.
	Secrets []Secret `json:"secrets"`
	// CASecret is the Secret key with the CA certificate (PEM) that signs the public
	// hosts' certificates, the one every HTTPS client must trust (routing.tls.caSecret);
	// nil for a public CA or without TLS.
	CASecret *v1alpha1.SecretKeyRef `json:"caSecret,omitempty"`
	// Identity is the identity provider and its consumers' clients; nil without one.
	Identity *Identity `json:"identity,omitempty"`
	// Routing is the workplace's routing, the profile's merged with the workplace's
	// own: where the public hosts are reached (`platzwart dns` reads the ingress
	// controller's or the Gateway's address from it).
	Routing v1alpha1.Routing `json:"-"`
}

// App is a selected component's tile on the start page, its URL resolved.
type App struct {
	// Component and Capability it belongs to.
	Component  string `json:"component"`
	Capability string `json:"capability"`
	// Name and Description are the tile's text.
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// URL is https://<the tile's host><its path>.
	URL string `json:"url"`
	// Icon is a data: URI ("" when the component declares none).
	Icon string `json:"icon,omitempty"`
}

// Selection is the component chosen for a capability.
type Selection struct {
	// Capability is the role.
	Capability string `json:"capability"`
	// Component fills it.
	Component string `json:"component"`
	// Release is the component's release ("" for wiring-only components).
	Release string `json:"release,omitempty"`
}

// Release is one Helm release of the plan.
type Release struct {
	// Name is the release name, <workplace>-<component>.
	Name string `json:"name"`
	// Workplace the release belongs to.
	Workplace string `json:"workplace"`
	// Namespace of the release.
	Namespace string `json:"namespace"`
	// Component and Capability it implements.
	Component  string `json:"component"`
	Capability string `json:"capability"`
	// ChartPath is the chart directory; ChartName and ChartVersion are from Chart.yaml.
	ChartPath    string `json:"chartPath"`
	ChartName    string `json:"chartName"`
	ChartVersion string `json:"chartVersion"`
	// ChartDigest is the digest of the chart's files.
	ChartDigest string `json:"chartDigest"`
	// DependsOn are the releases that must be ready first.
	DependsOn []string `json:"dependsOn,omitempty"`
	// Hosts are the public hostnames, by key.
	Hosts map[string]string `json:"hosts,omitempty"`
	// Images the release runs.
	Images []string `json:"images,omitempty"`
	// ClusterScoped are the cluster-scoped kinds the component declares.
	ClusterScoped []catalog.GroupKind `json:"clusterScoped,omitempty"`
	// Timeout for readiness.
	Timeout time.Duration `json:"timeout"`
	// Values are the computed Helm values (references to Secrets, never secrets).
	Values map[string]any `json:"values"`
	// Patches are kustomize patches applied after rendering.
	Patches []kustomize.Patch `json:"patches,omitempty"`
	// PodAnnotations are put on the pod template of every Deployment, StatefulSet and
	// DaemonSet the release renders (platzwart's secret-versions hash; see
	// secrets.WithVersions).
	PodAnnotations map[string]string `json:"podAnnotations,omitempty"`
	// Digest covers chart, values, patches and pod annotations: equal digests render
	// equal manifests.
	Digest string `json:"digest"`
	// Version is the component version the release installs: the workplace's pin
	// (spec.versions) or the newest the component lists; "" for a component without
	// versions. It is not in the digest: the values and chart it selects are.
	Version string `json:"version,omitempty"`
	// Risky says the upgrade step to Version needs a backup first.
	Risky bool `json:"risky,omitempty"`
	// Migrations are the Jobs run around the upgrade step to Version, in declaration
	// order (never on a first install).
	Migrations []Migration `json:"migrations,omitempty"`

	// Chart is the loaded chart.
	Chart *catalog.Chart `json:"-"`
	// PatchesOrigin names where the patches come from, for errors.
	PatchesOrigin string `json:"-"`
	// Databases are the component's databases on a PostgreSQL server of the workplace
	// (an in-cluster provider release): what a backup before a risky step dumps.
	// Databases on an external server are the operator's to back up.
	Databases []Database `json:"databases,omitempty"`
	// Backups is the profile's target for those backups (spec.backups).
	Backups catalog.Backups `json:"-"`
	// VersionOrigin names the field Version comes from, for errors: the workplace's
	// spec.versions.<component> or the component's spec.versions.
	VersionOrigin string `json:"-"`

	// def is the component's catalog entry, and earlier are this release at each of
	// its listed versions older than Version, oldest first: the steps Path takes.
	def     *catalog.Component
	earlier []*Release
}

// Database is one database of a component on an in-cluster PostgreSQL release.
type Database struct {
	// Name is the database (and its owner role).
	Name string `json:"name"`
	// Server is the PostgreSQL provider's release: its Service, StatefulSet and
	// backup scripts (ConfigMap <server>-backup) carry that name.
	Server string `json:"server"`
}

// Migration is a migration Job of a version, rendered for one release.
type Migration struct {
	// Name identifies the migration within its version.
	Name string `json:"name"`
	// Phase is pre (before the upgrade step) or post (once it is ready).
	Phase catalog.Phase `json:"phase"`
	// Timeout bounds the Job.
	Timeout time.Duration `json:"timeout"`
	// Job is the rendered Job spec; the engine names and labels the Job.
	Job batchv1.JobSpec `json:"job"`
	// From limits it to steps from versions meeting the constraint ("": every step).
	From string `json:"from,omitempty"`
	// StopConsumers stops the releases depending on this one during the step.
	StopConsumers bool `json:"stopConsumers,omitempty"`
}

// Applies reports whether the migration runs on a step from version from.
func (m Migration) Applies(from string) bool {
	if m.From == "" {
		return true
	}
	c, err1 := catalog.ParseConstraint(m.From)
	v, err2 := catalog.ParseVersion(from)
	return err1 == nil && err2 == nil && c.Check(v)
}

// Secret is a Secret generated once in the workplace's namespace.
type Secret struct {
	// Name of the Secret.
	Name string `json:"name"`
	// Component that needs it ("" for workplace-wide secrets).
	Component string `json:"component,omitempty"`
	// Type is Opaque or kubernetes.io/tls.
	Type string `json:"type"`
	// Keys are generated values by key (Opaque).
	Keys map[string]catalog.Generator `json:"keys,omitempty"`
	// DNSNames of a self-signed certificate (kubernetes.io/tls).
	DNSNames []string `json:"dnsNames,omitempty"`
	// TakenUp says when the component reads a component Secret's values (the
	// component's declaration; "" for the Secrets platzwart wires itself).
	TakenUp catalog.TakenUp `json:"takenUp,omitempty"`
}

// component is a selected component while the plan is built.
type component struct {
	def     *catalog.Component
	release string
	hosts   map[string]string
	values  map[string]any // profile overlay + workplace values
	exports map[string]any
	uses    map[string]any
	deps    []string // components it consumes, required and optional (wiring)
	needs   []string // components it requires (ordering: ready before it starts)
	// consumers are the template entries of the components consuming this one.
	consumers []any
	// target is the index in spec.versions of the version to install (-1: the
	// component lists none), and versionOrigin the field it comes from.
	target        int
	versionOrigin string
}

// Build computes the plan of w with the catalog cat.
func Build(w *load.Workplace, cat *catalog.Catalog) (*Plan, error) {
	b := &builder{w: w, cat: cat}
	return b.build()
}

type builder struct {
	w       *load.Workplace
	cat     *catalog.Catalog
	profile resolvedProfile
	byCap   map[string]*component
	byName  map[string]*component
	// apps are the tiles of the selected components, for the portal's .Apps.
	apps []App
	// external are the clients declared for an external identity provider, by
	// consumer (checkExternalIdentity).
	external map[string]externalClient
	// identity is what wire computed of the identity provider and its clients.
	identity *Identity
}

func (b *builder) build() (*Plan, error) {
	w := b.w
	prof, err := resolveProfile(b.cat, w.Spec.Profile)
	if err != nil {
		return nil, w.Errorf("spec.profile", "%v", err)
	}
	b.profile = prof
	if err := b.selectComponents(); err != nil {
		return nil, err
	}
	if err := b.checkInputs(); err != nil {
		return nil, err
	}
	if err := b.checkExternalIdentity(); err != nil {
		return nil, err
	}
	if w.Spec.StrictCredentials {
		// spec.strictCredentials: credential literals in values refuse the plan.
		if ws := guard.WorkplaceCredentials(w, b.cat); len(ws) > 0 {
			errs := make([]error, len(ws))
			for i, cw := range ws {
				errs[i] = cw
			}
			return nil, errors.Join(errs...)
		}
	}
	if err := b.checkTLS(); err != nil {
		return nil, err
	}
	order, err := b.order()
	if err != nil {
		return nil, err
	}
	routing, tlsSecret := b.routing()
	p := &Plan{
		Workplace:  w.Name,
		File:       w.File,
		Namespace:  w.Namespace,
		Domain:     w.Spec.Domain,
		Profile:    w.Spec.Profile,
		DataPolicy: w.Spec.DataPolicy,
	}
	if p.DataPolicy == "" {
		p.DataPolicy = v1alpha1.DataPolicyRetain
	}
	if tlsSecret != "" {
		p.Secrets = append(p.Secrets, Secret{Name: tlsSecret, Type: "kubernetes.io/tls", DNSNames: []string{w.Spec.Domain, "*." + w.Spec.Domain}})
	}
	p.CASecret = trustedCA(routing)
	p.Routing = b.mergedRouting()

	// Exports first: they depend only on the provider itself.
	for _, name := range order {
		c := b.byName[name]
		ctx := b.baseContext(c, routing)
		if err := b.export(c, ctx); err != nil {
			return nil, err
		}
	}
	b.wire()
	p.Identity = b.identity
	if b.apps, err = b.tiles(order, routing); err != nil {
		return nil, err
	}
	p.Apps = b.apps
	var errs []error
	for _, name := range order {
		c := b.byName[name]
		p.Components = append(p.Components, Selection{Capability: c.def.Spec.Capability, Component: name, Release: c.release})
		p.Secrets = append(p.Secrets, b.secrets(c)...)
		if c.def.Spec.Chart == "" {
			continue
		}
		rel, err := b.release(c, routing)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.Releases = append(p.Releases, rel)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.Slice(p.Components, func(i, j int) bool { return p.Components[i].Capability < p.Components[j].Capability })
	sort.Slice(p.Secrets, func(i, j int) bool { return p.Secrets[i].Name < p.Secrets[j].Name })
	return p, nil
}

// selectComponents applies the workplace's choices over the profile's.
func (b *builder) selectComponents() error {
	w := b.w
	sel := map[string]string{}
	for capName, comp := range b.profile.components {
		sel[capName] = comp
	}
	var errs []error
	for _, capName := range sortedKeys(w.Spec.Components) {
		comp := w.Spec.Components[capName]
		if err := b.cat.CheckSelection(capName, comp); err != nil {
			errs = append(errs, w.Errorf("spec.components."+capName, "%v", err))
			continue
		}
		sel[capName] = comp
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	b.byCap = map[string]*component{}
	b.byName = map[string]*component{}
	for _, capName := range sortedKeys(sel) {
		name := sel[capName]
		if name == v1alpha1.None {
			continue
		}
		def := b.cat.Components[name]
		c := &component{def: def, release: contract.ReleaseName(w.Name, name)}
		if def.Spec.Chart == "" {
			c.release = ""
		}
		b.byCap[capName] = c
		b.byName[name] = c
	}
	for _, capName := range sortedKeys(b.byCap) {
		c := b.byCap[capName]
		for _, need := range c.def.Spec.Consumes {
			if _, ok := b.byCap[need]; ok {
				c.deps = append(c.deps, b.byCap[need].def.Metadata.Name)
				c.needs = append(c.needs, b.byCap[need].def.Metadata.Name)
				continue
			}
			why := "which no component fills (the profile selects none)"
			if sel[need] == v1alpha1.None {
				why = "which is switched off"
			}
			errs = append(errs, w.Errorf("spec.components."+need, "component %q (%s) consumes %q, %s; known for %s: %s",
				c.def.Metadata.Name, capName, need, why, need, strings.Join(b.cat.ByCapability(need), ", ")))
		}
		for _, opt := range c.def.Spec.Optional {
			if p, ok := b.byCap[opt]; ok {
				c.deps = append(c.deps, p.def.Metadata.Name)
			}
		}
		sort.Strings(c.deps)
		sort.Strings(c.needs)
	}
	return errors.Join(errs...)
}

// checkInputs validates the workplace's values, patches and hostnames against the selection.
func (b *builder) checkInputs() error {
	w := b.w
	var errs []error
	for _, name := range sortedKeys(w.Spec.Values) {
		if _, ok := b.cat.Components[name]; !ok {
			errs = append(errs, w.Errorf("spec.values."+name, "unknown component %q", name))
			continue
		}
		if _, err := fromJSON(w.Spec.Values[name]); err != nil {
			errs = append(errs, w.Errorf("spec.values."+name, "%v", err))
		}
	}
	for _, name := range sortedKeys(w.Spec.Patches) {
		comp, ok := b.cat.Components[name]
		if !ok {
			errs = append(errs, w.Errorf("spec.patches."+name, "unknown component %q", name))
			continue
		}
		if comp.Spec.Chart == "" {
			errs = append(errs, w.Errorf("spec.patches."+name, "component %q has no chart to patch", name))
		}
		for i, p := range w.Spec.Patches[name] {
			if strings.TrimSpace(p.Patch) == "" {
				errs = append(errs, w.Errorf(fmt.Sprintf("spec.patches.%s[%d].patch", name, i), "required"))
			}
		}
	}
	for _, name := range sortedKeys(w.Spec.Versions) {
		comp, ok := b.cat.Components[name]
		if !ok {
			errs = append(errs, w.Errorf("spec.versions."+name, "unknown component %q", name))
			continue
		}
		if v := string(w.Spec.Versions[name]); comp.VersionIndex(v) < 0 {
			err := &upgrade.UnknownVersionError{Component: name, Version: v, Known: comp.VersionNames()}
			errs = append(errs, w.Errorf("spec.versions."+name, "%v (%s: spec.versions)", err, comp.File))
		}
	}
	owner := map[string]string{}
	for _, capName := range sortedKeys(b.byCap) {
		c := b.byCap[capName]
		c.hosts = map[string]string{}
		for _, h := range c.def.Spec.Hosts {
			fqdn := w.Spec.Domain
			if h.Subdomain != "" && h.Subdomain != "@" {
				fqdn = h.Subdomain + "." + w.Spec.Domain
			}
			if err := load.ValidateDomain(fqdn); err != nil {
				errs = append(errs, w.Errorf("spec.domain", "host %q of component %q: %v", h.Name, c.def.Metadata.Name, err))
			}
			c.hosts[h.Name] = fqdn
			// The bare domain may be shared (each component claims its own paths there).
			if fqdn == w.Spec.Domain {
				continue
			}
			if prev, dup := owner[fqdn]; dup {
				errs = append(errs, w.Errorf("spec.components."+capName, "duplicate hostname %q: served by component %q and by %s", fqdn, c.def.Metadata.Name, prev))
				continue
			}
			owner[fqdn] = fmt.Sprintf("component %q", c.def.Metadata.Name)
		}
		vals := map[string]any{}
		if ov, ok := b.profile.values[c.def.Metadata.Name]; ok {
			vals = merge(vals, ov)
		}
		if raw, ok := w.Spec.Values[c.def.Metadata.Name]; ok {
			m, err := fromJSON(raw)
			if err == nil {
				vals = merge(vals, m)
			}
		}
		c.values = vals
		c.target = len(c.def.Spec.Versions) - 1
		c.versionOrigin = fmt.Sprintf("%s: %s %q: spec.versions", c.def.File, catalog.ComponentKind, c.def.Metadata.Name)
		if pin, ok := w.Spec.Versions[c.def.Metadata.Name]; ok {
			if i := c.def.VersionIndex(string(pin)); i >= 0 {
				c.target = i
				c.versionOrigin = fmt.Sprintf("%s: %s: spec.versions.%s", w.File, w.Label(), c.def.Metadata.Name)
			}
		}
	}
	return errors.Join(errs...)
}

// order sorts the selected components so required providers come before their
// consumers, and reports a dependency cycle naming its members. Optional consumption
// only wires URLs (they are known before anything runs), so it does not order: files
// and office may point at each other.
func (b *builder) order() ([]string, error) {
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var out []string
	var stack []string
	var visit func(name string) error
	visit = func(name string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			i := 0
			for i < len(stack) && stack[i] != name {
				i++
			}
			cycle := append(append([]string{}, stack[i:]...), name)
			return b.w.Errorf("spec.components", "dependency cycle: %s", strings.Join(cycle, " → "))
		}
		state[name] = visiting
		stack = append(stack, name)
		for _, dep := range b.byName[name].needs {
			if err := visit(dep); err != nil {
				return err
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
		out = append(out, name)
		return nil
	}
	for _, name := range sortedKeys(b.byName) {
		if err := visit(name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// mergedRouting is the profile's routing with the workplace's over it.
func (b *builder) mergedRouting() v1alpha1.Routing {
	r := b.profile.routing
	if o := b.w.Spec.Routing; o != nil {
		r = mergeRouting(r, *o)
	}
	return r
}

// routing computes the routing value every chart receives, and the name of the
// self-signed wildcard Secret when the TLS mode asks for one.
func (b *builder) routing() (map[string]any, string) {
	r := b.mergedRouting()
	mode := strings.ToLower(string(r.Mode))
	if mode == "" {
		mode = "ingress"
	}
	gw := map[string]any{"name": "", "namespace": "", "sectionName": ""}
	if r.Gateway != nil {
		gw = map[string]any{"name": r.Gateway.Name, "namespace": r.Gateway.Namespace, "sectionName": r.Gateway.SectionName}
	}
	tls := map[string]any{"secretName": "", "clusterIssuer": "", "issuer": ""}
	var tlsSecret string
	var ca *v1alpha1.SecretKeyRef
	if r.TLS != nil {
		switch r.TLS.Mode {
		case v1alpha1.TLSSelfSigned:
			tlsSecret = contract.TLSSecret(b.w.Name)
			tls["secretName"] = tlsSecret
			ca = &v1alpha1.SecretKeyRef{Name: tlsSecret, Key: SelfSignedCAKey}
		case v1alpha1.TLSSecret:
			tls["secretName"] = r.TLS.SecretName
			ca = r.TLS.CASecret
		case v1alpha1.TLSIssuer:
			if r.TLS.Issuer.Kind == "Issuer" {
				tls["issuer"] = r.TLS.Issuer.Name
			} else {
				tls["clusterIssuer"] = r.TLS.Issuer.Name
			}
			ca = r.TLS.CASecret
		}
	}
	tls["caSecret"] = caSecretValue(ca)
	return map[string]any{
		"mode":             mode,
		"ingress":          map[string]any{"className": r.IngressClassName},
		"gateway":          gw,
		"tls":              tls,
		"ingressNamespace": r.ControllerNamespace,
	}, tlsSecret
}

// baseContext is the template context every component gets, before wiring.
func (b *builder) baseContext(c *component, routing map[string]any) map[string]any {
	w := b.w
	urls := map[string]any{}
	hosts := map[string]any{}
	for k, v := range c.hosts {
		hosts[k] = v
		urls[k] = "https://" + v
	}
	secrets := map[string]any{}
	for _, s := range c.def.Spec.Secrets {
		secrets[s.Name] = map[string]any{"name": contract.ComponentSecret(b.releaseOrName(c), s.Name)}
	}
	registry := ""
	if w.Spec.Images != nil {
		registry = w.Spec.Images.Registry
	}
	return map[string]any{
		"Workplace": map[string]any{"Name": w.Name, "Namespace": w.Namespace, "Domain": w.Spec.Domain},
		"Release":   map[string]any{"Name": c.release, "Namespace": w.Namespace},
		"Component": map[string]any{"Name": c.def.Metadata.Name, "Capability": c.def.Spec.Capability},
		"Hosts":     hosts,
		"URLs":      urls,
		"Routing":   routing,
		"Images":    map[string]any{"Registry": registry},
		"Settings":  deepCopy(b.profile.settings),
		"Values":    deepCopy(c.values),
		"Secrets":   secrets,
		"Version":   c.versionName(c.target),
	}
}

// versionName is the name of the component's version at index i ("" for -1).
func (c *component) versionName(i int) string {
	if i < 0 {
		return ""
	}
	return c.def.Spec.Versions[i].Version
}

// releaseOrName names a component's secrets: its release, or <workplace>-<component>
// for wiring-only components.
func (b *builder) releaseOrName(c *component) string {
	if c.release != "" {
		return c.release
	}
	return contract.ReleaseName(b.w.Name, c.def.Metadata.Name)
}

// export renders a provider's exports and checks them against its capability's contract.
func (b *builder) export(c *component, ctx map[string]any) error {
	def := c.def
	capDef, _ := b.cat.Capability(def.Spec.Capability)
	c.exports = map[string]any{}
	if strings.TrimSpace(def.Spec.Exports) != "" {
		t, err := b.cat.Template(def.Metadata.Name+" exports", def.Spec.Exports)
		if err != nil {
			return b.componentError(c, "spec.exports", err)
		}
		out, err := t.Execute(ctx)
		if err != nil {
			return b.componentError(c, "spec.exports", err)
		}
		c.exports = out
	}
	var missing []string
	for _, k := range capDef.Exports {
		if v, ok := c.exports[k]; !ok || v == nil || v == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return b.componentError(c, "spec.exports", fmt.Errorf("the %s contract requires %s", capDef.Name, strings.Join(missing, ", ")))
	}
	c.exports["component"] = def.Metadata.Name
	c.exports["release"] = c.release
	return nil
}

// componentError reports a problem of a component's template in the workplace that
// triggered it, naming the component's file and field too.
func (b *builder) componentError(c *component, field string, err error) error {
	return b.w.Errorf("spec.components."+c.def.Spec.Capability, "component %q: %s: %s: %v", c.def.Metadata.Name, c.def.File, field, err)
}

// wire computes what each consumer receives (.Uses) and what each provider learns of
// its consumers (.Consumers).
func (b *builder) wire() {
	consumers := map[string][]map[string]any{}
	if idp, ok := b.byCap[contract.Identity]; ok {
		issuer, _ := idp.exports["issuerURL"].(string)
		b.identity = &Identity{Component: idp.def.Metadata.Name, IssuerURL: issuer, External: isExternal(idp)}
	}
	for _, name := range sortedKeys(b.byName) {
		c := b.byName[name]
		c.uses = map[string]any{}
		entry := map[string]any{
			"Component": name,
			"Release":   c.release,
			"Hosts":     stringMap(c.hosts),
			"URLs":      urlMap(c.hosts),
		}
		for _, dep := range c.deps {
			p := b.byName[dep]
			capName := p.def.Spec.Capability
			use := deepCopy(p.exports)
			switch capName {
			case contract.Identity:
				if o := c.def.Spec.OIDCClient; o != nil {
					root := "https://" + c.hosts[o.Host]
					id, ref := b.client(c, p)
					use["clientID"] = id
					oidc := map[string]any{
						"clientID":               id,
						"rootURL":                root,
						"redirectURIs":           joinPaths(root, o.RedirectPaths),
						"postLogoutRedirectURIs": joinPaths(root, o.PostLogoutRedirectPaths),
						"webOrigins":             []any{root},
						"publicClient":           o.PublicClient,
						"backchannelLogoutURL":   joinPath(root, o.BackchannelLogoutPath),
						"frontchannelLogoutURL":  joinPath(root, o.FrontchannelLogoutPath),
					}
					if ref != nil {
						use["clientSecret"] = ref.Map()
						oidc["clientSecret"] = ref.Map()
					}
					entry["OIDC"] = oidc
					b.identity.Clients = append(b.identity.Clients, OIDCClient{
						Component: name, ClientID: id, Public: o.PublicClient, Secret: ref, RootURL: root,
						RedirectURIs: joinStrings(root, o.RedirectPaths), PostLogoutRedirectURIs: joinStrings(root, o.PostLogoutRedirectPaths),
						BackchannelLogoutURI: joinPath(root, o.BackchannelLogoutPath), FrontchannelLogoutURI: joinPath(root, o.FrontchannelLogoutPath),
					})
				}
			case contract.Postgres:
				dbs := map[string]any{}
				var list []any
				for _, d := range c.def.Spec.Databases {
					ref := contract.DatabasePasswordSecret(b.releaseOrName(c), d.Name)
					if cs, _ := p.exports["credentialsSecret"].(string); cs != "" {
						ref = contract.ExternalDatabasePasswordSecret(cs, d.Name)
					}
					dbs[d.Name] = map[string]any{
						"host": p.exports["host"], "port": p.exports["port"], "sslMode": p.exports["sslMode"],
						"database": d.Name, "user": d.Name, "passwordSecret": ref.Map(),
					}
					list = append(list, map[string]any{"database": d.Name, "user": d.Name, "collation": d.Collation, "passwordSecret": ref.Map()})
				}
				use["databases"] = dbs
				entry["Databases"] = list
			}
			c.uses[capName] = use
		}
		for _, dep := range c.deps {
			consumers[dep] = append(consumers[dep], entry)
		}
	}
	for name, c := range b.byName {
		list := make([]any, 0, len(consumers[name]))
		for _, e := range consumers[name] {
			e := deepCopy(e)
			// A consumer entry carries only what concerns this provider.
			switch c.def.Spec.Capability {
			case contract.Identity:
				delete(e, "Databases")
			case contract.Postgres:
				delete(e, "OIDC")
			default:
				delete(e, "OIDC")
				delete(e, "Databases")
			}
			list = append(list, e)
		}
		c.consumers = list
	}
}

// tiles resolves the tile of every selected component that declares one: its URL
// from the tile's host and path (a template with the component's base context), so
// the tile follows the component through a swap. Sorted by name, then component.
func (b *builder) tiles(order []string, routing map[string]any) ([]App, error) {
	var out []App
	var errs []error
	for _, name := range order {
		c := b.byName[name]
		t := c.def.Spec.Tile
		if t == nil {
			continue
		}
		tmpl, err := b.cat.Template(name+" tile path", t.Path)
		if err != nil {
			errs = append(errs, b.componentError(c, "spec.tile.path", err))
			continue
		}
		p, err := tmpl.String(b.baseContext(c, routing))
		if err != nil {
			errs = append(errs, b.componentError(c, "spec.tile.path", err))
			continue
		}
		if p = strings.TrimSpace(p); p == "" {
			p = "/"
		}
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t\n\"<>") {
			errs = append(errs, b.componentError(c, "spec.tile.path", fmt.Errorf("renders %q: not a URL path", p)))
			continue
		}
		out = append(out, App{Component: name, Capability: c.def.Spec.Capability, Name: strings.TrimSpace(t.Name),
			Description: strings.TrimSpace(t.Description), URL: "https://" + c.hosts[t.Host] + p, Icon: t.IconURI})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Component < out[j].Component
	})
	return out, nil
}

// appsValue is .Apps of a portal's template context: one map per tile.
func appsValue(apps []App) []any {
	out := make([]any, 0, len(apps))
	for _, a := range apps {
		out = append(out, map[string]any{"Component": a.Component, "Capability": a.Capability, "Name": a.Name,
			"Description": a.Description, "URL": a.URL, "Icon": a.Icon})
	}
	return out
}

// secrets lists the Secrets a component needs generated.
func (b *builder) secrets(c *component) []Secret {
	name := c.def.Metadata.Name
	rel := b.releaseOrName(c)
	var out []Secret
	for _, s := range c.def.Spec.Secrets {
		out = append(out, Secret{Name: contract.ComponentSecret(rel, s.Name), Component: name, Type: "Opaque", Keys: s.Keys, TakenUp: s.TakenUp})
	}
	// An external provider's client secrets are the operator's Secrets.
	if o := c.def.Spec.OIDCClient; o != nil && !o.PublicClient && !isExternal(b.byCap[contract.Identity]) {
		if _, ok := c.uses[contract.Identity]; ok {
			ref := contract.OIDCClientSecret(rel)
			out = append(out, Secret{Name: ref.Name, Component: name, Type: "Opaque", Keys: map[string]catalog.Generator{ref.Key: {Length: 48}}})
		}
	}
	if pg, ok := b.byCap[contract.Postgres]; ok {
		if cs, _ := pg.exports["credentialsSecret"].(string); cs == "" {
			if _, uses := c.uses[contract.Postgres]; uses {
				for _, d := range c.def.Spec.Databases {
					ref := contract.DatabasePasswordSecret(rel, d.Name)
					out = append(out, Secret{Name: ref.Name, Component: name, Type: "Opaque", Keys: map[string]catalog.Generator{ref.Key: {Length: 32}}})
				}
			}
		}
	}
	return out
}

// release computes the release of a component at its target version and, for a
// component with versions, the release at each older listed version: the steps an
// upgrade path may take (Release.Path).
func (b *builder) release(c *component, routing map[string]any) (*Release, error) {
	rel, err := b.releaseAt(c, routing, c.target)
	if err != nil {
		return nil, err
	}
	rel.def = c.def
	rel.VersionOrigin = c.versionOrigin
	for i := 0; i < c.target; i++ {
		r, err := b.releaseAt(c, routing, i)
		if err != nil {
			return nil, err
		}
		r.VersionOrigin = c.versionOrigin
		rel.earlier = append(rel.earlier, r)
	}
	return rel, nil
}

// releaseAt computes one release at the component's version with index vi (-1 for a
// component without versions): values from the mapping, the version's overlay, the
// profile's and workplace's values, its migrations and the digest.
func (b *builder) releaseAt(c *component, routing map[string]any, vi int) (*Release, error) {
	def := c.def
	var ver catalog.Version // the zero Version for an unversioned component
	if vi >= 0 {
		ver = def.Spec.Versions[vi]
	}
	chartDir, images := def.Spec.Chart, def.Spec.Images
	if ver.Chart != "" {
		chartDir = ver.Chart
	}
	if vi >= 0 && vi < len(def.Spec.Versions)-1 {
		images = ver.Images
	}
	ch, err := b.cat.Chart(chartDir)
	if err != nil {
		return nil, b.componentError(c, "spec.chart", err)
	}
	ctx := b.baseContext(c, routing)
	ctx["Uses"] = deepCopy(c.uses)
	ctx["Consumers"] = c.consumers
	ctx["Version"] = c.versionName(vi)
	// Every component may list the workplace's apps (the portal does); a tile that
	// changes re-renders only the components whose templates read .Apps.
	ctx["Apps"] = appsValue(b.apps)
	t, err := b.cat.Template(def.Metadata.Name+" values", def.Spec.Values)
	if err != nil {
		return nil, b.componentError(c, "spec.values", err)
	}
	mapped, err := t.Execute(ctx)
	if err != nil {
		return nil, b.componentError(c, "spec.values", err)
	}
	if strings.TrimSpace(ver.Values) != "" {
		field := fmt.Sprintf("spec.versions[%d]", vi)
		t, err := b.cat.Template(def.Metadata.Name+" "+ver.Version+" values", ver.Values)
		if err != nil {
			return nil, b.componentError(c, field+".values", err)
		}
		overlay, err := t.Execute(ctx)
		if err != nil {
			return nil, b.componentError(c, field+".values", err)
		}
		mapped = merge(mapped, overlay)
	}
	values, err := normalize(merge(mapped, deepCopy(c.values)))
	if err != nil {
		return nil, b.componentError(c, "spec.values", err)
	}
	migrations, err := b.migrations(c, ctx, vi)
	if err != nil {
		return nil, err
	}
	var deps []string
	for _, d := range c.needs {
		if r := b.byName[d].release; r != "" {
			deps = append(deps, r)
		}
	}
	timeout := DefaultTimeout
	if def.Spec.Timeout != nil {
		timeout = def.Spec.Timeout.Duration
	}
	rel := &Release{
		Workplace:     b.w.Name,
		Name:          c.release,
		Namespace:     b.w.Namespace,
		Component:     def.Metadata.Name,
		Capability:    def.Spec.Capability,
		ChartPath:     chartDir,
		ChartName:     ch.Chart.Name(),
		ChartVersion:  ch.Chart.Metadata.Version,
		ChartDigest:   ch.Digest,
		DependsOn:     deps,
		Hosts:         c.hosts,
		Images:        images,
		ClusterScoped: def.Spec.ClusterScoped,
		Timeout:       timeout,
		Values:        values,
		Patches:       b.w.Spec.Patches[def.Metadata.Name],
		Version:       ver.Version,
		Risky:         ver.Risky,
		Migrations:    migrations,
		Databases:     b.databases(c),
		Backups:       backupsFor(b.profile.backups, &b.w.Workplace, trustedCA(routing)),
		Chart:         ch,
		PatchesOrigin: fmt.Sprintf("%s: %s: spec.patches.%s", b.w.File, b.w.Label(), def.Metadata.Name),
	}
	rel.Digest, err = digest(rel)
	if err != nil {
		return nil, b.componentError(c, "spec.values", err)
	}
	return rel, nil
}

// databases lists the component's databases when its PostgreSQL provider is a release
// of the workplace (not an external server with its own credentials).
//
// For the PostgreSQL provider release itself, they are every consumer's databases on
// it, ordered by consumer: what its own risky steps (a major upgrade) dump.
func (b *builder) databases(c *component) []Database {
	pg, ok := b.byCap[contract.Postgres]
	if ok && c == pg && pg.release != "" {
		if cs, _ := pg.exports["credentialsSecret"].(string); cs != "" {
			return nil
		}
		names := slices.Sorted(maps.Keys(b.byName))
		var out []Database
		for _, n := range names {
			if consumer := b.byName[n]; consumer != c {
				out = append(out, b.databases(consumer)...)
			}
		}
		return out
	}
	if !ok || pg.release == "" || len(c.def.Spec.Databases) == 0 {
		return nil
	}
	if _, uses := c.uses[contract.Postgres]; !uses {
		return nil
	}
	if cs, _ := pg.exports["credentialsSecret"].(string); cs != "" {
		return nil
	}
	out := make([]Database, 0, len(c.def.Spec.Databases))
	for _, d := range c.def.Spec.Databases {
		out = append(out, Database{Name: d.Name, Server: pg.release})
	}
	return out
}

// migrations renders the migration Jobs of the component's version vi with the
// template context of its values.
func (b *builder) migrations(c *component, ctx map[string]any, vi int) ([]Migration, error) {
	if vi < 0 {
		return nil, nil
	}
	var out []Migration
	for j, m := range c.def.Spec.Versions[vi].Migrations {
		field := fmt.Sprintf("spec.versions[%d].migrations[%d].job", vi, j)
		t, err := b.cat.Template(c.def.Metadata.Name+" migration "+m.Name, m.Job)
		if err != nil {
			return nil, b.componentError(c, field, err)
		}
		rendered, err := t.Execute(ctx)
		if err != nil {
			return nil, b.componentError(c, field, err)
		}
		job, err := jobSpec(rendered)
		if err != nil {
			return nil, b.componentError(c, field, err)
		}
		timeout := catalog.DefaultMigrationTimeout
		if m.Timeout != nil {
			timeout = m.Timeout.Duration
		}
		out = append(out, Migration{Name: m.Name, Phase: m.Phase, Timeout: timeout, Job: job, From: m.From, StopConsumers: m.StopConsumers})
	}
	return out, nil
}

// jobSpec decodes a rendered template as a batch/v1 JobSpec; unknown fields are errors.
func jobSpec(rendered map[string]any) (batchv1.JobSpec, error) {
	var spec batchv1.JobSpec
	data, err := json.Marshal(rendered)
	if err != nil {
		return spec, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return spec, fmt.Errorf("not a batch/v1 JobSpec: %w", err)
	}
	if len(spec.Template.Spec.Containers) == 0 {
		return spec, errors.New("not a batch/v1 JobSpec: template.spec.containers is empty")
	}
	return spec, nil
}

// Earlier returns the release at each version its component lists older than
// Version, oldest first: the steps an upgrade path may take (see Path).
func (r *Release) Earlier() []*Release { return slices.Clone(r.earlier) }

// Pinned reports whether the release installs an older version than the newest its
// component lists (a workplace's pin).
func (r *Release) Pinned() bool { return r.def != nil && r.Version != r.def.Newest() }

// NewestVersion is the newest version the release's component lists ("" without
// versions).
func (r *Release) NewestVersion() string {
	if r.def == nil {
		return ""
	}
	return r.def.Newest()
}

// Path returns the releases to apply, in order, to bring the component from deployed
// (the version recorded with its last ready revision; "" when it is not installed) to
// r.Version, one per step of upgrade.Path: each older step is the component at that
// version (its chart, values, images, migrations) with r's patches and pod
// annotations, so it carries what the reconciler added to r; the last step is r.
// Nil means no path: nothing deployed, the same version, or a component without
// versions; apply r as always. A refusal (downgrade, no path, a skipped stepping
// stone) is upgrade's typed error wrapped with r.VersionOrigin.
func (r *Release) Path(deployed string) ([]*Release, error) {
	if r.def == nil {
		return nil, nil
	}
	steps, err := upgrade.Path(r.def, deployed, r.Version)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.VersionOrigin, err)
	}
	if len(steps) == 0 {
		return nil, nil
	}
	out := make([]*Release, 0, len(steps))
	for _, s := range steps {
		i := r.def.VersionIndex(s.Version)
		if i < 0 || i > len(r.earlier) {
			return nil, fmt.Errorf("%s: version %s of component %s was not planned", r.VersionOrigin, s.Version, r.Component)
		}
		if i == len(r.earlier) {
			out = append(out, r)
			continue
		}
		step := *r.earlier[i]
		step.Patches, step.PatchesOrigin, step.PodAnnotations = r.Patches, r.PatchesOrigin, r.PodAnnotations
		if step.Digest, err = digest(&step); err != nil {
			return nil, fmt.Errorf("release %s at %s: digest: %w", r.Name, s.Version, err)
		}
		out = append(out, &step)
	}
	return out, nil
}

// Digest recomputes a release's digest, for a caller that changed its patches (the
// reconciler adds one carrying the content versions of the Secrets it references).
func Digest(r *Release) (string, error) { return digest(r) }

// digest hashes what determines a release's manifests: name, namespace, chart, values,
// patches and pod annotations. JSON encoding sorts map keys, so equal input hashes equally.
func digest(r *Release) (string, error) {
	data, err := json.Marshal(struct {
		Name, Namespace, Chart string
		Values                 map[string]any
		Patches                []kustomize.Patch
		// omitempty: digests of releases without pod annotations stay as they were.
		PodAnnotations map[string]string `json:",omitempty"`
	}{r.Name, r.Namespace, r.ChartDigest, r.Values, r.Patches, r.PodAnnotations})
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

func joinPaths(root string, paths []string) []any {
	out := make([]any, 0, len(paths))
	for _, p := range paths {
		out = append(out, root+p)
	}
	return out
}

func joinStrings(root string, paths []string) []string {
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		out = append(out, root+p)
	}
	return out
}

// joinPath appends an optional path to root; "" stays "" (no URL).
func joinPath(root, path string) string {
	if path == "" {
		return ""
	}
	return root + path
}

func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func urlMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = "https://" + v
	}
	return out
}

// deepCopy copies maps and slices of a template value, so templates never share state.
func deepCopy[T any](v T) T {
	return copyAny(any(v)).(T)
}

func copyAny(v any) any {
	switch t := v.(type) {
	case map[string]any:
		if t == nil {
			return t
		}
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = copyAny(e)
		}
		return out
	case []any:
		if t == nil {
			return t
		}
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = copyAny(e)
		}
		return out
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
