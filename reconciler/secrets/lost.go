package secrets

import (
	"fmt"
	"strings"

	"github.com/platzwart/platzwart/reconciler/plan"
)

// Lost is a component Secret that is gone while its component is installed, and that
// the component read only when it first initialised: a regenerated value would not
// reach the component, so nothing is generated in its place.
type Lost struct {
	// Secret is the missing Secret's name.
	Secret string `json:"secret"`
	// Component and Release it belongs to.
	Component string `json:"component"`
	Release   string `json:"release"`
}

// LostError refuses a reconcile that would replace lost Secrets of installed
// components (see [CheckLost]). Nothing was written when it is returned.
type LostError struct {
	Namespace, Workplace string
	Lost                 []Lost
}

func (e *LostError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "workplace %s/%s: nothing was applied: ", e.Namespace, e.Workplace)
	for i, l := range e.Lost {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "Secret %q of component %s was deleted, but release %s is installed and %s read it only when it first started: a new value would lock platzwart or its users out of %s",
			l.Secret, l.Component, l.Release, l.Component, l.Component)
	}
	b.WriteString(". Restore the Secret from a backup (kubectl apply; any labels), or set the component's password to a new value by its own procedure and store that value in the Secret (docs/architecture.md, \"Secrets a component reads at first start\"); the next reconcile goes on")
	return b.String()
}

// CheckLost returns a *LostError naming every planned component Secret that is
// missing (v says [Missing]) while the release of its component is installed
// (installed reports that), unless the component takes the Secret up on every start
// (Reprovisioned). Such a Secret must not be regenerated: the component keeps the old
// value it read at its first start. It returns nil when nothing is lost.
func CheckLost(p *plan.Plan, v Versions, installed func(release string) bool) error {
	releases := make(map[string]string, len(p.Releases))
	for _, r := range p.Releases {
		releases[r.Component] = r.Name
	}
	var lost []Lost
	for _, s := range p.Secrets {
		if s.Component == "" || v[s.Name] != Missing || Reprovisioned(p, s) {
			continue
		}
		rel, ok := releases[s.Component]
		if !ok || !installed(rel) {
			continue
		}
		lost = append(lost, Lost{Secret: s.Name, Component: s.Component, Release: rel})
	}
	if len(lost) == 0 {
		return nil
	}
	return &LostError{Namespace: p.Namespace, Workplace: p.Workplace, Lost: lost}
}
