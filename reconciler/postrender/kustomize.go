// Package postrender applies a workplace's kustomize patches to a release's rendered
// manifests, as a Helm post-renderer built on sigs.k8s.io/kustomize/api.
package postrender

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/fluxcd/pkg/apis/kustomize"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/resid"
	"sigs.k8s.io/yaml"
)

// KeepAnnotation tells Helm to leave a resource in place when the release is
// uninstalled. The post-renderer puts it on every PersistentVolumeClaim and every
// StatefulSet claim template (see KeepVolumes), so removing or swapping a component
// never deletes its data; platzwart deletes kept claims itself only under dataPolicy
// Delete. A release installed again under the same name adopts
// its kept claims.
const KeepAnnotation = "helm.sh/resource-policy"

// KeepValue is the value of KeepAnnotation that keeps a resource.
const KeepValue = "keep"

// Kustomize is a helm.sh/helm/v3/pkg/postrender.PostRenderer applying patches, and
// marking every PersistentVolumeClaim and StatefulSet claim template to be kept on
// uninstall (see KeepVolumes).
type Kustomize struct {
	// Patches are applied in order; each must match at least one resource.
	Patches []kustomize.Patch
	// Where names the patches' origin in errors, such as
	// `workplace.yaml: Workplace "demo": spec.patches.jitsi`.
	Where string
	// PodAnnotations are set on the pod template of every workload after the patches
	// (see AnnotatePodTemplates): platzwart's secret-versions hash.
	PodAnnotations map[string]string
}

// Run applies the patches to the rendered manifests, then marks volumes to be kept and
// annotates pod templates. A
// patch whose target matches no resource is an error, so a typo never passes silently;
// so is a patch that renames an object or changes its kind or namespace.
func (k *Kustomize) Run(rendered *bytes.Buffer) (*bytes.Buffer, error) {
	data := rendered.Bytes()
	if len(k.Patches) > 0 {
		patched, err := k.patch(data)
		if err != nil {
			return nil, err
		}
		data = patched
	}
	out, err := KeepVolumes(data)
	if err != nil {
		return nil, fmt.Errorf("rendered manifests: %w", err)
	}
	if out, err = AnnotatePodTemplates(out, k.PodAnnotations); err != nil {
		return nil, fmt.Errorf("rendered manifests: %w", err)
	}
	return bytes.NewBuffer(out), nil
}

// patch applies the patches with kustomize and checks that every object keeps its
// identity (group, kind, namespace, name).
func (k *Kustomize) patch(data []byte) ([]byte, error) {
	before, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("rendered manifests: %w", err)
	}
	out, err := k.kustomize(data, k.Patches)
	if err != nil {
		return nil, err
	}
	after, err := Parse(out)
	if err != nil {
		return nil, fmt.Errorf("%s: patched manifests: %w", k.Where, err)
	}
	if gone, added := diffIdentities(before, after); len(gone)+len(added) > 0 {
		// Name the first patch that changes an identity: apply them one more at a time.
		field := k.Where
		for i := range k.Patches {
			o, err := k.kustomize(data, k.Patches[:i+1])
			if err != nil {
				break
			}
			objs, err := Parse(o)
			if err != nil {
				break
			}
			if g, a := diffIdentities(before, objs); len(g)+len(a) > 0 {
				field = fmt.Sprintf("%s[%d]", k.Where, i)
				break
			}
		}
		return nil, fmt.Errorf("%s: a patch may change an object's content, not its identity (kind, namespace, name): %s became %s",
			field, strings.Join(gone, ", "), strings.Join(added, ", "))
	}
	return out, nil
}

// kustomize applies patches to the rendered manifests.
func (k *Kustomize) kustomize(data []byte, patches []kustomize.Patch) ([]byte, error) {
	const dir = "/release"
	fsys := filesys.MakeFsInMemory()
	if err := fsys.WriteFile(dir+"/resources.yaml", data); err != nil {
		return nil, err
	}
	kz := kusttypes.Kustomization{
		TypeMeta:  kusttypes.TypeMeta{APIVersion: kusttypes.KustomizationVersion, Kind: kusttypes.KustomizationKind},
		Resources: []string{"resources.yaml"},
	}
	base, err := run(fsys, dir, kz)
	if err != nil {
		return nil, fmt.Errorf("reading rendered manifests: %w", err)
	}
	for i, p := range patches {
		kp := kusttypes.Patch{Patch: p.Patch}
		if t := p.Target; t != nil {
			sel := &kusttypes.Selector{
				ResId: resid.ResId{
					Gvk:       resid.Gvk{Group: t.Group, Version: t.Version, Kind: t.Kind},
					Name:      t.Name,
					Namespace: t.Namespace,
				},
				AnnotationSelector: t.AnnotationSelector,
				LabelSelector:      t.LabelSelector,
			}
			matched, err := base.Select(*sel)
			if err != nil {
				return nil, fmt.Errorf("%s[%d].target: %w", k.Where, i, err)
			}
			if len(matched) == 0 {
				return nil, fmt.Errorf("%s[%d].target: %s matches no resource of the release", k.Where, i, describe(t))
			}
			kp.Target = sel
		}
		kz.Patches = append(kz.Patches, kp)
	}
	out, err := run(fsys, dir, kz)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.Where, err)
	}
	return out.AsYaml()
}

// diffIdentities lists the identities only in before (gone) and only in after (added).
func diffIdentities(before, after []*Object) (gone, added []string) {
	count := map[string]int{}
	for _, o := range before {
		count[o.ID()]++
	}
	for _, o := range after {
		count[o.ID()]--
	}
	for _, id := range sortedKeys(count) {
		for n := count[id]; n > 0; n-- {
			gone = append(gone, id)
		}
		for n := count[id]; n < 0; n++ {
			added = append(added, id)
		}
	}
	return gone, added
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// run builds the kustomization kz in dir.
func run(fsys filesys.FileSystem, dir string, kz kusttypes.Kustomization) (resmap.ResMap, error) {
	data, err := yaml.Marshal(kz)
	if err != nil {
		return nil, err
	}
	if err := fsys.WriteFile(dir+"/kustomization.yaml", data); err != nil {
		return nil, err
	}
	return krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, dir)
}

// describe formats a patch target for messages.
func describe(t *kustomize.Selector) string {
	var b bytes.Buffer
	b.WriteString("{")
	sep := ""
	for _, kv := range [][2]string{{"group", t.Group}, {"version", t.Version}, {"kind", t.Kind}, {"name", t.Name},
		{"namespace", t.Namespace}, {"labelSelector", t.LabelSelector}, {"annotationSelector", t.AnnotationSelector}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, "%s%s: %s", sep, kv[0], kv[1])
			sep = ", "
		}
	}
	b.WriteString("}")
	return b.String()
}
