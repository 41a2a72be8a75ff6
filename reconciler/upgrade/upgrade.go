// Package upgrade computes the path of a component from its deployed version to its
// target version through the versions its catalog entry lists (spec.versions): the
// stepping stones to take, each with its migrations, or a typed refusal. It is pure;
// the engine reads the deployed version from the cluster and asks for the path.
package upgrade

import (
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/platzwart/platzwart/reconciler/catalog"
)

// Step is one upgrade of a path: to Version, with its migrations around it.
type Step struct {
	// Version the step upgrades to.
	Version string
	// Risky says the step changes stored data in a way only a backup undoes.
	Risky bool
	// Pre are the migrations run before the upgrade starts, in order.
	Pre []catalog.Migration
	// Post are the migrations run once the upgrade is ready, in order.
	Post []catalog.Migration
}

// Path returns the steps from deployed to target, oldest first.
//
//   - A component without versions has no path (nil): it is upgraded in one step to
//     what its chart renders, as always.
//   - target "" means the component's newest version; a target the component does
//     not list is an *UnknownVersionError.
//   - deployed "" means not installed: the target is installed directly (nil).
//   - deployed equal to target (as semantic versions) needs no step (nil).
//   - deployed newer than target is a *DowngradeError.
//   - deployed need not be listed (a version the catalog no longer or never listed):
//     it is compared as a version and the from constraints decide where it may go.
//
// Otherwise the path is the sequence of listed versions newer than deployed, ending
// at target, in which every step is admitted by the from constraint of the version
// it reaches and crosses no mandatory version (a stepping stone: a step ends there
// instead). Of all such sequences Path takes one with the fewest steps and, among
// those, the one taking the furthest step first. Without one it returns a
// *SkipError when the target could be reached only by skipping a stepping stone, and
// a *NoPathError otherwise.
func Path(comp *catalog.Component, deployed, target string) ([]Step, error) {
	name := comp.Metadata.Name
	if !comp.Versioned() {
		if target != "" {
			return nil, &UnknownVersionError{Component: name, Version: target}
		}
		return nil, nil
	}
	if target == "" {
		target = comp.Newest()
	}
	ti := comp.VersionIndex(target)
	if ti < 0 {
		return nil, &UnknownVersionError{Component: name, Version: target, Known: comp.VersionNames()}
	}
	target = comp.Spec.Versions[ti].Version
	if deployed == "" {
		return nil, nil
	}
	dv, err := catalog.ParseVersion(deployed)
	if err != nil {
		return nil, &InvalidVersionError{Component: name, Version: deployed, Err: err}
	}
	g, err := newGraph(comp, dv, deployed, ti)
	if err != nil {
		return nil, err
	}
	switch dv.Compare(g.nodes[len(g.nodes)-1].ver) {
	case 0:
		return nil, nil
	case 1:
		return nil, &DowngradeError{Component: name, Deployed: deployed, Target: target}
	}
	if route := g.shortest(true); route != nil {
		steps := make([]Step, 0, len(route))
		for _, n := range route {
			v := comp.Spec.Versions[g.nodes[n].index]
			s := Step{Version: v.Version, Risky: v.Risky}
			for _, m := range v.Migrations {
				if m.Phase == catalog.PhasePre {
					s.Pre = append(s.Pre, m)
				} else {
					s.Post = append(s.Post, m)
				}
			}
			steps = append(steps, s)
		}
		return steps, nil
	}
	reached := g.furthest()
	next := comp.Spec.Versions[g.nodes[reached+1].index]
	if loose := g.shortest(false); loose != nil {
		return nil, &SkipError{Component: name, Deployed: deployed, Target: target,
			Stone: g.skipped(loose), Next: next.Version, From: next.From}
	}
	return nil, &NoPathError{Component: name, Deployed: deployed, Target: target,
		Reached: g.nodes[reached].name, Next: next.Version, From: next.From}
}

// node is a version of the path graph: the deployed version (index -1) or a listed one.
type node struct {
	ver   *semver.Version
	name  string
	index int // in spec.versions; -1 for the deployed version
}

// graph holds the deployed version followed by the listed versions newer than it, up
// to the target, in order; edges go from older to newer.
type graph struct {
	comp  *catalog.Component
	nodes []node
	from  []*semver.Constraints // per node; nil admits every older version
}

func newGraph(comp *catalog.Component, dv *semver.Version, deployed string, target int) (*graph, error) {
	g := &graph{comp: comp, nodes: []node{{ver: dv, name: deployed, index: -1}}, from: []*semver.Constraints{nil}}
	for i := 0; i <= target; i++ {
		v := comp.Spec.Versions[i]
		ver, err := catalog.ParseVersion(v.Version)
		if err != nil {
			return nil, fmt.Errorf("component %s: spec.versions[%d].version: %w", comp.Metadata.Name, i, err)
		}
		if !ver.GreaterThan(dv) && i != target {
			continue
		}
		var from *semver.Constraints
		if v.From != "" {
			if from, err = catalog.ParseConstraint(v.From); err != nil {
				return nil, fmt.Errorf("component %s: spec.versions[%d].from: %w", comp.Metadata.Name, i, err)
			}
		}
		g.nodes = append(g.nodes, node{ver: ver, name: v.Version, index: i})
		g.from = append(g.from, from)
	}
	return g, nil
}

