// Package source fetches the desired state of a workplace from Git.
//
// Fetch resolves a branch, tag or commit of a remote repository, checks it out into a
// local cache keyed by the repository URL and returns the directory holding exactly
// that commit's tree, optionally after verifying the commit's OpenPGP or SSH
// signature. When the remote still points at the revision the caller last applied,
// Fetch does one ls-remote and nothing else.
//
// Cloning and checkout use github.com/fluxcd/pkg/git/gogit; the remote check
// (ls-remote) and reading a cached commit use go-git directly, because gogit does
// not export them. See docs/adr/0004-git-source.md.
package source

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/fluxcd/pkg/git"
	"github.com/go-git/go-git/v5/plumbing"
)

// ErrUnchanged is returned by Fetch when the remote revision equals the caller's last
// revision: nothing was cloned, checked out or read from the cache.
var ErrUnchanged = errors.New("revision unchanged")

// Options says what to fetch and how.
type Options struct {
	// URL of the repository: https://host/path, http://host/path (only without
	// credentials) or ssh://[user@]host[:port]/path. Credentials belong in Auth,
	// never in the URL.
	URL string
	// Ref is the branch, tag or commit to fetch. It is required: there is no
	// default branch.
	Ref Ref
	// Auth holds the credentials for the URL's transport.
	Auth Auth
	// CacheDir is the directory holding the local cache (required). It survives
	// restarts; one entry per URL.
	CacheDir string
	// Verify, when set, makes Fetch refuse a commit whose signature does not verify
	// against the given keys.
	Verify *Verification
	// Timeout bounds the whole Fetch (remote check, waiting for the cache lock,
	// clone). Zero means only ctx bounds it.
	Timeout time.Duration
}

// Ref names what to check out: exactly one of Branch, Tag or Commit, or Commit
// together with Branch (the commit is then fetched from that branch only, which is
// cheaper than from all branches).
type Ref struct {
	// Branch is a branch name such as "main" (not "refs/heads/main").
	Branch string
	// Tag is a tag name such as "v1.2.0"; annotated tags resolve to their commit.
	Tag string
	// Commit is a full 40-character SHA-1 commit hash.
	Commit string
}

// String names the ref in messages: "main", "tags/v1.2.0", "sha1:<hash>" or
// "main@sha1:<hash>".
func (r Ref) String() string {
	switch {
	case r.Commit != "" && r.Branch != "":
		return r.Branch + "@" + git.Hash(r.Commit).Digest()
	case r.Commit != "":
		return git.Hash(r.Commit).Digest()
	case r.Tag != "":
		return "tags/" + r.Tag
	default:
		return r.Branch
	}
}

// refName is the full reference the remote check looks for.
func (r Ref) refName() plumbing.ReferenceName {
	switch {
	case r.Tag != "":
		return plumbing.NewTagReferenceName(r.Tag)
	case r.Branch != "":
		return plumbing.NewBranchReferenceName(r.Branch)
	default:
		return ""
	}
}

// revision formats a commit of this ref the way Flux does: "<branch>@sha1:<hash>",
// "<tag>@sha1:<hash>" or, for a bare commit, "sha1:<hash>".
func (r Ref) revision(hash string) string {
	d := git.Hash(hash).Digest()
	switch {
	case r.Tag != "":
		return r.Tag + "@" + d
	case r.Branch != "":
		return r.Branch + "@" + d
	default:
		return d
	}
}

var commitHash = regexp.MustCompile(`^[0-9a-f]{40}$`)

func (r Ref) validate() error {
	switch {
	case r.Branch == "" && r.Tag == "" && r.Commit == "":
		return errors.New("no ref: set a branch, a tag or a commit")
	case r.Tag != "" && (r.Branch != "" || r.Commit != ""):
		return errors.New("a tag cannot be combined with a branch or a commit")
	}
	if r.Commit != "" && !commitHash.MatchString(r.Commit) {
		return fmt.Errorf("commit %q is not a full 40-character lowercase SHA-1 hash", r.Commit)
	}
	if n := r.refName(); n != "" {
		if strings.HasPrefix(r.Branch, "refs/") || strings.HasPrefix(r.Tag, "refs/") {
			return fmt.Errorf("%q: give the short name, without refs/heads/ or refs/tags/", r.Branch+r.Tag)
		}
		if err := n.Validate(); err != nil {
			return fmt.Errorf("%q is not a valid Git reference name", r.Branch+r.Tag)
		}
	}
	return nil
}

