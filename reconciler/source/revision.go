package source

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	gogitv5 "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Revision is one commit of a local Git repository, read from its object store
// without a checkout.
type Revision struct {
	// Commit is the full commit hash.
	Commit string
	// FS holds the commit's tree at the directory asked for. Regular and executable
	// files read as regular files; a symbolic link is reported as one (the repository
	// loader refuses it); a submodule reads as an empty directory.
	FS fs.FS
}

// ReadRevision opens the Git repository holding dir (dir or one of its parents has
// the .git directory), resolves rev (a commit hash, a branch or tag name, HEAD,
// HEAD~1, ...) and returns that commit's tree at dir's place in the repository.
// Nothing is checked out and nothing is written.
func ReadRevision(dir, rev string) (*Revision, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	repo, err := gogitv5.PlainOpenWithOptions(abs, &gogitv5.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if err != nil {
		return nil, fmt.Errorf("%s: opening the Git repository: %w", dir, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return nil, fmt.Errorf("%s: the Git repository has no work tree: %w", dir, err)
	}
	root, err := filepath.EvalSymlinks(wt.Filesystem.Root())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("%s: not inside the work tree %s", dir, root)
	}
	hash, err := repo.ResolveRevision(plumbing.Revision(rev))
	if errors.Is(err, io.EOF) {
		err = errors.New("no such commit (before the first one, or outside a shallow clone)")
	}
	if err != nil {
		return nil, fmt.Errorf("%s: revision %q: %w", dir, rev, err)
	}
	commit, err := repo.CommitObject(*hash)
	if err != nil {
		// An annotated tag resolves to the tag object: peel it.
		tag, terr := repo.TagObject(*hash)
		if terr != nil {
			return nil, fmt.Errorf("%s: revision %q (%s) is not a commit: %w", dir, rev, hash, err)
		}
		if commit, err = tag.Commit(); err != nil {
			return nil, fmt.Errorf("%s: tag %q: %w", dir, rev, err)
		}
	}
	tree, err := commit.Tree()
	if err != nil {
		return nil, fmt.Errorf("%s: tree of commit %s: %w", dir, commit.Hash, err)
	}
	if rel = filepath.ToSlash(rel); rel != "." {
		if tree, err = tree.Tree(rel); err != nil {
			return nil, fmt.Errorf("%s: %s does not exist in commit %s: %w", dir, rel, commit.Hash, err)
		}
	}
	return &Revision{Commit: commit.Hash.String(), FS: &treeFS{root: tree, when: commit.Committer.When}}, nil
}

// treeFS is a Git tree as an fs.FS. Files are read from the object store when opened.
type treeFS struct {
	root *object.Tree
	when time.Time
}

func (t *treeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return &treeDirectory{fsys: t, tree: t.root, info: t.info(".", filemode.Dir, 0)}, nil
	}
	entry, err := t.root.FindEntry(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	switch entry.Mode {
	case filemode.Dir:
		sub, err := t.root.Tree(name)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &treeDirectory{fsys: t, tree: sub, info: t.info(name, entry.Mode, 0)}, nil
	case filemode.Submodule:
		return &treeDirectory{fsys: t, info: t.info(name, entry.Mode, 0)}, nil
	}
	blob, err := t.root.File(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	info := t.info(name, entry.Mode, blob.Size)
	if entry.Mode == filemode.Symlink {
		// Reading a link as a file would follow nothing; the loader refuses links.
		return &treeFile{info: info, r: io.NopCloser(strings.NewReader(""))}, nil
	}
	r, err := blob.Reader()
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &treeFile{info: info, r: r}, nil
}

// Stat describes name without opening it (fs.StatFS).
func (t *treeFS) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return t.info(".", filemode.Dir, 0), nil
	}
	entry, err := t.root.FindEntry(name)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	var size int64
	if entry.Mode.IsFile() {
		if size, err = t.root.Size(name); err != nil {
			return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
		}
	}
	return t.info(name, entry.Mode, size), nil
}

// info describes an entry the way fs.FileInfo does.
func (t *treeFS) info(name string, mode filemode.FileMode, size int64) *treeInfo {
	var m fs.FileMode
	switch mode {
	case filemode.Dir, filemode.Submodule:
		m = fs.ModeDir | 0o755
	case filemode.Symlink:
		m = fs.ModeSymlink | 0o777
	case filemode.Executable:
		m = 0o755
	default:
		m = 0o644
	}
	return &treeInfo{name: path.Base(name), mode: m, size: size, when: t.when}
}

type treeInfo struct {
	name string
	mode fs.FileMode
	size int64
	when time.Time
}

func (i *treeInfo) Name() string               { return i.name }
func (i *treeInfo) Size() int64                { return i.size }
func (i *treeInfo) Mode() fs.FileMode          { return i.mode }
func (i *treeInfo) ModTime() time.Time         { return i.when }
func (i *treeInfo) IsDir() bool                { return i.mode.IsDir() }
func (i *treeInfo) Sys() any                   { return nil }
func (i *treeInfo) Type() fs.FileMode          { return i.mode.Type() }
func (i *treeInfo) Info() (fs.FileInfo, error) { return i, nil }

type treeFile struct {
	info *treeInfo
	r    io.ReadCloser
}

func (f *treeFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *treeFile) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *treeFile) Close() error               { return f.r.Close() }

// treeDirectory is a directory of the tree; tree is nil for a submodule.
type treeDirectory struct {
	fsys    *treeFS
	tree    *object.Tree
	info    *treeInfo
	entries []fs.DirEntry
	read    bool
}

func (d *treeDirectory) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *treeDirectory) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}
func (d *treeDirectory) Close() error { return nil }

// ReadDir lists the directory sorted by name, as fs.ReadDirFile requires.
func (d *treeDirectory) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.read {
		d.read = true
		if d.tree != nil {
			for _, e := range d.tree.Entries {
				var size int64
				if e.Mode.IsFile() {
					if s, err := d.tree.Size(e.Name); err == nil {
						size = s
					}
				}
				d.entries = append(d.entries, d.fsys.info(e.Name, e.Mode, size))
			}
			sort.Slice(d.entries, func(i, j int) bool { return d.entries[i].Name() < d.entries[j].Name() })
		}
	}
	if n <= 0 {
		out := d.entries
		d.entries = nil
		return out, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.entries))
	out := d.entries[:n]
	d.entries = d.entries[n:]
	return out, nil
}
