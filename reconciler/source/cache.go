package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fluxcd/pkg/git"
	"github.com/fluxcd/pkg/git/gogit"
	"github.com/fluxcd/pkg/git/repository"
	"github.com/go-git/go-billy/v5/osfs"
	gogitv5 "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/gofrs/flock"
)

// Cache layout, one entry per URL:
//
//	<CacheDir>/<sha256(URL)[:32 hex]>/
//	    lock           flock(2) held while the entry is read or changed
//	    url            the URL, for people looking at the cache
//	    <commit>/      one per fetched commit, renamed into place when complete
//	        tree/      the commit's tree: Artifact.Dir
//	        git/       the (shallow) object store the clone wrote; a cache hit reads
//	                   the commit from it to verify its signature again
//	        used       its mtime is when this checkout was last returned
//	    tmp-*/         a clone in progress; left-overs are removed under the lock
const (
	lockFile  = "lock"
	urlFile   = "url"
	treeDir   = "tree"
	gitDir    = "git"
	usedFile  = "used"
	tmpPrefix = "tmp-"

	// keepCheckouts is how many checkouts an entry keeps: the one just returned and
	// the one returned before it.
	keepCheckouts = 2
	// lockRetry is how often a waiting Fetch retries the entry's lock.
	lockRetry = 20 * time.Millisecond
)

// entryDir is the cache entry of the fetcher's URL.
func (f *fetcher) entryDir() string {
	sum := sha256.Sum256([]byte(f.opts.URL))
	return filepath.Join(f.opts.CacheDir, hex.EncodeToString(sum[:16]))
}

// checkout returns the artifact of commit hash (the remote's answer for the ref),
// from the cache when it holds the commit, else by cloning.
func (f *fetcher) checkout(ctx context.Context, hash string) (*Artifact, error) {
	entry := f.entryDir()
	if err := os.MkdirAll(entry, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	lock := flock.New(filepath.Join(entry, lockFile))
	locked, err := lock.TryLockContext(ctx, lockRetry)
	if err != nil || !locked {
		return nil, fmt.Errorf("cache: lock %s: %w", entry, errors.Join(err, ctx.Err()))
	}
	defer func() { _ = lock.Unlock() }()

	if err := prepareEntry(entry, f.opts.URL); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	dir := filepath.Join(entry, hash)
	if !isCheckout(dir) {
		if hash, err = f.clone(ctx, entry); err != nil {
			return nil, err
		}
		dir = filepath.Join(entry, hash)
	}
	commit, err := readCommit(filepath.Join(dir, gitDir), hash)
	if err != nil {
		return nil, fmt.Errorf("cache: %s: %w", dir, err)
	}
	a := &Artifact{
		Dir:        filepath.Join(dir, treeDir),
		Revision:   f.opts.Ref.revision(hash),
		Commit:     hash,
		CommitTime: commit.Committer.When,
		Author:     fmt.Sprintf("%s <%s>", commit.Author.Name, commit.Author.Email),
		Message:    commit.ShortMessage(),
	}
	if f.opts.Verify != nil {
		if a.Signer, err = f.opts.Verify.verify(commit); err != nil {
			return nil, err
		}
		a.Verified = true
	}
	if err := markUsed(dir); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if err := prune(entry, hash); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return a, nil
}

// prepareEntry removes clones a crashed Fetch left behind and records the URL.
func prepareEntry(entry, rawURL string) error {
	des, err := os.ReadDir(entry)
	if err != nil {
		return err
	}
	for _, de := range des {
		if strings.HasPrefix(de.Name(), tmpPrefix) {
			if err := os.RemoveAll(filepath.Join(entry, de.Name())); err != nil {
				return err
			}
		}
	}
	p := filepath.Join(entry, urlFile)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return os.WriteFile(p, []byte(rawURL+"\n"), 0o600)
	}
	return nil
}

