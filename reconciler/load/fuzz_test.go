package load_test

import (
	"testing"
	"testing/fstest"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/load"
)

// FuzzWorkplace feeds arbitrary bytes to the Workplace decoder: it must return
// workplaces or an error naming the file, never panic.
func FuzzWorkplace(f *testing.F) {
	f.Add([]byte("apiVersion: platzwart.io/v1alpha1\nkind: Workplace\nmetadata: {name: demo}\nspec: {domain: example.org, profile: minikube}\n"))
	f.Add([]byte("apiVersion: platzwart.io/v1alpha1\nkind: Workplace\nmetadata: {name: demo}\nspec:\n  components: {video: jitsi}\n  values: {jitsi: {a: [1, 2]}}\n---\nkind: Other\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("apiVersion: platzwart.io/v1alpha1\nkind: Workplace\nspec: {domain: 7}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{"workplace.yaml": &fstest.MapFile{Data: data}}
		repo, err := load.FS(fsys, "repo", platzwart.Builtin(), "")
		if err != nil {
			if msg := err.Error(); msg == "" {
				t.Fatal("empty error message")
			}
			return
		}
		for _, w := range repo.Workplaces {
			if w.Name == "" || w.Namespace == "" || w.Spec.Domain == "" {
				t.Fatalf("accepted an incomplete workplace: %+v", w.Workplace)
			}
		}
	})
}
