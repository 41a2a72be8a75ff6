package load

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"
)

const testWorkplace = "apiVersion: platzwart.io/v1alpha1\nkind: Workplace\nmetadata: {name: demo}\nspec: {domain: example.org, profile: minikube}\n"

// repoDir writes files into a new repository directory.
func repoDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// loadWithin loads dir, failing the test when loading takes longer than a few seconds
// (a FIFO opened for reading blocks until a writer comes).
func loadWithin(t *testing.T, dir string, lim Limits) (*Repository, error) {
	t.Helper()
	type result struct {
		repo *Repository
		err  error
	}
	done := make(chan result, 1)
	go func() {
		root, err := os.OpenRoot(dir)
		if err != nil {
			done <- result{nil, err}
			return
		}
		t.Cleanup(func() { _ = root.Close() }) // charts are read when plans ask for them
		repo, err := FSLimited(root.FS(), "repo", fstest.MapFS{}, "", lim)
		done <- result{repo, err}
	}()
	select {
	case r := <-done:
		return r.repo, r.err
	case <-time.After(20 * time.Second):
		t.Fatal("loading the repository hangs (a named pipe was opened)")
		return nil, nil
	}
}

func wantFileError(t *testing.T, err error, file string, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("the repository was accepted")
	}
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("error %q is not a *FileError", err)
	}
	for _, want := range append([]string{file}, parts...) {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestLoadRefusesNamedPipes(t *testing.T) {
	for _, name := range []string{"tenant/other.yaml", "notes.fifo", "charts/evil/templates/x.yaml", "components/evil/component.yaml"} {
		t.Run(name, func(t *testing.T) {
			dir := repoDir(t, map[string]string{"workplace.yaml": testWorkplace})
			p := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
			if strings.HasPrefix(name, "charts/") {
				// A chart is read when a plan asks for it: ask for it here.
				if err := os.WriteFile(filepath.Join(dir, "charts/evil/Chart.yaml"), []byte("apiVersion: v2\nname: evil\nversion: 1.0.0\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				repo, err := loadWithin(t, dir, DefaultLimits())
				if err != nil {
					t.Fatal(err)
				}
				_, err = repo.Catalog.Chart("charts/evil")
				wantFileError(t, err, "repo/"+name, "named pipe")
				return
			}
			_, err := loadWithin(t, dir, DefaultLimits())
			wantFileError(t, err, "repo/"+name, "named pipe")
		})
	}
}

func TestLoadRefusesAnOversizeFile(t *testing.T) {
	big := testWorkplace + "# " + strings.Repeat("x", DefaultFileLimit) + "\n"
	dir := repoDir(t, map[string]string{"workplace.yaml": testWorkplace, "tenant/big.yaml": big})
	_, err := loadWithin(t, dir, DefaultLimits())
	wantFileError(t, err, "repo/tenant/big.yaml", "over the limit of 1048576 bytes per file")
}

func TestLoadRefusesAnOversizeRepository(t *testing.T) {
	files := map[string]string{}
	for _, n := range []string{"a", "b", "c", "d"} {
		files["tenant-"+n+"/workplace.yaml"] = strings.Replace(testWorkplace, "name: demo", "name: demo-"+n, 1)
	}
	dir := repoDir(t, files)
	lim := Limits{File: 1 << 10, Repository: int64(3 * len(testWorkplace))}
	_, err := loadWithin(t, dir, lim)
	wantFileError(t, err, "repo", "the repository holds more than the limit of")
}

func TestResolvePath(t *testing.T) {
	outside := t.TempDir()
	checkout := repoDir(t, map[string]string{"tenants/a/workplace.yaml": testWorkplace})
	for link, target := range map[string]string{
		"escape":         outside,
		"tenants/up":     "..",
		"tenants/out":    "../..",
		"tenants/inside": "a",
	} {
		if err := os.Symlink(target, filepath.Join(checkout, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		path, want string
	}{
		{"escape", "leaves the repository"},
		{"escape/", "leaves the repository"},
		{"tenants/out", "leaves the repository"},
		{"tenants/up/..", "must stay inside"},
		{"../" + filepath.Base(outside), "must stay inside"},
		{"tenants/up", ""}, // the checkout's root itself
		{"/tenants/inside", ""},
		{"tenants/a/workplace.yaml", "not a directory"},
		{"missing", "no such file"},
	} {
		got, err := ResolvePath(checkout, c.path)
		if c.want == "" {
			if err != nil {
				t.Errorf("ResolvePath(%q): %v", c.path, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ResolvePath(%q) = %q, %v; want an error containing %q", c.path, got, err, c.want)
		}
	}
	root, _ := filepath.EvalSymlinks(checkout)
	if got, err := ResolvePath(checkout, "tenants/inside"); err != nil || got != filepath.Join(root, "tenants/a") {
		t.Errorf("ResolvePath(tenants/inside) = %q, %v; want %q", got, err, filepath.Join(root, "tenants/a"))
	}
	// The controller then loads what ResolvePath returned.
	dir, err := ResolvePath(checkout, "tenants/inside")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := loadWithin(t, dir, DefaultLimits()); err != nil {
		t.Errorf("loading the resolved path: %v", err)
	}
}
