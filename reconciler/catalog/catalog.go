// Package catalog loads the capabilities, components, profiles and charts a
// workplace can use: the built-in ones embedded in the binary, extended and
// overridden by a workplace repository's own capabilities/, components/, profiles/
// and charts/ folders.
package catalog

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/ignore"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler/contract"
	"github.com/platzwart/platzwart/reconciler/yamldoc"
)

// Layer is one source of catalog files: the built-in catalog or a repository.
type Layer struct {
	// FS holds capabilities/, components/, profiles/ and charts/ at its root.
	FS fs.FS
	// Label prefixes file paths in messages ("builtin" or the repository path).
	Label string
}

// file returns how a path of this layer appears in messages.
func (l Layer) file(p string) string {
	if l.Label == "" {
		return p
	}
	return path.Join(l.Label, p)
}

// Catalog is the set of components and profiles, and access to their charts.
type Catalog struct {
	// Components by name.
	Components map[string]*Component
	// Profiles by name.
	Profiles map[string]*Profile
	// Capabilities are the application capabilities declared as data, by name; the
	// grant capabilities are code (contract.Grant). Use Capability to look one up.
	Capabilities map[string]*CapabilityDoc

	layers []Layer // lowest first

	mu     sync.Mutex
	charts map[string]*Chart
	// templates are the components' templates parsed once per catalog (Template):
	// every plan built from the catalog executes them, in parallel.
	templates sync.Map
}

// Chart is a loaded chart and the digest of its content.
type Chart struct {
	// Chart is the loaded Helm chart.
	Chart *chart.Chart
	// Digest is the sha256 of every file of the chart that Helm loads.
	Digest string
	// File is where the chart came from, for messages.
	File string
}

// Load reads the catalog from layers, lowest first: a component or profile of a later
// layer replaces one of the same name, a chart directory of a later layer replaces
// the whole directory. Every problem found is returned, each naming file and field.
func Load(layers ...Layer) (*Catalog, error) {
	c := &Catalog{
		Components:   map[string]*Component{},
		Profiles:     map[string]*Profile{},
		Capabilities: map[string]*CapabilityDoc{},
		layers:       layers,
		charts:       map[string]*Chart{},
	}
	var errs []error
	for _, l := range layers {
		errs = append(errs, c.loadCapabilities(l)...)
		errs = append(errs, c.loadComponents(l)...)
		errs = append(errs, c.loadProfiles(l)...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, name := range sortedKeys(c.Components) {
		errs = append(errs, c.readIcon(c.Components[name])...)
	}
	for _, name := range sortedKeys(c.Components) {
		errs = append(errs, c.validateComponent(c.Components[name])...)
	}
	for _, name := range sortedKeys(c.Profiles) {
		errs = append(errs, c.validateProfile(c.Profiles[name])...)
	}
	return c, errors.Join(errs...)
}

func (c *Catalog) loadComponents(l Layer) []error {
	entries, err := fs.ReadDir(l.FS, "components")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return []error{fmt.Errorf("%s: %w", l.file("components"), err)}
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p := path.Join("components", e.Name(), "component.yaml")
		file := l.file(p)
		data, err := fs.ReadFile(l.FS, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", file, err))
			continue
		}
		var comp Component
		if err := decodeOne(file, data, ComponentKind, &comp); err != nil {
			errs = append(errs, err)
			continue
		}
		if comp.Metadata.Name != e.Name() {
			errs = append(errs, yamldoc.Errorf(file, fmt.Sprintf("%s %q", ComponentKind, comp.Metadata.Name), "metadata.name",
				"must equal the folder name %q", e.Name()))
			continue
		}
		comp.File = file
		c.Components[comp.Metadata.Name] = &comp
	}
	return errs
}

func (c *Catalog) loadProfiles(l Layer) []error {
	return eachYAML(l, "profiles", func(file, name string, data []byte) []error {
		var prof Profile
		if err := decodeOne(file, data, ProfileKind, &prof); err != nil {
			return []error{err}
		}
		if prof.Metadata.Name != name {
			return []error{yamldoc.Errorf(file, fmt.Sprintf("%s %q", ProfileKind, prof.Metadata.Name), "metadata.name",
				"must equal the file name %q", name)}
		}
		prof.File = file
		c.Profiles[prof.Metadata.Name] = &prof
		return nil
	})
}

// eachYAML calls fn with every .yaml or .yml file directly in dir of the layer: its
// path for messages, its name without the extension and its content. A missing dir
// is no error.
func eachYAML(l Layer, dir string, fn func(file, name string, data []byte) []error) []error {
	entries, err := fs.ReadDir(l.FS, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return []error{fmt.Errorf("%s: %w", l.file(dir), err)}
	}
	var errs []error
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".yaml")
		if !ok {
			name, ok = strings.CutSuffix(e.Name(), ".yml")
		}
		if e.IsDir() || !ok {
			continue
		}
		p := path.Join(dir, e.Name())
		file := l.file(p)
		data, err := fs.ReadFile(l.FS, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", file, err))
			continue
		}
		errs = append(errs, fn(file, name, data)...)
	}
	return errs
}