// Artifact is a fetched revision, checked out in the cache.
type Artifact struct {
	// Dir holds exactly the tree of the commit (no .git, no leftovers). It belongs
	// to the cache: treat it as read-only. It stays until a later Fetch of the same
	// URL has returned two other revisions.
	Dir string
	// Revision is "<branch or tag>@sha1:<hash>", or "sha1:<hash>" for a bare commit
	// ref: pass it back to Fetch as lastRevision.
	Revision string
	// Commit is the full commit hash.
	Commit string
	// CommitTime is the committer's timestamp.
	CommitTime time.Time
	// Author is "Name <email>" of the commit's author.
	Author string
	// Message is the commit's subject line.
	Message string
	// Verified reports that the commit's signature was verified (Options.Verify).
	Verified bool
	// Signer identifies the verifying key: the OpenPGP key ID, or the SSH key's
	// SHA256 fingerprint.
	Signer string
}

// Fetch returns the revision of opts.Ref at opts.URL, checked out in the cache.
//
// When the remote revision equals lastRevision (an Artifact.Revision from an earlier
// Fetch, usually the last one applied), Fetch returns ErrUnchanged after a single
// ls-remote and touches nothing else; for a commit ref it does not even contact the
// remote. Otherwise it takes the cache entry's lock, reuses the commit's checkout
// when the cache holds it, or clones (shallow, except for commit refs), and, with
// opts.Verify, verifies the commit's signature: a commit that does not verify is
// never returned, the error matches ErrUnverified.
//
// Errors name the URL and the ref, never credentials.
func Fetch(ctx context.Context, opts Options, lastRevision string) (*Artifact, error) {
	f, err := newFetcher(opts)
	if err != nil {
		return nil, err
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	a, err := f.fetch(ctx, lastRevision)
	switch {
	case errors.Is(err, ErrUnchanged):
		return nil, ErrUnchanged
	case err != nil:
		return nil, f.wrap(err)
	}
	return a, nil
}

// fetcher is one Fetch call with validated options.
type fetcher struct {
	opts Options
	url  *url.URL
	auth *git.AuthOptions
}

func newFetcher(opts Options) (*fetcher, error) {
	u, err := parseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("git source: %w", err)
	}
	f := &fetcher{opts: opts, url: u}
	if err := opts.Ref.validate(); err != nil {
		return nil, f.wrap(err)
	}
	if opts.CacheDir == "" {
		return nil, f.wrap(errors.New("no cache directory"))
	}
	if f.auth, err = authOptions(u, opts.Auth); err != nil {
		return nil, f.wrap(err)
	}
	if err := opts.Verify.validate(); err != nil {
		return nil, f.wrap(err)
	}
	return f, nil
}

// wrap prefixes err with the source's URL (which holds no credentials) and ref.
func (f *fetcher) wrap(err error) error {
	return fmt.Errorf("git source %q ref %q: %w", f.opts.URL, f.opts.Ref.String(), err)
}

// parseURL accepts http, https and ssh URLs without a password. Parse errors do not
// quote the URL: it may hold a credential.
func parseURL(raw string) (*url.URL, error) {
	const want = "want https://host/path, http://host/path or ssh://[user@]host[:port]/path"
	if raw == "" {
		return nil, errors.New("no URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		if !strings.Contains(raw, "@") {
			var ue *url.Error
			if errors.As(err, &ue) {
				return nil, fmt.Errorf("URL is not valid: %w", ue.Err)
			}
		}
		return nil, fmt.Errorf("URL is not valid (%s)", want)
	}
	switch git.TransportType(u.Scheme) {
	case git.HTTP, git.HTTPS, git.SSH:
	default:
		return nil, fmt.Errorf("URL %q: scheme %q is not supported (%s)", u.Redacted(), u.Scheme, want)
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("URL %q has no host (%s)", u.Redacted(), want)
	}
	if _, ok := u.User.Password(); ok {
		return nil, fmt.Errorf("URL %q holds a password: put credentials in the source's auth", u.Redacted())
	}
	if u.User != nil && u.Scheme != string(git.SSH) {
		return nil, fmt.Errorf("URL %q holds a user name: put credentials in the source's auth", u.Redacted())
	}
	return u, nil
}

func (f *fetcher) fetch(ctx context.Context, lastRevision string) (*Artifact, error) {
	last := git.TransformRevision(lastRevision)
	ref := f.opts.Ref
	var hash string
	if ref.Commit != "" {
		// The revision is known without asking the remote.
		if last != "" && ref.revision(ref.Commit) == last {
			return nil, ErrUnchanged
		}
		hash = ref.Commit
		// Still list the remote: it proves that these credentials may read the
		// repository before the cache hands out a checkout of it.
		if _, err := f.lsRemote(ctx); err != nil {
			return nil, err
		}
	} else {
		h, err := f.lsRemote(ctx)
		if err != nil {
			return nil, err
		}
		if last != "" && ref.revision(h) == last {
			return nil, ErrUnchanged
		}
		hash = h
	}
	return f.checkout(ctx, hash)
}
