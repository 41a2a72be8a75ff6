package load

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
)

// Limits bound what is read from a repository: Git content is untrusted input.
type Limits struct {
	// File is the size limit of one file, in bytes.
	File int64
	// Repository is the limit of all bytes read from the repository, in bytes.
	Repository int64
}

// Default limits of Dir and FS.
const (
	DefaultFileLimit       = 1 << 20
	DefaultRepositoryLimit = 64 << 20
)

// DefaultLimits are the limits Dir and FS apply: 1 MiB per file, 64 MiB in all.
func DefaultLimits() Limits {
	return Limits{File: DefaultFileLimit, Repository: DefaultRepositoryLimit}
}

// FileError is a file of the repository that is refused: too large, or not a regular
// file. Its message names the file.
type FileError struct {
	// File is the file's path, prefixed with the repository's label.
	File string
	// Reason says why it is refused.
	Reason string
}

func (e *FileError) Error() string { return e.File + ": " + e.Reason }

// boundedFS is a read-only view of a repository that refuses named pipes, sockets and
// device files without opening them (a FIFO would block the reader forever), files
// larger than the per-file limit, and reading more than the repository limit.
type boundedFS struct {
	fsys  fs.FS
	label string
	lim   Limits
	read  *atomic.Int64
}

func newBoundedFS(fsys fs.FS, label string, lim Limits) *boundedFS {
	return &boundedFS{fsys: fsys, label: label, lim: lim, read: new(atomic.Int64)}
}

func (b *boundedFS) refuse(name, format string, args ...any) error {
	return &FileError{File: path.Join(b.label, name), Reason: fmt.Sprintf(format, args...)}
}

// Open checks name with Lstat (and Stat for a symlink's target) before opening it.
func (b *boundedFS) Open(name string) (fs.File, error) {
	info, err := lstat(b.fsys, name)
	if err != nil {
		return nil, err
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		// The repository's FS resolves links inside it only (os.Root); check the target.
		if info, err = fs.Stat(b.fsys, name); err != nil {
			return nil, err
		}
	}
	if err := b.check(name, info); err != nil {
		return nil, err
	}
	f, err := b.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		return f, nil
	}
	return &boundedFile{File: f, fs: b, name: name, left: b.lim.File}, nil
}

// check refuses anything but directories and regular files within the file limit.
func (b *boundedFS) check(name string, info fs.FileInfo) error {
	mode := info.Mode()
	switch {
	case mode.IsDir():
		return nil
	case !mode.IsRegular():
		return b.refuse(name, "%s: only regular files and directories may be in a workplace repository", describeMode(mode))
	case info.Size() > b.lim.File:
		return b.refuse(name, "%d bytes, over the limit of %d bytes per file", info.Size(), b.lim.File)
	}
	return nil
}

// describeMode names a file type that is not regular.
func describeMode(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeCharDevice != 0:
		return "a character device"
	case mode&fs.ModeDevice != 0:
		return "a device file"
	case mode&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a regular file (" + mode.Type().String() + ")"
}

// lstat stats name without following a final symlink when fsys can (os.DirFS and
// os.Root.FS implement fs.ReadLinkFS).
func lstat(fsys fs.FS, name string) (fs.FileInfo, error) {
	if l, ok := fsys.(fs.ReadLinkFS); ok {
		return l.Lstat(name)
	}
	return fs.Stat(fsys, name)
}

// boundedFile counts what is read against both limits, so a file growing after the
// check is still bounded.
type boundedFile struct {
	fs.File
	fs   *boundedFS
	name string
	left int64
}

func (f *boundedFile) Read(p []byte) (int, error) {
	if int64(len(p)) > f.left+1 {
		p = p[:f.left+1]
	}
	n, err := f.File.Read(p)
	f.left -= int64(n)
	if f.left < 0 {
		return n, f.fs.refuse(f.name, "over the limit of %d bytes per file", f.fs.lim.File)
	}
	if total := f.fs.read.Add(int64(n)); total > f.fs.lim.Repository {
		return n, &FileError{File: f.fs.label, Reason: fmt.Sprintf("the repository holds more than the limit of %d bytes (reached at %s)", f.fs.lim.Repository, path.Join(f.fs.label, f.name))}
	}
	return n, err
}

// ReadDir lists a directory (fs.WalkDir and fs.ReadDir use it).
func (b *boundedFS) ReadDir(name string) ([]fs.DirEntry, error) {
	f, err := b.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d, ok := f.(fs.ReadDirFile)
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	list, err := d.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	return list, nil
}

// ReadFile reads a whole file through Open, so every limit applies.
func (b *boundedFS) ReadFile(name string) ([]byte, error) {
	f, err := b.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Stat follows symlinks inside the repository, like Open.
func (b *boundedFS) Stat(name string) (fs.FileInfo, error) { return fs.Stat(b.fsys, name) }

// ResolvePath resolves path, relative to the checkout dir, to a directory inside dir,
// following symlinks: a path with `..` or whose symlinks lead outside dir is refused.
// A leading `/` means the checkout's root. The controller's source loop calls it for
// its --path.
func ResolvePath(dir, rel string) (string, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("checkout %q: %w", dir, err)
	}
	r := strings.TrimLeft(filepath.ToSlash(rel), "/")
	if r == "" {
		r = "."
	}
	if !filepath.IsLocal(filepath.FromSlash(r)) || slices.Contains(strings.Split(r, "/"), "..") {
		return "", fmt.Errorf("path %q: must stay inside the repository", rel)
	}
	resolved, err := filepath.EvalSymlinks(filepath.Join(root, filepath.FromSlash(r)))
	if err != nil {
		return "", fmt.Errorf("path %q in the repository: %w", rel, err)
	}
	inside, err := filepath.Rel(root, resolved)
	if err != nil || !filepath.IsLocal(inside) {
		return "", fmt.Errorf("path %q: leaves the repository (through a symbolic link to %s)", rel, resolved)
	}
	info, err := os.Stat(resolved)
	if err != nil {
		return "", fmt.Errorf("path %q in the repository: %w", rel, err)
	}
	if !info.IsDir() {
		return "", fmt.Errorf("path %q in the repository: not a directory", rel)
	}
	return resolved, nil
}