// readIcon reads a tile's icon file from the highest layer whose component folder
// has it, like a chart: a repository that overrides a built-in component.yaml keeps
// the built-in icon, and its own icon file replaces it.
func (c *Catalog) readIcon(comp *Component) []error {
	t := comp.Spec.Tile
	if t == nil || t.Icon == "" {
		return nil
	}
	dir := path.Join("components", comp.Metadata.Name)
	bad := func(err error) []error {
		return []error{yamldoc.Errorf(comp.File, fmt.Sprintf("%s %q", ComponentKind, comp.Metadata.Name), "spec.tile.icon", "%v", err)}
	}
	if strings.HasPrefix(t.Icon, "data:") || len(c.layers) == 0 {
		uri, err := iconURI(nil, dir, t.Icon)
		if err != nil {
			return bad(err)
		}
		t.IconURI = uri
		return nil
	}
	var uri string
	var err error
	for i := len(c.layers) - 1; i >= 0; i-- {
		uri, err = iconURI(c.layers[i].FS, dir, t.Icon)
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return bad(err)
	}
	t.IconURI = uri
	return nil
}

// decodeOne decodes a file holding exactly one document of the given kind.
func decodeOne(file string, data []byte, kind string, out any) error {
	docs, err := yamldoc.Split(file, data)
	if err != nil {
		return err
	}
	if len(docs) != 1 {
		return yamldoc.Errorf(file, "", "", "expected exactly one %s document, found %d", kind, len(docs))
	}
	d := docs[0]
	if d.APIVersion != v1alpha1.GroupVersion.String() {
		return yamldoc.Errorf(file, d.Label(), "apiVersion", "expected %q, got %q", v1alpha1.GroupVersion.String(), d.APIVersion)
	}
	if d.Kind != kind {
		return yamldoc.Errorf(file, d.Label(), "kind", "expected %q, got %q", kind, d.Kind)
	}
	return d.Decode(out)
}