// isCheckout reports whether dir is a complete checkout (they are renamed into place
// only when complete).
func isCheckout(dir string) bool {
	for _, sub := range []string{treeDir, gitDir} {
		if fi, err := os.Stat(filepath.Join(dir, sub)); err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// clone clones the ref with gogit into a temporary directory of the entry and renames
// it to the commit it got. It returns that commit's hash, which is newer than the
// remote check's answer when the branch moved in between.
func (f *fetcher) clone(ctx context.Context, entry string) (string, error) {
	tmp, err := os.MkdirTemp(entry, tmpPrefix)
	if err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }() // a no-op after the rename

	tree, objects := filepath.Join(tmp, treeDir), filepath.Join(tmp, gitDir)
	storage := filesystem.NewStorage(osfs.New(objects, osfs.WithBoundOS()), cache.NewObjectLRUDefault())
	defer func() { _ = storage.Close() }()
	client, err := gogit.NewClient(tree, f.auth,
		gogit.WithStorer(storage),
		gogit.WithWorkTreeFS(osfs.New(tree, osfs.WithBoundOS())),
	)
	if err != nil {
		return "", fmt.Errorf("clone: %w", err)
	}
	defer client.Close()

	ref := f.opts.Ref
	cfg := repository.CloneConfig{
		CheckoutStrategy: repository.CheckoutStrategy{Branch: ref.Branch, Tag: ref.Tag, Commit: ref.Commit},
		// go-git cannot fetch a single commit by hash: a commit ref gets the whole
		// history of its branch (or of all branches).
		ShallowClone: ref.Commit == "",
	}
	commit, err := client.Clone(ctx, f.opts.URL, cfg)
	if err != nil {
		return "", fmt.Errorf("clone: %w", err)
	}
	if commit == nil {
		return "", errors.New("clone: the repository is empty")
	}
	hash := commit.Hash.String()
	if !commitHash.MatchString(hash) {
		return "", fmt.Errorf("clone: unexpected commit hash %q", hash)
	}
	// go-git links a worktree to a separate object store with a ".git" file; the
	// tree must hold the commit's files only. (Git never tracks a path named .git.)
	if err := os.Remove(filepath.Join(tree, gogitv5.GitDirName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("clone: %w", err)
	}
	if err := storage.Close(); err != nil {
		return "", fmt.Errorf("clone: %w", err)
	}
	dir := filepath.Join(entry, hash)
	if isCheckout(dir) {
		// The branch moved to a commit the cache already holds.
		return hash, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("cache: %w", err)
	}
	return hash, nil
}

// readCommit reads commit hash from a checkout's object store, in the form fluxcd's
// verification helpers take.
func readCommit(objects, hash string) (*git.Commit, error) {
	storage := filesystem.NewStorage(osfs.New(objects, osfs.WithBoundOS()), cache.NewObjectLRUDefault())
	defer func() { _ = storage.Close() }()
	c, err := object.GetCommit(storage, plumbing.NewHash(hash))
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", hash, err)
	}
	encoded := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(encoded); err != nil {
		return nil, fmt.Errorf("encode commit %s: %w", hash, err)
	}
	r, err := encoded.Reader()
	if err != nil {
		return nil, fmt.Errorf("encode commit %s: %w", hash, err)
	}
	defer func() { _ = r.Close() }()
	payload, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("encode commit %s: %w", hash, err)
	}
	return &git.Commit{
		Hash:      git.Hash(c.Hash.String()),
		Author:    git.Signature{Name: c.Author.Name, Email: c.Author.Email, When: c.Author.When},
		Committer: git.Signature{Name: c.Committer.Name, Email: c.Committer.Email, When: c.Committer.When},
		Signature: c.PGPSignature,
		Encoded:   payload,
		Message:   c.Message,
	}, nil
}

// markUsed records that the checkout in dir was just returned.
func markUsed(dir string) error {
	p := filepath.Join(dir, usedFile)
	now := time.Now()
	if err := os.Chtimes(p, now, now); errors.Is(err, fs.ErrNotExist) {
		return os.WriteFile(p, nil, 0o600)
	} else if err != nil {
		return err
	}
	return nil
}

// prune removes the entry's checkouts except current and the most recently returned
// others, keepCheckouts in all. Checkouts never returned (a refused signature) go
// first.
func prune(entry, current string) error {
	des, err := os.ReadDir(entry)
	if err != nil {
		return err
	}
	type checkout struct {
		name string
		used time.Time
	}
	var others []checkout
	for _, de := range des {
		if !de.IsDir() || de.Name() == current || !commitHash.MatchString(de.Name()) {
			continue
		}
		c := checkout{name: de.Name()}
		if fi, err := os.Stat(filepath.Join(entry, de.Name(), usedFile)); err == nil {
			c.used = fi.ModTime()
		}
		others = append(others, c)
	}
	sort.Slice(others, func(i, j int) bool { return others[i].used.After(others[j].used) })
	for i, c := range others {
		if i < keepCheckouts-1 && !c.used.IsZero() {
			continue
		}
		if err := os.RemoveAll(filepath.Join(entry, c.name)); err != nil {
			return err
		}
	}
	return nil
}
