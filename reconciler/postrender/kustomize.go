// Package postrender applies a workplace's kustomize patches to a release's rendered
// manifests, as a Helm post-renderer built on sigs.k8s.io/kustomize/api.
package postrender

import (
	"bytes"
	"fmt"

	"github.com/fluxcd/pkg/apis/kustomize"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/resid"
	"sigs.k8s.io/yaml"
)

// KeepAnnotation tells Helm to leave a resource in place when the release is
// uninstalled. The post-renderer puts it on every PersistentVolumeClaim, so removing or
// swapping a component never deletes its data; platzwart deletes kept claims itself
// only under dataPolicy Delete. A release installed again under the same name adopts
// its kept claims.
const KeepAnnotation = "helm.sh/resource-policy"

// keepPVCs is the patch that sets KeepAnnotation on every PersistentVolumeClaim.
const keepPVCs = `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: any
  annotations:
    helm.sh/resource-policy: keep
`

// Kustomize is a helm.sh/helm/v3/pkg/postrender.PostRenderer applying patches, and
// marking every PersistentVolumeClaim to be kept on uninstall.
type Kustomize struct {
	// Patches are applied in order; each must match at least one resource.
	Patches []kustomize.Patch
	// Where names the patches' origin in errors, such as
	// `workplace.yaml: Workplace "demo": spec.patches.jitsi`.
	Where string
}

// Run applies the patches to the rendered manifests. A patch whose target matches no
// resource is an error, so a typo never passes silently.
func (k *Kustomize) Run(rendered *bytes.Buffer) (*bytes.Buffer, error) {
	hasPVC := bytes.Contains(rendered.Bytes(), []byte("kind: PersistentVolumeClaim"))
	if len(k.Patches) == 0 && !hasPVC {
		return rendered, nil
	}
	const dir = "/release"
	fsys := filesys.MakeFsInMemory()
	if err := fsys.WriteFile(dir+"/resources.yaml", rendered.Bytes()); err != nil {
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
	for i, p := range k.Patches {
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
	if hasPVC {
		kz.Patches = append(kz.Patches, kusttypes.Patch{Patch: keepPVCs, Target: &kusttypes.Selector{ResId: resid.ResId{Gvk: resid.Gvk{Version: "v1", Kind: "PersistentVolumeClaim"}}}})
	}
	out, err := run(fsys, dir, kz)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.Where, err)
	}
	data, err := out.AsYaml()
	if err != nil {
		return nil, err
	}
	return bytes.NewBuffer(data), nil
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
