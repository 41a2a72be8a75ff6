package catalog

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"k8s.io/apimachinery/pkg/util/validation"
)

// versionPattern is what a component version may look like: a semantic version with
// an optional leading "v", optional minor and patch numbers and an optional
// pre-release, in characters a Kubernetes label value allows (no "+" build metadata).
var versionPattern = regexp.MustCompile(`^v?[0-9]+(\.[0-9]+){0,2}(-[0-9A-Za-z]+([.-][0-9A-Za-z]+)*)?$`)

// ParseVersion parses a component version ("34.0.4", "v1.162.0", "18.6").
func ParseVersion(s string) (*semver.Version, error) {
	if len(s) > validation.LabelValueMaxLength || !versionPattern.MatchString(s) {
		return nil, fmt.Errorf("%q is not a version (numbers and dots such as 34.0.4, v1.162.0 or 18.6, an optional -pre-release, at most %d characters)", s, validation.LabelValueMaxLength)
	}
	v, err := semver.NewVersion(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a version: %w", s, err)
	}
	return v, nil
}

// ParseConstraint parses a version's from constraint (">=33.0.0 <34.0.0").
func ParseConstraint(s string) (*semver.Constraints, error) {
	c, err := semver.NewConstraint(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a version constraint (for example \">=33.0.0 <34.0.0\"): %w", s, err)
	}
	return c, nil
}

// Versioned reports whether the component lists versions.
func (c *Component) Versioned() bool { return len(c.Spec.Versions) > 0 }

// Newest returns the component's newest version ("" when it lists none): the one
// spec.chart, spec.values and spec.images render.
func (c *Component) Newest() string {
	if len(c.Spec.Versions) == 0 {
		return ""
	}
	return c.Spec.Versions[len(c.Spec.Versions)-1].Version
}

// VersionIndex returns the index of the listed version equal to v as a semantic version
// (so "v34.0.4" finds "34.0.4"), or -1.
func (c *Component) VersionIndex(v string) int {
	want, err := ParseVersion(v)
	if err != nil {
		return -1
	}
	for i, ver := range c.Spec.Versions {
		if got, err := ParseVersion(ver.Version); err == nil && got.Equal(want) {
			return i
		}
	}
	return -1
}

// VersionNames lists the component's versions, oldest first, for messages.
func (c *Component) VersionNames() []string {
	names := make([]string, len(c.Spec.Versions))
	for i, v := range c.Spec.Versions {
		names[i] = v.Version
	}
	return names
}

// validateVersions checks spec.versions; bad builds errors naming the field.
func (c *Catalog) validateVersions(comp *Component, bad func(field, format string, args ...any) error) []error {
	s := comp.Spec
	if len(s.Versions) == 0 {
		return nil
	}
	if s.Chart == "" {
		return []error{bad("spec.versions", "a component without a chart has nothing to upgrade: leave versions out")}
	}
	var errs []error
	seen := map[string]int{}
	var prev *semver.Version
	prevField := ""
	newest := len(s.Versions) - 1
	for i, v := range s.Versions {
		field := fmt.Sprintf("spec.versions[%d]", i)
		if ver, err := ParseVersion(v.Version); err != nil {
			errs = append(errs, bad(field+".version", "%v", err))
		} else {
			key := ver.String()
			if j, dup := seen[key]; dup {
				errs = append(errs, bad(field+".version", "version %q is listed twice (also spec.versions[%d])", v.Version, j))
			} else if prev != nil && ver.LessThan(prev) {
				errs = append(errs, bad(field+".version", "versions are listed oldest first: %q is older than %q (%s)", v.Version, prev.Original(), prevField))
			}
			seen[key] = i
			if prev == nil || ver.GreaterThan(prev) {
				prev, prevField = ver, field
			}
		}
		if v.From != "" {
			if _, err := ParseConstraint(v.From); err != nil {
				errs = append(errs, bad(field+".from", "%v", err))
			}
		}
		if i == newest {
			if v.Chart != "" && path.Clean(v.Chart) != path.Clean(s.Chart) {
				errs = append(errs, bad(field+".chart", "the newest version uses spec.chart (%q): leave chart out", s.Chart))
			}
			if strings.TrimSpace(v.Values) != "" {
				errs = append(errs, bad(field+".values", "the newest version is what spec.values renders: put its values there"))
			}
			if len(v.Images) > 0 && !sameImages(v.Images, s.Images) {
				errs = append(errs, bad(field+".images", "the newest version runs spec.images: leave images out or list the same images"))
			}
		} else {
			if v.Chart != "" {
				if _, err := c.Chart(v.Chart); err != nil {
					errs = append(errs, bad(field+".chart", "%v", err))
				}
			}
			if len(v.Images) == 0 {
				errs = append(errs, bad(field+".images", "list every image this version runs (only the newest version takes spec.images)"))
			}
		}
		for j, img := range v.Images {
			if err := checkImage(img); err != nil {
				errs = append(errs, bad(fmt.Sprintf("%s.images[%d]", field, j), "%v", err))
			}
		}
		if _, err := ParseTemplate(comp.Metadata.Name, v.Values); err != nil {
			errs = append(errs, bad(field+".values", "template: %v", err))
		}
		names := map[string]int{}
		for j, m := range v.Migrations {
			mf := fmt.Sprintf("%s.migrations[%d]", field, j)
			for _, msg := range validation.IsDNS1123Label(m.Name) {
				errs = append(errs, bad(mf+".name", "%s", msg))
			}
			if k, dup := names[m.Name]; dup {
				errs = append(errs, bad(mf+".name", "migration %q is declared twice (also %s.migrations[%d])", m.Name, field, k))
			}
			names[m.Name] = j
			switch m.Phase {
			case PhasePre, PhasePost:
			default:
				errs = append(errs, bad(mf+".phase", "unknown phase %q (known: %s, %s)", m.Phase, PhasePre, PhasePost))
			}
			if m.From != "" {
				if _, err := ParseConstraint(m.From); err != nil {
					errs = append(errs, bad(mf+".from", "%v", err))
				}
			}
			if m.Timeout != nil && m.Timeout.Duration <= 0 {
				errs = append(errs, bad(mf+".timeout", "must be positive"))
			}
			if strings.TrimSpace(m.Job) == "" {
				errs = append(errs, bad(mf+".job", "required (a template of a batch/v1 JobSpec)"))
			} else if _, err := ParseTemplate(comp.Metadata.Name, m.Job); err != nil {
				errs = append(errs, bad(mf+".job", "template: %v", err))
			}
		}
	}
	return errs
}

// sameImages reports whether a and b list the same images, in any order.
func sameImages(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
