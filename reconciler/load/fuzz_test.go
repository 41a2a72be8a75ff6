package load

import (
	"testing"
	"testing/fstest"
)

// FuzzWorkplace feeds arbitrary bytes to the Workplace decoder and validation: it
// must return workplaces or an error, never panic. It calls the decoder directly
// (not Dir or FS) so that no catalog is loaded per input.
func FuzzWorkplace(f *testing.F) {
	f.Add([]byte("apiVersion: platzwart.io/v1alpha1\nkind: Workplace\nmetadata: {name: demo}\nspec: {domain: example.org, profile: minikube}\n"))
	f.Add([]byte("apiVersion: platzwart.io/v1alpha1\nkind: Workplace\nmetadata: {name: demo}\nspec:\n  components: {video: jitsi}\n  values: {jitsi: {a: [1, 2]}}\n---\nkind: Other\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("apiVersion: platzwart.io/v1alpha1\nkind: Workplace\nspec: {domain: 7}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{"workplace.yaml": &fstest.MapFile{Data: data}}
		wps, err := workplaces(fsys, "repo", "")
		if err != nil {
			if msg := err.Error(); msg == "" {
				t.Fatal("empty error message")
			}
			return
		}
		for _, w := range wps {
			if w.Name == "" || w.Namespace == "" || w.Spec.Domain == "" {
				t.Fatalf("accepted an incomplete workplace: %+v", w.Workplace)
			}
		}
	})
}
