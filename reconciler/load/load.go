// Package load reads a workplace repository from disk: its Workplace documents and its
// catalog (the built-in components, profiles and charts, extended by its own).
package load

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/platzwart/platzwart/api/v1alpha1"
	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/yamldoc"
)

// MaxNameLength bounds a Workplace name so that release names (<workplace>-<component>)
// stay within Helm's 53 characters.
const MaxNameLength = 24

// Workplace is a Workplace document and where it was read from.
type Workplace struct {
	v1alpha1.Workplace
	// File is the path of the file holding the document.
	File string
}

// Label names the document in messages.
func (w *Workplace) Label() string { return fmt.Sprintf("%s %q", v1alpha1.WorkplaceKind, w.Name) }

// Errorf returns an error naming the workplace's file, document and a field.
func (w *Workplace) Errorf(field, format string, args ...any) error {
	return yamldoc.Errorf(w.File, w.Label(), field, format, args...)
}

// Repository is a workplace repository: Workplace documents and a catalog.
type Repository struct {
	// Dir is the repository directory as given.
	Dir string
	// Workplaces are the Workplace documents found, sorted by namespace and name.
	Workplaces []*Workplace
	// Catalog is the built-in catalog overridden by the repository's own.
	Catalog *catalog.Catalog
}

// isCatalogDir reports whether a top-level folder holds catalog files, not Workplaces.
func isCatalogDir(name string) bool {
	switch name {
	case "capabilities", "components", "profiles", "charts":
		return true
	}
	return false
}

// Dir loads the repository at dir on top of the built-in catalog. A Workplace without
// metadata.namespace lives in namespace, or in a namespace named after it when
// namespace is "". Every problem found is returned; nothing is partially loaded.
func Dir(dir string, builtin fs.FS, namespace string) (*Repository, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("workplace repository %q: %w", dir, err)
	}
	defer root.Close()
	return FS(root.FS(), filepath.Clean(dir), builtin, namespace)
}

// FS loads a repository from fsys like Dir; label prefixes file paths in messages.
// DefaultLimits apply.
func FS(fsys fs.FS, label string, builtin fs.FS, namespace string) (*Repository, error) {
	return FSLimited(fsys, label, builtin, namespace, DefaultLimits())
}

// FSLimited loads a repository like FS within lim. A named pipe, socket or device
// file is refused without being opened; so is a file over lim.File, and the load
// fails once more than lim.Repository bytes were read. The catalog keeps reading
// charts through the same limits when plans ask for them.
func FSLimited(fsys fs.FS, label string, builtin fs.FS, namespace string, lim Limits) (*Repository, error) {
	fsys = newBoundedFS(fsys, label, lim)
	repoLayer := catalog.Layer{FS: fsys, Label: label}
	cat, catErr := catalog.Load(catalog.Layer{FS: builtin, Label: "builtin"}, repoLayer)
	wps, wpErr := workplaces(fsys, label, namespace)
	if err := errors.Join(catErr, wpErr); err != nil {
		return nil, err
	}
	if len(wps) == 0 {
		return nil, fmt.Errorf("%s: no Workplace document found (apiVersion %s, kind %s)", label, v1alpha1.GroupVersion, v1alpha1.WorkplaceKind)
	}
	return &Repository{Dir: label, Workplaces: wps, Catalog: cat}, nil
}

