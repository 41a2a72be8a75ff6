package postrender

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/apis/kustomize"
)

// run post-renders manifest with patches and returns the decoded objects.
func runPost(t *testing.T, manifest string, patches ...kustomize.Patch) []*Object {
	t.Helper()
	k := &Kustomize{Patches: patches, Where: `workplace.yaml: Workplace "demo": spec.patches.files`}
	out, err := k.Run(bytes.NewBufferString(manifest))
	if err != nil {
		t.Fatalf("post-render: %v", err)
	}
	objs, err := Parse(out.Bytes())
	if err != nil {
		t.Fatalf("parsing the output: %v\n%s", err, out)
	}
	return objs
}

// annotation returns metadata.annotations[key] of an object or template.
func annotation(m map[string]any, key string) any {
	md, _ := m["metadata"].(map[string]any)
	ann, _ := md["annotations"].(map[string]any)
	return ann[key]
}

// find returns the object of kind and name.
func find(t *testing.T, objs []*Object, kind, name string) *Object {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && o.Name == name {
			return o
		}
	}
	t.Fatalf("no %s %q in the output", kind, name)
	return nil
}

func TestKeepVolumesFoundByParsing(t *testing.T) {
	const configMap = "---\n# Source: files/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n"
	cases := map[string]string{
		"quoted kind": `---
# Source: files/templates/pvc.yaml
apiVersion: "v1"
kind: "PersistentVolumeClaim"
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
`,
		"single-quoted kind with annotations": `---
apiVersion: v1
kind: 'PersistentVolumeClaim'
metadata:
  name: data
  annotations:
    example.org/x: "y"
spec: {}
`,
		"JSON manifest": `---
# Source: files/templates/pvc.json
{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data","labels":{"app":"files"}},"spec":{"accessModes":["ReadWriteOnce"]}}
`,
		"flow style": `---
{apiVersion: v1,
 kind:
   PersistentVolumeClaim,
 metadata: {name: data}, spec: {accessModes: [ReadWriteOnce]}}
`,
		"in a List": `---
apiVersion: v1
kind: List
items:
- {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"}}
`,
	}
	for name, pvc := range cases {
		t.Run(name, func(t *testing.T) {
			objs := runPost(t, configMap+pvc)
			if got := annotation(find(t, objs, "PersistentVolumeClaim", "data").Fields, KeepAnnotation); got != KeepValue {
				t.Errorf("claim annotation %s = %v, want %q", KeepAnnotation, got, KeepValue)
			}
			if got := annotation(find(t, objs, "ConfigMap", "settings").Fields, KeepAnnotation); got != nil {
				t.Errorf("a ConfigMap got %s = %v", KeepAnnotation, got)
			}
		})
	}
}

func TestKeepVolumesOnClaimTemplates(t *testing.T) {
	const sts = `---
apiVersion: apps/v1
kind: "StatefulSet"
metadata: {name: db}
spec:
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Delete}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce]}
  - {"metadata": {"name": "wal", "annotations": {"a": "b"}}, "spec": {}}
`
	objs := runPost(t, sts)
	spec := find(t, objs, "StatefulSet", "db").Fields["spec"].(map[string]any)
	// Templates are immutable in an existing StatefulSet: changing them would break
	// the upgrade of every release installed before; they stay as the chart wrote them.
	for i, tmpl := range spec["volumeClaimTemplates"].([]any) {
		if got := annotation(tmpl.(map[string]any), KeepAnnotation); got != nil {
			t.Errorf("volumeClaimTemplates[%d] annotation = %v, want none (immutable field)", i, got)
		}
	}
	pol := spec["persistentVolumeClaimRetentionPolicy"].(map[string]any)
	if pol["whenDeleted"] != "Retain" {
		t.Errorf("whenDeleted = %v, want Retain: deleting the StatefulSet must not delete its claims", pol["whenDeleted"])
	}
	if pol["whenScaled"] != "Delete" {
		t.Errorf("whenScaled = %v, want it untouched", pol["whenScaled"])
	}
}

