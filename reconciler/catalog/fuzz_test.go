package catalog_test

import (
	"testing"
	"testing/fstest"

	"github.com/platzwart/platzwart/reconciler/catalog"
)

// FuzzComponent feeds arbitrary bytes to the component decoder and validator.
func FuzzComponent(f *testing.F) {
	f.Add([]byte("apiVersion: platzwart.io/v1alpha1\nkind: Component\nmetadata: {name: x}\nspec:\n  capability: video\n  licence: MIT\n  url: https://example.org\n  hosts: [{name: a, subdomain: a}]\n"))
	f.Add([]byte("apiVersion: platzwart.io/v1alpha1\nkind: Component\nmetadata: {name: x}\nspec:\n  capability: files\n  exports: '{{ .URLs.a }}'\n  secrets: [{name: s, keys: {k: {length: 3}}}]\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{"components/x/component.yaml": &fstest.MapFile{Data: data}}
		c, err := catalog.Load(catalog.Layer{FS: fsys, Label: "repo"})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		for name, comp := range c.Components {
			if name != "x" || comp.Spec.Capability == "" {
				t.Fatalf("accepted an invalid component %q: %+v", name, comp.Spec)
			}
		}
	})
}

// FuzzProfile feeds arbitrary bytes to the profile decoder and validator.
func FuzzProfile(f *testing.F) {
	f.Add([]byte("apiVersion: platzwart.io/v1alpha1\nkind: Profile\nmetadata: {name: p}\nspec:\n  components: {video: none}\n  settings: {replicas: 1}\n"))
	f.Add([]byte("apiVersion: platzwart.io/v1alpha1\nkind: Profile\nmetadata: {name: p}\nspec: {extends: p, routing: {mode: Gateway}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{"profiles/p.yaml": &fstest.MapFile{Data: data}}
		c, err := catalog.Load(catalog.Layer{FS: fsys, Label: "repo"})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if p, ok := c.Profiles["p"]; ok {
			for capName, comp := range p.Spec.Components {
				if comp != "none" {
					t.Fatalf("accepted profile selecting %q for %q from an empty catalog", comp, capName)
				}
			}
		}
	})
}
