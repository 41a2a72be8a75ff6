// Package images lists the container images rendered workplaces run, for mirroring
// tools (skopeo sync, crane): every container, init container and ephemeral container
// of every pod template in the rendered manifests and hooks, after the registry
// rewrite the charts apply (spec.images.registry → global.imageRegistry).
package images

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/distribution/reference"

	"github.com/platzwart/platzwart/reconciler/postrender"
	"github.com/platzwart/platzwart/reconciler/render"
)

// Use is one container that runs an image.
type Use struct {
	// Workplace is "<namespace>/<name>".
	Workplace string `json:"workplace"`
	Release   string `json:"release"`
	Component string `json:"component"`
	// Object is "<Kind>/<name>" of the pod's owner in the manifest.
	Object string `json:"object"`
	// Container is the container's name.
	Container string `json:"container"`
	// Hook is true when the object is a Helm hook.
	Hook bool `json:"hook,omitempty"`
	// Version is set for an image an upgrade path may run: the release at an older
	// version its component lists (a stepping stone), or a migration Job of a version.
	Version string `json:"version,omitempty"`
}

// Image is one image reference and where it is used.
type Image struct {
	// Reference is the fully qualified reference (docker.io/library/ added where the
	// manifest left it implicit): registry/repository[:tag][@digest].
	Reference string `json:"reference"`
	// Repository is registry/repository, without tag and digest.
	Repository string `json:"repository"`
	// Tag and Digest are empty when the reference has none.
	Tag    string `json:"tag,omitempty"`
	Digest string `json:"digest,omitempty"`
	// Uses lists every container running it.
	Uses []Use `json:"uses"`
}

// Pinned reports whether the reference names a digest.
func (i Image) Pinned() bool { return i.Digest != "" }

// Components returns the components using the image, sorted and without duplicates.
func (i Image) Components() []string {
	seen := map[string]bool{}
	var out []string
	for _, u := range i.Uses {
		if !seen[u.Component] {
			seen[u.Component] = true
			out = append(out, u.Component)
		}
	}
	sort.Strings(out)
	return out
}

// List returns every image the workplaces' rendered manifests and hooks run, sorted by
// reference. A reference that does not parse is an error naming where it is.
func List(ws []*render.Workplace) ([]Image, error) {
	byRef := map[string]*Image{}
	for _, w := range ws {
		wp := w.Plan.Namespace + "/" + w.Plan.Workplace
		for _, m := range w.Manifests {
			base := Use{Workplace: wp, Release: m.Release, Component: m.Component}
			if err := collect(byRef, base, m.Manifest, false); err != nil {
				return nil, fmt.Errorf("workplace %s: release %s: %w", wp, m.Release, err)
			}
			for _, h := range m.Hooks {
				if err := collect(byRef, base, h.Manifest, true); err != nil {
					return nil, fmt.Errorf("workplace %s: release %s: hook %s: %w", wp, m.Release, h.Path, err)
				}
			}
		}
	}
	out := make([]Image, 0, len(byRef))
	for _, img := range byRef {
		out = append(out, *img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Reference < out[j].Reference })
	return out, nil
}