func TestKeepVolumesLeavesOtherDocumentsAlone(t *testing.T) {
	const in = "---\n# Source: a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"
	out, err := KeepVolumes([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Errorf("a manifest without volumes changed:\n%s", out)
	}
}

func TestPatchKeepsVolumesKept(t *testing.T) {
	const in = "---\napiVersion: v1\nkind: \"PersistentVolumeClaim\"\nmetadata:\n  name: data\nspec: {}\n"
	patch := kustomize.Patch{
		Patch:  `[{"op": "add", "path": "/metadata/labels", "value": {"tier": "data"}}]`,
		Target: &kustomize.Selector{Kind: "PersistentVolumeClaim", Name: "data"},
	}
	objs := runPost(t, in, patch)
	o := find(t, objs, "PersistentVolumeClaim", "data")
	if got := annotation(o.Fields, KeepAnnotation); got != KeepValue {
		t.Errorf("patched claim annotation = %v, want %q", got, KeepValue)
	}
}

func TestPatchCannotChangeIdentity(t *testing.T) {
	const in = `---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {a: b}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 80}]}
`
	harmless := kustomize.Patch{
		Patch:  `[{"op": "add", "path": "/data/c", "value": "d"}]`,
		Target: &kustomize.Selector{Kind: "ConfigMap", Name: "settings"},
	}
	cases := map[string]struct {
		patch kustomize.Patch
		want  string
	}{
		"namespace": {
			kustomize.Patch{Patch: `[{"op": "add", "path": "/metadata/namespace", "value": "kube-system"}]`, Target: &kustomize.Selector{Kind: "ConfigMap", Name: "settings"}},
			"ConfigMap/settings became ConfigMap/kube-system/settings",
		},
		"name": {
			kustomize.Patch{Patch: `[{"op": "replace", "path": "/metadata/name", "value": "other-web"}]`, Target: &kustomize.Selector{Kind: "Service"}},
			"Service/web became Service/other-web",
		},
		"kind": {
			kustomize.Patch{Patch: `[{"op": "replace", "path": "/kind", "value": "Secret"}]`, Target: &kustomize.Selector{Kind: "ConfigMap"}},
			"ConfigMap/settings became Secret/settings",
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			k := &Kustomize{Patches: []kustomize.Patch{harmless, c.patch}, Where: `workplace.yaml: Workplace "demo": spec.patches.files`}
			_, err := k.Run(bytes.NewBufferString(in))
			if err == nil {
				t.Fatal("a patch changing an object's identity was accepted")
			}
			for _, want := range []string{`workplace.yaml: Workplace "demo": spec.patches.files[1]`, c.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// TestPodAnnotationsFoundByParsing puts pod annotations on the pod template of every
// apps/v1 workload however the chart writes it (quoted kind, JSON, flow style, in a
// List), after the patches, and nowhere else; a manifest without workloads passes
// unchanged (no error: secret versions are folded into the digest alone).
func TestPodAnnotationsFoundByParsing(t *testing.T) {
	const key, value = "platzwart.io/secret-versions", "sha256:abc"
	manifest := `---
apiVersion: "apps/v1"
kind: "Deployment"
metadata: {name: web}
spec:
  template:
    metadata:
      annotations: {example.org/x: "y"}
    spec: {containers: [{name: web, image: web:1}]}
---
{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"db"},"spec":{"template":{"spec":{"containers":[{"name":"db","image":"db:1"}]}}}}
---
apiVersion: v1
kind: List
items:
- {apiVersion: apps/v1, kind: DaemonSet, metadata: {name: agent}, spec: {template: {spec: {containers: [{name: a, image: a:1}]}}}}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec: {template: {spec: {containers: [{name: j, image: j:1}]}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
`
	k := &Kustomize{PodAnnotations: map[string]string{key: value}, Where: "test",
		Patches: []kustomize.Patch{{Patch: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 2}\n"}}}
	out, err := k.Run(bytes.NewBufferString(manifest))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Parse(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	template := func(o *Object) map[string]any {
		spec, _ := o.Fields["spec"].(map[string]any)
		tmpl, _ := spec["template"].(map[string]any)
		return tmpl
	}
	for _, w := range []struct{ kind, name string }{{"Deployment", "web"}, {"StatefulSet", "db"}, {"DaemonSet", "agent"}} {
		if got := annotation(template(find(t, objs, w.kind, w.name)), key); got != value {
			t.Errorf("%s %s: pod template annotation %v, want %q", w.kind, w.name, got, value)
		}
	}
	web := find(t, objs, "Deployment", "web")
	if got := annotation(template(web), "example.org/x"); got != "y" {
		t.Errorf("the chart's own pod annotation is gone: %v", got)
	}
	if spec, _ := web.Fields["spec"].(map[string]any); spec["replicas"] != float64(2) && spec["replicas"] != int64(2) && spec["replicas"] != 2 {
		t.Errorf("the patch was lost: replicas %v", spec["replicas"])
	}
	if got := annotation(template(find(t, objs, "Job", "once")), key); got != nil {
		t.Errorf("a Job's pod template got %s", key)
	}
	if got := annotation(find(t, objs, "ConfigMap", "settings").Fields, key); got != nil {
		t.Errorf("a ConfigMap got %s", key)
	}

	const noWorkload = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
	out, err = (&Kustomize{PodAnnotations: map[string]string{key: value}}).Run(bytes.NewBufferString(noWorkload))
	if err != nil {
		t.Fatalf("a release without workloads: %v", err)
	}
	if out.String() != noWorkload {
		t.Errorf("a manifest without workloads changed:\n%s", out)
	}
}
