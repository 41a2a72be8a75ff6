package render

import (
	"context"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"

	"github.com/platzwart/platzwart/reconciler/catalog"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/postrender"
)

// testRelease is a release of an in-memory chart with the given templates.
func testRelease(templates map[string]string, values map[string]any) *plan.Release {
	ch := &chart.Chart{Metadata: &chart.Metadata{APIVersion: "v2", Name: "files", Version: "1.0.0"}}
	for name, data := range templates {
		ch.Templates = append(ch.Templates, &chart.File{Name: "templates/" + name, Data: []byte(data)})
	}
	if values == nil {
		values = map[string]any{}
	}
	return &plan.Release{
		Name: "demo-files", Workplace: "demo", Namespace: "demo", Component: "files", Capability: "files",
		Chart: &catalog.Chart{Chart: ch, File: "charts/files"}, Values: values,
		PatchesOrigin: `workplace.yaml: Workplace "demo": spec.patches.files`,
	}
}

func TestRenderRefusesAVolumeInAHook(t *testing.T) {
	cases := map[string]string{
		"claim": `{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
  "metadata": {"name": "scratch", "annotations": {"helm.sh/hook": "pre-install"}}, "spec": {}}`,
		"claim template": `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: seed
  annotations: {helm.sh/hook: post-install}
spec:
  volumeClaimTemplates: [{metadata: {name: data}, spec: {}}]
`,
	}
	for name, hook := range cases {
		t.Run(name, func(t *testing.T) {
			rel := testRelease(map[string]string{"hook.yaml": hook, "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"}, nil)
			_, err := Release(context.Background(), rel)
			if err == nil {
				t.Fatal("a volume in a hook rendered without error")
			}
			for _, want := range []string{`component "files"`, "hook files/templates/hook.yaml", "a volume in a hook would be deleted"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestRenderKeepsClaimsOfTheManifest(t *testing.T) {
	rel := testRelease(map[string]string{"pvc.yaml": `{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"}, "spec": {}}`}, nil)
	m, err := Release(context.Background(), rel)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := postrender.Parse([]byte(m.Manifest))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 {
		t.Fatalf("got %d objects, want 1", len(objs))
	}
	md := objs[0].Fields["metadata"].(map[string]any)
	if ann, _ := md["annotations"].(map[string]any); ann[postrender.KeepAnnotation] != postrender.KeepValue {
		t.Errorf("a JSON claim in the release manifest has annotations %v, want %s: %s", ann, postrender.KeepAnnotation, postrender.KeepValue)
	}
}
