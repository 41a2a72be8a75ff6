package release

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"

	"github.com/platzwart/platzwart/reconciler/catalog"
)

// Labels platzwart sets on Helm's release records (not on the resources).
const (
	// LabelWorkplace names the workplace a release belongs to.
	LabelWorkplace = "platzwart.io/workplace"
	// LabelComponent names the component a release implements.
	LabelComponent = "platzwart.io/component"
	// LabelDigest holds the release digest (chart + values + patches), shortened to
	// fit a label value.
	LabelDigest = "platzwart.io/digest"
	// LabelReady marks a revision that platzwart saw become ready. A revision without
	// it was interrupted between Helm recording it and readiness (a killed process).
	LabelReady = "platzwart.io/ready"
	// LabelVersion holds the component version (catalog spec.versions) a revision
	// installs; absent for components without versions and for revisions recorded
	// before platzwart recorded versions.
	LabelVersion = "platzwart.io/version"
)

// digestLabel shortens a plan digest ("sha256:<64 hex>") to a label value.
func digestLabel(digest string) string {
	d := strings.TrimPrefix(digest, "sha256:")
	if len(d) > 63 {
		d = d[:63]
	}
	return d
}

// helmConfig returns an action.Configuration for reading and writing Helm's
// release storage in a namespace (Secrets, Helm's default) and nothing else: no
// Helm action runs on it (actionConfig).
func (e *Engine) helmConfig(namespace string) (*action.Configuration, error) {
	cfg, err := e.helm.config(namespace, false)
	if err != nil {
		return nil, fmt.Errorf("helm in namespace %q: %w", namespace, err)
	}
	return cfg, nil
}

// actionConfig returns an action.Configuration for the Helm actions on one release:
// its own release storage, and the kube client, clients, capabilities and OpenAPI
// validator every action on the cluster shares (helmShared), so that installs and
// upgrades discover the cluster and parse its OpenAPI documents once, not once per
// action, Apply or workplace.
func (e *Engine) actionConfig(namespace string) (*action.Configuration, error) {
	cfg, err := e.helm.config(namespace, true)
	if err != nil {
		return nil, fmt.Errorf("helm in namespace %q: %w", namespace, err)
	}
	return cfg, nil
}

// deployed is what Helm storage knows of one release.
type deployed struct {
	// latest is the newest revision, whatever its status.
	latest *release.Release
	// lastGood is the newest revision that was deployed successfully (nil if none).
	lastGood *release.Release
	// previous is the newest deployed or superseded revision older than latest.
	previous *release.Release
	// lastReady is the newest deployed or superseded revision platzwart saw ready
	// (LabelReady): what a failed upgrade rolls back to, rather than a revision that
	// was deployed by an interrupted apply and never became ready.
	lastReady *release.Release
	// version is the highest LabelVersion of any revision in storage: a failed or
	// rolled-back upgrade may have migrated the component's data already, so a step
	// back below it counts as a downgrade.
	version string
}

// readyVersion is the component version the release runs when healthy: the version
// label of the revision a failed upgrade goes back to, or the highest recorded
// version when no revision carries one. An upgrade path starts there, so that a
// step that failed or was interrupted before it was seen ready is taken again
// rather than skipped.
func (d *deployed) readyVersion() string {
	if t := d.rollbackTarget(); t != nil {
		if v := t.Labels[LabelVersion]; v != "" {
			if _, err := catalog.ParseVersion(v); err == nil {
				return v
			}
		}
	}
	return d.version
}

// rollbackTarget returns the revision a failed upgrade goes back to.
func (d *deployed) rollbackTarget() *release.Release {
	if d.lastReady != nil {
		return d.lastReady
	}
	return d.lastGood
}

// listWorkplace returns the releases in namespace labelled with the workplace, by
// name; every workplace's releases when workplace is "".
func listWorkplace(cfg *action.Configuration, workplace string) (map[string]*deployed, error) {
	query := map[string]string{"owner": "helm", LabelWorkplace: workplace}
	if workplace == "" {
		delete(query, LabelWorkplace)
	}
	all, err := cfg.Releases.Driver.Query(query)
	if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, fmt.Errorf("listing releases of workplace %q: %w", workplace, err)
	}
	var revs []*release.Release
	for _, r := range all {
		if r.Labels[LabelWorkplace] != "" {
			revs = append(revs, r)
		}
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i].Version < revs[j].Version })
	out := map[string]*deployed{}
	for _, r := range revs {
		d := out[r.Name]
		if d == nil {
			d = &deployed{}
			out[r.Name] = d
		}
		if d.latest != nil && d.latest.Info != nil &&
			(d.latest.Info.Status == release.StatusDeployed || d.latest.Info.Status == release.StatusSuperseded) {
			d.previous = d.latest
		}
		d.latest = r
		d.version = higherVersion(d.version, r.Labels[LabelVersion])
		if r.Info != nil && (r.Info.Status == release.StatusDeployed || r.Info.Status == release.StatusSuperseded) {
			d.lastGood = r
			if r.Labels[LabelReady] == "true" {
				d.lastReady = r
			}
		}
	}
	return out, nil
}

// isPending reports whether a release is locked in a pending state, as a crash
// mid-action leaves it.
func isPending(r *release.Release) bool {
	return r != nil && r.Info != nil && r.Info.Status.IsPending()
}

// unlock marks a release left pending by a crash as failed, so Helm accepts the next
// action on it (what helm-controller does as well).
func unlock(cfg *action.Configuration, r *release.Release) error {
	was := r.Info.Status
	r.Info.Status = release.StatusFailed
	r.Info.Description = "marked failed by platzwart: was left " + was.String() + " by an interrupted action"
	if err := cfg.Releases.Update(r); err != nil {
		return fmt.Errorf("unlocking release %q revision %d: %w", r.Name, r.Version, err)
	}
	return nil
}

// markReady records on a revision that it became ready.
func markReady(cfg *action.Configuration, name string, version int) error {
	r, err := cfg.Releases.Get(name, version)
	if err != nil {
		return fmt.Errorf("release %s revision %d: %w", name, version, err)
	}
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	r.Labels[LabelReady] = "true"
	if err := cfg.Releases.Update(r); err != nil {
		return fmt.Errorf("release %s revision %d: %w", name, version, err)
	}
	return nil
}

// higherVersion returns the higher of two version labels; one that is not a version
// loses ("" when neither is).
func higherVersion(a, b string) string {
	va, erra := catalog.ParseVersion(a)
	vb, errb := catalog.ParseVersion(b)
	switch {
	case errb != nil:
		if erra != nil {
			return ""
		}
		return a
	case erra != nil || vb.GreaterThan(va):
		return b
	}
	return a
}