var (
	imageRef  = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$`)
	secretKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
)

func (c *Catalog) validateComponent(comp *Component) []error {
	doc := fmt.Sprintf("%s %q", ComponentKind, comp.Metadata.Name)
	bad := func(field, format string, args ...any) error {
		return yamldoc.Errorf(comp.File, doc, field, format, args...)
	}
	s := comp.Spec
	var errs []error
	if _, ok := c.Capability(s.Capability); !ok {
		errs = append(errs, bad("spec.capability", "%v", c.unknownCapability(s.Capability)))
	}
	if s.Licence == "" {
		errs = append(errs, bad("spec.licence", "required (an SPDX identifier)"))
	}
	if s.URL == "" {
		errs = append(errs, bad("spec.url", "required (the upstream project's address)"))
	}
	if s.Chart != "" {
		if _, err := c.Chart(s.Chart); err != nil {
			errs = append(errs, bad("spec.chart", "%v", err))
		}
		if strings.TrimSpace(s.Values) == "" {
			errs = append(errs, bad("spec.values", "required when spec.chart is set (the mapping of the contract onto the chart's values)"))
		}
	} else if s.Values != "" {
		errs = append(errs, bad("spec.values", "a component without a chart has no values"))
	}
	seen := map[string]string{}
	for i, capName := range append(append([]string{}, s.Consumes...), s.Optional...) {
		field := fmt.Sprintf("spec.consumes[%d]", i)
		if i >= len(s.Consumes) {
			field = fmt.Sprintf("spec.optional[%d]", i-len(s.Consumes))
		}
		if _, ok := c.Capability(capName); !ok {
			errs = append(errs, bad(field, "%v", c.unknownCapability(capName)))
		}
		if capName == s.Capability {
			errs = append(errs, bad(field, "a component cannot consume its own capability %q", capName))
		}
		if prev, dup := seen[capName]; dup {
			errs = append(errs, bad(field, "capability %q is listed twice (also %s)", capName, prev))
		}
		seen[capName] = field
	}
	hosts := map[string]bool{}
	for i, h := range s.Hosts {
		field := fmt.Sprintf("spec.hosts[%d]", i)
		if h.Name == "" {
			errs = append(errs, bad(field+".name", "required"))
		}
		if hosts[h.Name] {
			errs = append(errs, bad(field+".name", "duplicate host %q", h.Name))
		}
		hosts[h.Name] = true
		if h.Subdomain != "" && h.Subdomain != "@" {
			for _, msg := range validation.IsDNS1123Subdomain(h.Subdomain) {
				errs = append(errs, bad(field+".subdomain", "%s", msg))
			}
		}
	}
	if o := s.OIDCClient; o != nil {
		if _, ok := seen[contract.Identity]; !ok {
			errs = append(errs, bad("spec.oidcClient", "needs %q in spec.consumes or spec.optional", contract.Identity))
		}
		if !hosts[o.Host] {
			errs = append(errs, bad("spec.oidcClient.host", "%q is not one of spec.hosts", o.Host))
		}
		for i, p := range append(append([]string{}, o.RedirectPaths...), o.PostLogoutRedirectPaths...) {
			if !strings.HasPrefix(p, "/") {
				errs = append(errs, bad("spec.oidcClient", "path %d %q must start with /", i, p))
			}
		}
		if p := o.BackchannelLogoutPath; p != "" && !strings.HasPrefix(p, "/") {
			errs = append(errs, bad("spec.oidcClient.backchannelLogoutPath", "%q must start with /", p))
		}
		if p := o.FrontchannelLogoutPath; p != "" && !strings.HasPrefix(p, "/") {
			errs = append(errs, bad("spec.oidcClient.frontchannelLogoutPath", "%q must start with /", p))
		}
	}
	if t := s.Tile; t != nil {
		if strings.TrimSpace(t.Name) == "" {
			errs = append(errs, bad("spec.tile.name", "required (the title people see on the start page)"))
		}
		if !hosts[t.Host] {
			errs = append(errs, bad("spec.tile.host", "%q is not one of spec.hosts (known: %s)", t.Host, strings.Join(sortedKeys(hosts), ", ")))
		}
		if t.Path != "" && !strings.HasPrefix(t.Path, "/") {
			errs = append(errs, bad("spec.tile.path", "%q must start with /", t.Path))
		}
		if _, err := ParseTemplate(comp.Metadata.Name+" tile path", t.Path); err != nil {
			errs = append(errs, bad("spec.tile.path", "template: %v", err))
		}
	}
	errs = append(errs, validateDNS(s, hosts, bad)...)
	for i, tc := range s.Trust {
		field := fmt.Sprintf("spec.trust[%d]", i)
		if tc.Container == "" {
			errs = append(errs, bad(field+".container", "required"))
		}
		if tc.Env == "" {
			errs = append(errs, bad(field+".env", "required"))
		}
		switch tc.Runtime {
		case "python", "php", "java", "node", "deno", "ruby", "go", "rust", "nginx", "openssl":
		default:
			errs = append(errs, bad(field+".runtime", "unknown runtime %q (known: python, php, java, node, deno, ruby, go, rust, nginx, openssl)", tc.Runtime))
		}
	}
	if len(s.Databases) > 0 {
		if _, ok := seen[contract.Postgres]; !ok {
			errs = append(errs, bad("spec.databases", "needs %q in spec.consumes", contract.Postgres))
		}
	}
	for i, d := range s.Databases {
		if !pgName(d.Name) {
			errs = append(errs, bad(fmt.Sprintf("spec.databases[%d].name", i), "%q is not a valid database name (lower-case letters, digits and _, starting with a letter)", d.Name))
		}
	}
	for i, sec := range s.Secrets {
		field := fmt.Sprintf("spec.secrets[%d]", i)
		for _, msg := range validation.IsDNS1123Label(sec.Name) {
			errs = append(errs, bad(field+".name", "%s", msg))
		}
		if len(sec.Keys) == 0 {
			errs = append(errs, bad(field+".keys", "at least one key is required"))
		}
		switch sec.TakenUp {
		case "", TakenUpFirstStart, TakenUpStart:
		default:
			errs = append(errs, bad(field+".takenUp", "unknown value %q (known: %s, %s)", sec.TakenUp, TakenUpStart, TakenUpFirstStart))
		}
		for _, k := range sortedKeys(sec.Keys) {
			g := sec.Keys[k]
			if !secretKey.MatchString(k) {
				errs = append(errs, bad(field+".keys."+k, "not a valid Secret key"))
			}
			switch g.Format {
			case "", "alphanumeric", "hex", "rsa":
			case "ecdsa-p256":
				if g.Length != 0 {
					errs = append(errs, bad(field+".keys."+k+".length", "ecdsa-p256 keys have a fixed size; leave length out"))
				}
			default:
				errs = append(errs, bad(field+".keys."+k+".format", "unknown format %q (known: alphanumeric, hex, rsa, ecdsa-p256)", g.Format))
			}
			if g.Format == "rsa" && g.Length != 0 && g.Length < 2048 {
				errs = append(errs, bad(field+".keys."+k+".length", "rsa keys need at least 2048 bits"))
			}
			if g.Length < 0 || g.Length > 4096 {
				errs = append(errs, bad(field+".keys."+k+".length", "must be between 1 and 4096"))
			}
		}
	}
	if s.Chart != "" && len(s.Images) == 0 {
		errs = append(errs, bad("spec.images", "list every image the chart runs"))
	}
	for i, img := range s.Images {
		if err := checkImage(img); err != nil {
			errs = append(errs, bad(fmt.Sprintf("spec.images[%d]", i), "%v", err))
		}
	}
	for _, t := range []struct{ field, text string }{{"spec.exports", s.Exports}, {"spec.values", s.Values}} {
		if _, err := ParseTemplate(comp.Metadata.Name, t.text); err != nil {
			errs = append(errs, bad(t.field, "template: %v", err))
		}
	}
	errs = append(errs, c.validateVersions(comp, bad)...)
	return errs
}

// checkImage accepts a fully qualified image reference with a pinned tag or digest.
func checkImage(img string) error {
	if !imageRef.MatchString(img) {
		return fmt.Errorf("%q is not a fully qualified image reference (registry/repository:tag)", img)
	}
	ref := img
	if i := strings.Index(ref, "@"); i >= 0 {
		return nil
	}
	slash := strings.LastIndex(ref, "/")
	colon := strings.LastIndex(ref, ":")
	if colon < slash {
		return fmt.Errorf("%q has no tag: pin a version", img)
	}
	switch tag := ref[colon+1:]; tag {
	case "latest", "stable", "edge", "main", "master", "nightly", "unstable":
		return fmt.Errorf("%q uses the floating tag %q: pin a version", img, tag)
	}
	return nil
}

// pgName accepts names that need no quoting in PostgreSQL.
func pgName(s string) bool {
	if s == "" || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

func (c *Catalog) validateProfile(p *Profile) []error {
	doc := fmt.Sprintf("%s %q", ProfileKind, p.Metadata.Name)
	var errs []error
	if p.Spec.Extends != "" {
		if _, ok := c.Profiles[p.Spec.Extends]; !ok {
			errs = append(errs, yamldoc.Errorf(p.File, doc, "spec.extends", "unknown profile %q (known: %s)", p.Spec.Extends, strings.Join(sortedKeys(c.Profiles), ", ")))
		}
	}
	for _, capName := range sortedKeys(p.Spec.Components) {
		if err := c.CheckSelection(capName, p.Spec.Components[capName]); err != nil {
			errs = append(errs, yamldoc.Errorf(p.File, doc, "spec.components."+capName, "%v", err))
		}
	}
	for _, name := range sortedKeys(p.Spec.Values) {
		if _, ok := c.Components[name]; !ok {
			errs = append(errs, yamldoc.Errorf(p.File, doc, "spec.values."+name, "unknown component %q", name))
		}
	}
	return errs
}

// CheckSelection reports whether component may fill capability capName.
func (c *Catalog) CheckSelection(capName, component string) error {
	if _, ok := c.Capability(capName); !ok {
		return c.unknownCapability(capName)
	}
	if component == v1alpha1.None {
		return nil
	}
	comp, ok := c.Components[component]
	if !ok {
		return fmt.Errorf("unknown component %q (known: %s)", component, strings.Join(append(c.ByCapability(capName), v1alpha1.None), ", "))
	}
	if comp.Spec.Capability != capName {
		return fmt.Errorf("component %q fills %q, not %q (known for %s: %s)", component, comp.Spec.Capability, capName, capName,
			strings.Join(append(c.ByCapability(capName), v1alpha1.None), ", "))
	}
	return nil
}

// ByCapability returns the names of the components that fill a capability, sorted.
func (c *Catalog) ByCapability(capName string) []string {
	var names []string
	for name, comp := range c.Components {
		if comp.Spec.Capability == capName {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// Chart loads the chart at dir (charts/<name>) from the highest layer that has
// dir/Chart.yaml. Paths leaving the layer (.., absolute paths, symlinks pointing
// out of a repository) are errors.
func (c *Catalog) Chart(dir string) (*Chart, error) {
	clean := path.Clean(dir)
	if !fs.ValidPath(clean) || clean != strings.TrimSuffix(dir, "/") || !strings.HasPrefix(clean, "charts/") || strings.Count(clean, "/") != 1 {
		return nil, fmt.Errorf("chart path %q must be charts/<name>, inside the repository", dir)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.charts[clean]; ok {
		return ch, nil
	}
	for i := len(c.layers) - 1; i >= 0; i-- {
		l := c.layers[i]
		if _, err := fs.Stat(l.FS, path.Join(clean, "Chart.yaml")); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("chart %q: %w", l.file(clean), err)
		}
		ch, err := loadChart(l.FS, clean)
		if err != nil {
			return nil, fmt.Errorf("chart %q: %w", l.file(clean), err)
		}
		ch.File = l.file(clean)
		c.charts[clean] = ch
		return ch, nil
	}
	return nil, fmt.Errorf("chart %q not found (no %s/Chart.yaml in the repository or the built-in catalog)", clean, clean)
}

// loadChart reads a chart directory from fsys, honouring .helmignore, and hashes it.
func loadChart(fsys fs.FS, dir string) (*Chart, error) {
	rules := ignore.Empty()
	if data, err := fs.ReadFile(fsys, path.Join(dir, ".helmignore")); err == nil {
		if rules, err = ignore.Parse(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf(".helmignore: %w", err)
		}
	}
	rules.AddDefaults()
	var files []*loader.BufferedFile
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, dir), "/")
		if rel == "" {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if rules.Ignore(rel, info) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s: symlinks are not allowed in charts", rel)
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: rel, Data: data})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00", f.Name, len(f.Data))
		h.Write(f.Data)
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, err
	}
	if err := ch.Validate(); err != nil {
		return nil, err
	}
	return &Chart{Chart: ch, Digest: "sha256:" + hex.EncodeToString(h.Sum(nil))}, nil
}

// sortedKeys returns the keys of a map in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
