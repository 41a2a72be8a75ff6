package source_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/source"
)

// commitFiles writes files into the work tree of repo at dir and commits everything.
func commitFiles(t *testing.T, repo *gogit.Repository, dir string, files map[string]string) string {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.AddWithOptions(&gogit.AddOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	sig := &object.Signature{Name: "test", Email: "test@example.org", When: time.Now()}
	h, err := wt.Commit("commit", &gogit.CommitOptions{Author: sig})
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

func readString(t *testing.T, fsys fs.FS, name string) string {
	t.Helper()
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestReadRevision reads a folder of a repository as it was in older commits, by
// hash, HEAD~1 and annotated tag, without touching the work tree; the tree behaves as
// an fs.FS (testing/fstest); a symbolic link is refused by the repository loader.
func TestReadRevision(t *testing.T) {
	dir := t.TempDir()
	repo, err := gogit.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	first := commitFiles(t, repo, dir, map[string]string{"sub/a.yaml": "one\n", "sub/deep/b.yaml": "b\n", "other.txt": "x"})
	tagger := &object.Signature{Name: "test", Email: "test@example.org", When: time.Now()}
	if _, err := repo.CreateTag("v1", plumbing.NewHash(first), &gogit.CreateTagOptions{Message: "v1", Tagger: tagger}); err != nil {
		t.Fatal(err)
	}
	second := commitFiles(t, repo, dir, map[string]string{"sub/a.yaml": "two\n"})
	sub := filepath.Join(dir, "sub")
	for rev, want := range map[string]string{first: "one\n", first[:10]: "one\n", "HEAD~1": "one\n", "HEAD": "two\n", second: "two\n", "v1": "one\n"} {
		r, err := source.ReadRevision(sub, rev)
		if err != nil {
			t.Fatalf("%s: %v", rev, err)
		}
		if got := readString(t, r.FS, "a.yaml"); got != want {
			t.Errorf("%s: a.yaml %q, want %q", rev, got, want)
		}
		if err := fstest.TestFS(r.FS, "a.yaml", "deep/b.yaml"); err != nil {
			t.Errorf("%s: %v", rev, err)
		}
	}
	if _, err := source.ReadRevision(sub, "no-such-branch"); err == nil {
		t.Error("an unknown revision was read")
	}
	if _, err := source.ReadRevision(filepath.Join(dir, "missing"), "HEAD"); err == nil {
		t.Error("a folder that does not exist was read")
	}

	// A symbolic link in a revision is refused by the loader, naming it.
	if err := os.Symlink("/etc/passwd", filepath.Join(sub, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	commitFiles(t, repo, dir, nil)
	r, err := source.ReadRevision(sub, "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	_, err = load.FS(r.FS, "sub@head", platzwart.Builtin(), "")
	var fe *load.FileError
	if !errors.As(err, &fe) || fe.File != "sub@head/link.yaml" || !strings.Contains(fe.Reason, "symbolic link") {
		t.Errorf("loading a revision with a symbolic link: %v, want the link refused", err)
	}
}
