package guard

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/platzwart/platzwart/reconciler/postrender"
)

func TestScopeFromTheRESTMapper(t *testing.T) {
	objs, err := postrender.Parse([]byte("apiVersion: example.org/v1\nkind: Widget\nmetadata: {name: w}\n---\napiVersion: example.org/v1\nkind: Gadget\nmetadata: {name: g}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := Release{File: "workplace.yaml", Workplace: "demo", Namespace: "demo", Component: "files"}
	// Offline, custom kinds count as namespaced.
	if err := Objects(r, objs, Options{}); err != nil {
		t.Fatalf("offline: %v", err)
	}
	// The cluster knows Widget is cluster-scoped.
	gv := schema.GroupVersion{Group: "example.org", Version: "v1"}
	m := meta.NewDefaultRESTMapper([]schema.GroupVersion{gv})
	m.Add(gv.WithKind("Widget"), meta.RESTScopeRoot)
	m.Add(gv.WithKind("Gadget"), meta.RESTScopeNamespace)
	err = Objects(r, objs, Options{Scope: RESTMapperScope(m)})
	want := `workplace.yaml: Workplace "demo": component "files": Widget.example.org/w: cluster-scoped kind Widget.example.org, which the component does not declare`
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "Gadget") {
		t.Errorf("with the REST mapper: %v; want only %q", err, want)
	}
}