// edge reports whether one step may go from node a to node b (a < b): b's from
// constraint admits a and, when stones is set, no mandatory version lies between.
func (g *graph) edge(a, b int, stones bool) bool {
	if f := g.from[b]; f != nil && !f.Check(g.nodes[a].ver) {
		return false
	}
	if stones {
		for k := a + 1; k < b; k++ {
			if g.comp.Spec.Versions[g.nodes[k].index].Mandatory {
				return false
			}
		}
	}
	return true
}

// shortest returns the nodes after the deployed one of a path to the last node with
// the fewest steps, taking the furthest step first among equals; nil when none.
func (g *graph) shortest(stones bool) []int {
	n := len(g.nodes)
	dist := make([]int, n) // steps from a node to the target; -1 unreachable
	for a := n - 2; a >= 0; a-- {
		dist[a] = -1
		for b := a + 1; b < n; b++ {
			if dist[b] >= 0 && g.edge(a, b, stones) && (dist[a] < 0 || dist[b]+1 < dist[a]) {
				dist[a] = dist[b] + 1
			}
		}
	}
	if dist[0] < 0 {
		return nil
	}
	var route []int
	for a := 0; a != n-1; {
		next := -1
		for b := n - 1; b > a; b-- {
			if dist[b] == dist[a]-1 && g.edge(a, b, stones) {
				next = b
				break
			}
		}
		route = append(route, next)
		a = next
	}
	return route
}

// furthest returns the newest node reachable from the deployed version.
func (g *graph) furthest() int {
	reach := make([]bool, len(g.nodes))
	reach[0] = true
	best := 0
	for b := 1; b < len(g.nodes); b++ {
		for a := 0; a < b; a++ {
			if reach[a] && g.edge(a, b, true) {
				reach[b], best = true, b
				break
			}
		}
	}
	return best
}

// skipped returns the first mandatory version a route steps over.
func (g *graph) skipped(route []int) string {
	a := 0
	for _, b := range route {
		for k := a + 1; k < b; k++ {
			if v := g.comp.Spec.Versions[g.nodes[k].index]; v.Mandatory {
				return v.Version
			}
		}
		a = b
	}
	return ""
}

// UnknownVersionError: the component does not list the version asked for.
type UnknownVersionError struct {
	Component, Version string
	// Known are the versions the component lists, oldest first (none: not versioned).
	Known []string
}

func (e *UnknownVersionError) Error() string {
	if len(e.Known) == 0 {
		return fmt.Sprintf("component %s lists no versions (spec.versions), so it cannot be pinned to %q", e.Component, e.Version)
	}
	return fmt.Sprintf("component %s lists no version %q (known: %s)", e.Component, e.Version, strings.Join(e.Known, ", "))
}

// InvalidVersionError: the deployed version is not a version.
type InvalidVersionError struct {
	Component, Version string
	Err                error
}

func (e *InvalidVersionError) Error() string {
	return fmt.Sprintf("component %s: deployed version: %v", e.Component, e.Err)
}

func (e *InvalidVersionError) Unwrap() error { return e.Err }

// DowngradeError: the target is older than the deployed version. platzwart never
// downgrades: the newer version may have migrated the data beyond what the older one
// reads (restoring a backup taken before the upgrade is the way back).
type DowngradeError struct {
	Component, Deployed, Target string
}

func (e *DowngradeError) Error() string {
	return fmt.Sprintf("component %s: downgrade from %s to %s refused: versions only move forward (the deployed version may have migrated the data; restore a backup to go back)",
		e.Component, e.Deployed, e.Target)
}

// NoPathError: no sequence of listed versions leads from the deployed version to the
// target: a stepping stone is missing from the catalog, or a from constraint admits
// nothing on the way.
type NoPathError struct {
	Component, Deployed, Target string
	// Reached is the newest version on the way the deployed version can reach
	// (Deployed itself when it can reach none).
	Reached string
	// Next is the listed version after Reached, which admits none of the versions
	// reachable, and From its constraint.
	Next, From string
}

func (e *NoPathError) Error() string {
	why := fmt.Sprintf("the deployed version %s does not satisfy it", e.Deployed)
	if e.Reached != e.Deployed {
		why = fmt.Sprintf("no version reachable from %s does (the newest reachable is %s)", e.Deployed, e.Reached)
	}
	return fmt.Sprintf("component %s: no upgrade path from %s to %s: %s accepts upgrades only from %q and %s; no listed version in between bridges the gap",
		e.Component, e.Deployed, e.Target, e.Next, e.From, why)
}

// SkipError: the target could be reached from the deployed version only by skipping
// Stone, a mandatory version: the catalog's constraints contradict each other.
type SkipError struct {
	Component, Deployed, Target string
	// Stone is the mandatory version the only paths skip.
	Stone string
	// Next is the first version that cannot be reached without skipping Stone, and
	// From its constraint.
	Next, From string
}

func (e *SkipError) Error() string {
	return fmt.Sprintf("component %s: no upgrade path from %s to %s: it would skip %s, a mandatory stepping stone, because %s accepts upgrades only from %q",
		e.Component, e.Deployed, e.Target, e.Stone, e.Next, e.From)
}