// workplaces reads every Workplace document of the repository, outside the catalog
// folders and hidden folders. Documents of other API groups are ignored, so the
// repository may hold other manifests too.
func workplaces(fsys fs.FS, label, namespace string) ([]*Workplace, error) {
	var errs []error
	var out []*Workplace
	seen := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && (strings.HasPrefix(d.Name(), ".") || (path.Dir(p) == "." && isCatalogDir(d.Name()))) {
				return fs.SkipDir
			}
			return nil
		}
		file := path.Join(label, p)
		if t := d.Type(); t&(fs.ModeNamedPipe|fs.ModeSocket|fs.ModeDevice|fs.ModeCharDevice|fs.ModeIrregular) != 0 {
			errs = append(errs, &FileError{File: file, Reason: describeMode(t) + ": only regular files and directories may be in a workplace repository"})
			return nil
		}
		if ext := path.Ext(p); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		data, err := fs.ReadFile(fsys, p)
		if fe := (*FileError)(nil); errors.As(err, &fe) {
			errs = append(errs, fe)
			return nil
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", file, err))
			return nil
		}
		docs, err := yamldoc.Split(file, data)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		for _, doc := range docs {
			if !strings.HasPrefix(doc.APIVersion, v1alpha1.GroupVersion.Group+"/") {
				continue
			}
			if doc.APIVersion != v1alpha1.GroupVersion.String() {
				errs = append(errs, yamldoc.Errorf(file, doc.Label(), "apiVersion", "unsupported version %q (supported: %s)", doc.APIVersion, v1alpha1.GroupVersion))
				continue
			}
			if doc.Kind != v1alpha1.WorkplaceKind {
				errs = append(errs, yamldoc.Errorf(file, doc.Label(), "kind", "unknown kind %q in a workplace folder (expected %s; components and profiles belong in components/ and profiles/)", doc.Kind, v1alpha1.WorkplaceKind))
				continue
			}
			w := &Workplace{File: file}
			if err := doc.Decode(&w.Workplace); err != nil {
				errs = append(errs, err)
				continue
			}
			if w.Namespace == "" {
				w.Namespace = namespace
			}
			if w.Namespace == "" {
				w.Namespace = w.Name
			}
			if err := validate(w); err != nil {
				errs = append(errs, err)
				continue
			}
			key := w.Namespace + "/" + w.Name
			if prev, dup := seen[key]; dup {
				errs = append(errs, w.Errorf("metadata.name", "workplace %s is declared twice (also in %s)", key, prev))
				continue
			}
			seen[key] = file
			out = append(out, w)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", label, err))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, errors.Join(errs...)
}

// validate checks what a Workplace can be checked for without the catalog.
func validate(w *Workplace) error {
	var errs []error
	if w.Name == "" {
		errs = append(errs, yamldoc.Errorf(w.File, "Workplace", "metadata.name", "required"))
	}
	for _, msg := range validation.IsDNS1123Label(w.Name) {
		errs = append(errs, w.Errorf("metadata.name", "%s", msg))
	}
	if len(w.Name) > MaxNameLength {
		errs = append(errs, w.Errorf("metadata.name", "at most %d characters (release names are <workplace>-<component>)", MaxNameLength))
	}
	for _, msg := range validation.IsDNS1123Label(w.Namespace) {
		errs = append(errs, w.Errorf("metadata.namespace", "%s", msg))
	}
	s := w.Spec
	if err := ValidateDomain(s.Domain); err != nil {
		errs = append(errs, w.Errorf("spec.domain", "%v", err))
	}
	if s.Profile == "" {
		errs = append(errs, w.Errorf("spec.profile", "required (for example minikube or standard)"))
	}
	switch s.DataPolicy {
	case "", v1alpha1.DataPolicyRetain, v1alpha1.DataPolicyDelete:
	default:
		errs = append(errs, w.Errorf("spec.dataPolicy", "unknown policy %q (known: Retain, Delete)", s.DataPolicy))
	}
	if s.Routing != nil {
		errs = append(errs, ValidateRouting(s.Routing, "spec.routing", w.Errorf)...)
	}
	if s.Images != nil && s.Images.Registry != "" {
		if strings.Contains(s.Images.Registry, "://") || strings.HasSuffix(s.Images.Registry, "/") {
			errs = append(errs, w.Errorf("spec.images.registry", "%q must be a registry host with an optional path, without scheme or trailing slash", s.Images.Registry))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.Versions)) {
		if _, err := catalog.ParseVersion(string(s.Versions[name])); err != nil {
			errs = append(errs, w.Errorf("spec.versions."+name, "%v", err))
		}
	}
	if s.KubeConfig != nil {
		errs = append(errs, validateKubeConfig(s.KubeConfig.SecretRef, w.Errorf)...)
	}
	return errors.Join(errs...)
}