// WithUpgradePaths returns List's images and those an upgrade path may run: every
// older version the components list (rendered like the release, so the registry
// rewrite applies) and the migration Jobs of every version, marked with the version.
// A mirror for an air-gapped site needs them to take stepping stones.
func WithUpgradePaths(ctx context.Context, ws []*render.Workplace) ([]Image, error) {
	list, err := List(ws)
	if err != nil {
		return nil, err
	}
	byRef := make(map[string]*Image, len(list))
	for i := range list {
		byRef[list[i].Reference] = &list[i]
	}
	for _, w := range ws {
		wp := w.Plan.Namespace + "/" + w.Plan.Workplace
		for _, rel := range w.Plan.Releases {
			for _, step := range append(rel.Earlier(), rel) {
				base := Use{Workplace: wp, Release: rel.Name, Component: rel.Component, Version: step.Version}
				if step != rel {
					m, err := render.Release(ctx, step)
					if err != nil {
						return nil, fmt.Errorf("workplace %s: release %s at version %s: %w", wp, rel.Name, step.Version, err)
					}
					if err := collect(byRef, base, m.Manifest, false); err != nil {
						return nil, fmt.Errorf("workplace %s: release %s at version %s: %w", wp, rel.Name, step.Version, err)
					}
					for _, h := range m.Hooks {
						if err := collect(byRef, base, h.Manifest, true); err != nil {
							return nil, fmt.Errorf("workplace %s: release %s at version %s: hook %s: %w", wp, rel.Name, step.Version, h.Path, err)
						}
					}
				}
				for _, mg := range step.Migrations {
					job := map[string]any{"kind": "Job", "apiVersion": "batch/v1", "metadata": map[string]any{"name": mg.Name}}
					data, err := json.Marshal(mg.Job)
					if err != nil {
						return nil, fmt.Errorf("workplace %s: release %s: migration %s: %w", wp, rel.Name, mg.Name, err)
					}
					var spec map[string]any
					if err := json.Unmarshal(data, &spec); err != nil {
						return nil, fmt.Errorf("workplace %s: release %s: migration %s: %w", wp, rel.Name, mg.Name, err)
					}
					job["spec"] = spec
					doc, err := json.Marshal(job)
					if err != nil {
						return nil, fmt.Errorf("workplace %s: release %s: migration %s: %w", wp, rel.Name, mg.Name, err)
					}
					if err := collect(byRef, base, string(doc), true); err != nil {
						return nil, fmt.Errorf("workplace %s: release %s: migration %s: %w", wp, rel.Name, mg.Name, err)
					}
				}
			}
		}
	}
	out := make([]Image, 0, len(byRef))
	for _, img := range byRef {
		out = append(out, *img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Reference < out[j].Reference })
	return out, nil
}

// collect adds the images of one manifest's objects.
func collect(byRef map[string]*Image, base Use, manifest string, hook bool) error {
	objs, err := postrender.Parse([]byte(manifest))
	if err != nil {
		return err
	}
	for _, o := range objs {
		for _, spec := range podSpecs(o.Fields) {
			for _, list := range []string{"initContainers", "containers", "ephemeralContainers"} {
				cs, _ := spec[list].([]any)
				for _, c := range cs {
					cm, _ := c.(map[string]any)
					image, _ := cm["image"].(string)
					if image == "" {
						continue
					}
					u := base
					u.Object = o.Kind + "/" + o.Name
					u.Container, _ = cm["name"].(string)
					u.Hook = hook
					img, err := parse(image)
					if err != nil {
						return fmt.Errorf("%s container %q: %w", u.Object, u.Container, err)
					}
					if prev, ok := byRef[img.Reference]; ok {
						prev.Uses = append(prev.Uses, u)
						continue
					}
					img.Uses = []Use{u}
					byRef[img.Reference] = img
				}
			}
		}
	}
	return nil
}

// podSpecs finds the pod specs of an object wherever the workload kinds keep them:
// spec (Pod), spec.template.spec (Deployment, StatefulSet, DaemonSet, ReplicaSet,
// Job) and spec.jobTemplate.spec.template.spec (CronJob). Looking by shape instead
// of by kind also finds custom workload kinds that follow the convention.
func podSpecs(fields map[string]any) []map[string]any {
	var out []map[string]any
	isPodSpec := func(m map[string]any) bool {
		_, ok := m["containers"]
		return ok
	}
	spec, _ := fields["spec"].(map[string]any)
	if spec == nil {
		return nil
	}
	if isPodSpec(spec) {
		out = append(out, spec)
	}
	for _, p := range [][]string{{"template", "spec"}, {"jobTemplate", "spec", "template", "spec"}} {
		var cur any = spec
		for _, k := range p {
			m, _ := cur.(map[string]any)
			cur = m[k]
		}
		if m, ok := cur.(map[string]any); ok && isPodSpec(m) {
			out = append(out, m)
		}
	}
	return out
}

// parse splits an image reference, qualifying it the way the container runtime does
// (docker.io, library/).
func parse(image string) (*Image, error) {
	named, err := reference.ParseNormalizedNamed(strings.TrimSpace(image))
	if err != nil {
		return nil, fmt.Errorf("image %q: %w", image, err)
	}
	img := &Image{Reference: named.String(), Repository: named.Name()}
	if t, ok := named.(reference.Tagged); ok {
		img.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		img.Digest = d.Digest().String()
	}
	return img, nil
}
