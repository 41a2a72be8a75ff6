package v1alpha1_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// controllerGen is the generator the Makefile's generate target runs; keep them equal.
const controllerGen = "sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0"

// TestGeneratedFilesAreCurrent regenerates the deepcopy code and the CRD manifest into
// a temporary directory and fails when the committed files differ: run `make generate`.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs controller-gen")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "go", "run", controllerGen,
		"object:headerFile=hack/boilerplate.go.txt", "crd", "paths=./api/...",
		"output:crd:dir="+tmp, "output:object:dir="+tmp)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=auto")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen: %v\n%s", err, out)
	}
	for gen, committed := range map[string]string{
		"zz_generated.deepcopy.go":     "api/v1alpha1/zz_generated.deepcopy.go",
		"platzwart.io_workplaces.yaml": "config/crd/platzwart.io_workplaces.yaml",
	} {
		want, err := os.ReadFile(filepath.Join(tmp, gen))
		if err != nil {
			t.Fatalf("generated %s: %v", gen, err)
		}
		got, err := os.ReadFile(filepath.Join(root, committed))
		if err != nil {
			t.Fatalf("committed %s: %v", committed, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run `make generate` and commit the result", committed)
		}
	}
}
