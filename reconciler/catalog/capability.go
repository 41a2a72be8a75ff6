package catalog

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/platzwart/platzwart/reconciler/contract"
	"github.com/platzwart/platzwart/reconciler/yamldoc"
)

// CapabilityKind is the kind of a capability document (capabilities/<name>.yaml).
const CapabilityKind = "Capability"

// CapabilityDoc declares an application capability as data: a role a component
// fills and the keys its provider exports to consumers. The grant capabilities
// (identity, postgres, redis), whose providers mint credentials for every consumer,
// are code (contract.Grant) and cannot be declared here. See
// docs/adr/0014-application-capabilities-are-data.md.
type CapabilityDoc struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   Meta           `json:"metadata"`
	Spec       CapabilitySpec `json:"spec"`

	// File is where the capability was read from (not part of the document).
	File string `json:"-"`
}

// CapabilitySpec is what a capability document declares.
type CapabilitySpec struct {
	// Description says what the role is, for the catalog listing.
	Description string `json:"description"`
	// Exports are the keys every provider's exports template must produce, each
	// non-empty; consumers read them as .Uses.<capability>.<key>.
	Exports []string `json:"exports"`
}

var (
	capabilityName = regexp.MustCompile(`^[a-z][a-z0-9]{0,30}$`)
	exportKey      = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9]*$`)
)

// Capability returns the capability of that name: a grant capability (code) or one
// declared in a catalog layer's capabilities/ folder.
func (c *Catalog) Capability(name string) (contract.Capability, bool) {
	if g, ok := contract.Grant(name); ok {
		return g, true
	}
	d, ok := c.Capabilities[name]
	if !ok {
		return contract.Capability{}, false
	}
	return contract.Capability{Name: name, Exports: d.Spec.Exports, Description: d.Spec.Description}, true
}

// CapabilityNames returns every capability's name, sorted.
func (c *Catalog) CapabilityNames() []string {
	names := append(contract.GrantNames(), sortedKeys(c.Capabilities)...)
	sort.Strings(names)
	return names
}

func (c *Catalog) unknownCapability(name string) error {
	return fmt.Errorf("unknown capability %q (known: %s)", name, strings.Join(c.CapabilityNames(), ", "))
}

func (c *Catalog) loadCapabilities(l Layer) []error {
	return eachYAML(l, "capabilities", func(file, name string, data []byte) []error {
		var d CapabilityDoc
		if err := decodeOne(file, data, CapabilityKind, &d); err != nil {
			return []error{err}
		}
		d.File = file
		if errs := validateCapability(&d, name); len(errs) > 0 {
			return errs
		}
		c.Capabilities[d.Metadata.Name] = &d
		return nil
	})
}

func validateCapability(d *CapabilityDoc, fileName string) []error {
	doc := fmt.Sprintf("%s %q", CapabilityKind, d.Metadata.Name)
	bad := func(field, format string, args ...any) error {
		return yamldoc.Errorf(d.File, doc, field, format, args...)
	}
	var errs []error
	switch name := d.Metadata.Name; {
	case name != fileName:
		errs = append(errs, bad("metadata.name", "must equal the file name %q", fileName))
	case !capabilityName.MatchString(name):
		errs = append(errs, bad("metadata.name", "%q must be lower-case letters and digits, starting with a letter, at most 31 characters", name))
	default:
		if _, grant := contract.Grant(name); grant {
			errs = append(errs, bad("metadata.name", "%q is built in: its providers mint credentials for every consumer, which is code (docs/adr/0014-application-capabilities-are-data.md)", name))
		}
	}
	if strings.TrimSpace(d.Spec.Description) == "" {
		errs = append(errs, bad("spec.description", "required (one line for the catalog listing)"))
	}
	if len(d.Spec.Exports) == 0 {
		errs = append(errs, bad("spec.exports", "at least one key is required (what consumers read as .Uses.%s.<key>; most capabilities export url)", d.Metadata.Name))
	}
	seen := map[string]bool{}
	for i, k := range d.Spec.Exports {
		field := fmt.Sprintf("spec.exports[%d]", i)
		if !exportKey.MatchString(k) {
			errs = append(errs, bad(field, "%q is not a template key (letters and digits, starting with a letter)", k))
		}
		if seen[k] {
			errs = append(errs, bad(field, "%q is listed twice", k))
		}
		seen[k] = true
	}
	return errs
}
