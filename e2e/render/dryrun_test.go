// Package render_test checks that what `platzwart render` produces is accepted by a real
// API server: every manifest of the example workplace, for each video choice, passes a
// server-side apply dry-run on the local control plane (or PLATZWART_E2E_KUBECONFIG).
package render_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/e2e/cluster"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/render"
)

func TestMain(m *testing.M) { os.Exit(cluster.RunTests(m)) }

// exampleWith copies the example workplace into a temporary repository, with the
// namespace and the video component replaced.
func exampleWith(t *testing.T, namespace, video string) string {
	t.Helper()
	data, err := os.ReadFile("../../examples/workplace/workplace.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(data), "namespace: demo", "namespace: "+namespace, 1)
	s = strings.Replace(s, "video: jitsi ", "video: "+video+" ", 1)
	if !strings.Contains(s, "video: "+video) {
		t.Fatalf("could not select video %q in the example", video)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "workplace.yaml"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestExampleAcceptedByAPIServer(t *testing.T) {
	c := cluster.FromTest(t)
	dyn, err := dynamic.NewForConfig(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))

	for _, video := range []string{"jitsi", "bigbluebutton"} {
		t.Run(video, func(t *testing.T) {
			ns := c.NewNamespace(t)
			repo, err := load.Dir(exampleWith(t, ns, video), platzwart.Builtin(), "")
			if err != nil {
				t.Fatal(err)
			}
			p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
			if err != nil {
				t.Fatal(err)
			}
			manifests, err := render.Plan(t.Context(), p)
			if err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, m := range manifests {
				objs, err := decode(m.Bytes())
				if err != nil {
					t.Fatalf("release %s: %v", m.Release, err)
				}
				for _, obj := range objs {
					gvk := obj.GroupVersionKind()
					mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
					if err != nil {
						t.Errorf("release %s: %s %s: the API server does not serve this kind: %v", m.Release, gvk, obj.GetName(), err)
						continue
					}
					var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
					if mapping.Scope.Name() == "namespace" {
						if obj.GetNamespace() == "" {
							obj.SetNamespace(ns)
						}
						if obj.GetNamespace() != ns {
							t.Errorf("release %s: %s %s renders into namespace %q, not the workplace's %q", m.Release, gvk.Kind, obj.GetName(), obj.GetNamespace(), ns)
							continue
						}
						ri = dyn.Resource(mapping.Resource).Namespace(ns)
					}
					_, err = ri.Apply(t.Context(), obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "platzwart-e2e", DryRun: []string{metav1.DryRunAll}, Force: true})
					if err != nil {
						t.Errorf("release %s: %s %s rejected by the API server: %v", m.Release, gvk.Kind, obj.GetName(), err)
						continue
					}
					total++
				}
			}
			t.Logf("video=%s: %d releases, %d objects accepted by server-side dry-run", video, len(manifests), total)
			if total == 0 {
				t.Fatal("nothing was checked")
			}
		})
	}
}

// TestInvalidManifestRejected proves the dry-run path above can fail: a Deployment
// with an invalid field value is refused.
func TestInvalidManifestRejected(t *testing.T) {
	c := cluster.FromTest(t)
	ns := c.NewNamespace(t)
	dyn, err := dynamic.NewForConfig(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode([]byte(`apiVersion: v1
kind: Service
metadata: {name: bad}
spec:
  ports: [{port: 70000}]
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "services"}).Namespace(ns).Apply(t.Context(), "bad", objs[0], metav1.ApplyOptions{FieldManager: "platzwart-e2e", DryRun: []string{metav1.DryRunAll}})
	if err == nil {
		t.Fatal("a Service with port 70000 was accepted")
	}
}

// decode splits a YAML stream into objects, skipping empty documents.
func decode(data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		obj := &unstructured.Unstructured{}
		if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(doc), 4096).Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				continue
			}
			return nil, err
		}
		if len(obj.Object) == 0 {
			continue
		}
		out = append(out, obj)
	}
}