// validateKubeConfig checks the reference to the Secret holding the kubeconfig of
// the workplace's cluster: a Secret name and, when given, a Secret key.
func validateKubeConfig(ref v1alpha1.KubeConfigSecretRef, errorf func(field, format string, args ...any) error) []error {
	var errs []error
	if ref.Name == "" {
		errs = append(errs, errorf("spec.kubeConfig.secretRef.name", "required: the Secret in the workplace's namespace that holds the kubeconfig"))
	} else if msgs := validation.IsDNS1123Subdomain(ref.Name); len(msgs) > 0 {
		errs = append(errs, errorf("spec.kubeConfig.secretRef.name", "invalid Secret name %q: %s", ref.Name, strings.Join(msgs, "; ")))
	}
	if ref.Key != "" {
		if msgs := validation.IsConfigMapKey(ref.Key); len(msgs) > 0 {
			errs = append(errs, errorf("spec.kubeConfig.secretRef.key", "invalid Secret key %q: %s", ref.Key, strings.Join(msgs, "; ")))
		}
	}
	return errs
}

// ValidateDomain checks that domain is a DNS name (a DNS-1123 subdomain) with at
// least two labels, and not an IP address: Ingress hosts and certificates need names.
func ValidateDomain(domain string) error {
	if domain == "" {
		return errors.New("required")
	}
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(domain, "["), "]")); err == nil {
		// sslip.io resolves <a.b.c.d>.sslip.io and <v6 with - for :>.sslip.io to the address.
		name := strings.ReplaceAll(ip.String(), ":", "-")
		return fmt.Errorf("invalid domain %q: an IP address cannot be an Ingress host; use a name, for example %s.sslip.io", domain, name)
	}
	if msgs := validation.IsDNS1123Subdomain(domain); len(msgs) > 0 {
		return fmt.Errorf("invalid domain %q: %s", domain, strings.Join(msgs, "; "))
	}
	if !strings.Contains(domain, ".") {
		return fmt.Errorf("invalid domain %q: needs at least two labels (example.org)", domain)
	}
	for _, label := range strings.Split(domain, ".") {
		if len(label) > 63 {
			return fmt.Errorf("invalid domain %q: label %q is longer than 63 characters", domain, label)
		}
	}
	return nil
}

// ValidateRouting checks routing settings; errorf builds errors for fields under prefix.
func ValidateRouting(r *v1alpha1.Routing, prefix string, errorf func(field, format string, args ...any) error) []error {
	var errs []error
	switch r.Mode {
	case "", v1alpha1.RoutingIngress, v1alpha1.RoutingNone:
	case v1alpha1.RoutingGateway:
		if r.Gateway == nil || r.Gateway.Name == "" {
			errs = append(errs, errorf(prefix+".gateway.name", "required when mode is Gateway"))
		}
	default:
		errs = append(errs, errorf(prefix+".mode", "unknown mode %q (known: Ingress, Gateway, None)", r.Mode))
	}
	if t := r.TLS; t != nil {
		switch t.Mode {
		case "", v1alpha1.TLSSelfSigned, v1alpha1.TLSNone:
		case v1alpha1.TLSIssuer:
			if t.Issuer == nil || t.Issuer.Name == "" {
				errs = append(errs, errorf(prefix+".tls.issuer.name", "required when mode is Issuer"))
			}
		case v1alpha1.TLSSecret:
			if t.SecretName == "" {
				errs = append(errs, errorf(prefix+".tls.secretName", "required when mode is Secret"))
			}
		default:
			errs = append(errs, errorf(prefix+".tls.mode", "unknown mode %q (known: SelfSigned, Issuer, Secret, None)", t.Mode))
		}
	}
	return errs
}
