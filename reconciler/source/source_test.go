package source_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/fluxcd/pkg/git/signature"
	"github.com/go-git/go-git/v5"
	"golang.org/x/crypto/ssh"

	"github.com/platzwart/platzwart/reconciler/source"
)

// tree returns the files under dir and their contents.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func assertTree(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	got := tree(t, dir)
	if len(got) != len(want) {
		t.Errorf("%s holds %v, want %v", dir, keys(got), keys(want))
	}
	for name, content := range want {
		if got[name] != content {
			t.Errorf("%s/%s = %q, want %q", dir, name, got[name], content)
		}
	}
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func httpsOptions(s *httpsServer, ref source.Ref, cache string) source.Options {
	return source.Options{
		URL:      s.URL,
		Ref:      ref,
		Auth:     source.Auth{Username: testUser, Password: testPassword, CACert: s.CA},
		CacheDir: cache,
		Timeout:  20 * time.Second,
	}
}

func fetch(t *testing.T, opts source.Options, last string) *source.Artifact {
	t.Helper()
	a, err := source.Fetch(context.Background(), opts, last)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return a
}

var v1Files = map[string]string{
	"workplace.yaml":        "kind: Workplace\n",
	"components/x/readme":   "x\n",
	"profiles/extra.yaml":   "kind: Profile\n",
	"values/nextcloud.yaml": "replicas: 1\n",
}

func TestFetchRefsOverHTTPS(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	first := r.commit("first", v1Files, nil)
	r.tag("v1.0.0", "release 1.0.0") // annotated
	r.tag("light", "")               // lightweight
	second := r.commit("second", map[string]string{"workplace.yaml": "kind: Workplace # 2\n"}, nil)
	r.branch("feature")
	third := r.commit("third on feature", map[string]string{"feature.yaml": "f\n"}, nil)
	srv := serveHTTPS(t, r)

	v2 := map[string]string{}
	for k, v := range v1Files {
		v2[k] = v
	}
	v2["workplace.yaml"] = "kind: Workplace # 2\n"
	v3 := map[string]string{"feature.yaml": "f\n"}
	for k, v := range v2 {
		v3[k] = v
	}

	for _, tc := range []struct {
		name     string
		ref      source.Ref
		commit   string
		revision string
		files    map[string]string
	}{
		{"branch", source.Ref{Branch: "main"}, second, "main@sha1:" + second, v2},
		{"other branch", source.Ref{Branch: "feature"}, third, "feature@sha1:" + third, v3},
		{"annotated tag", source.Ref{Tag: "v1.0.0"}, first, "v1.0.0@sha1:" + first, v1Files},
		{"lightweight tag", source.Ref{Tag: "light"}, first, "light@sha1:" + first, v1Files},
		{"commit", source.Ref{Commit: first}, first, "sha1:" + first, v1Files},
		{"commit on branch", source.Ref{Branch: "main", Commit: first}, first, "main@sha1:" + first, v1Files},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := fetch(t, httpsOptions(srv, tc.ref, t.TempDir()), "")
			if a.Commit != tc.commit || a.Revision != tc.revision {
				t.Errorf("commit %s revision %s, want %s %s", a.Commit, a.Revision, tc.commit, tc.revision)
			}
			if a.Author != "Ada Admin <ada@example.org>" || a.CommitTime.IsZero() || a.Message == "" || a.Verified {
				t.Errorf("artifact metadata: %+v", a)
			}
			assertTree(t, a.Dir, tc.files) // exactly the tree: no .git either
			// Branches and tags are fetched shallow (depth 1).
			_, err := os.Stat(filepath.Join(filepath.Dir(a.Dir), "git", "shallow"))
			if shallow := err == nil; shallow != (tc.ref.Commit == "") {
				t.Errorf("shallow clone: %v, want %v", shallow, tc.ref.Commit == "")
			}
		})
	}

	t.Run("bearer token", func(t *testing.T) {
		opts := httpsOptions(srv, source.Ref{Branch: "main"}, t.TempDir())
		opts.Auth = source.Auth{BearerToken: testToken, CACert: srv.CA}
		if a := fetch(t, opts, ""); a.Commit != second {
			t.Errorf("commit %s, want %s", a.Commit, second)
		}
	})
	t.Run("missing branch", func(t *testing.T) {
		_, err := source.Fetch(context.Background(), httpsOptions(srv, source.Ref{Branch: "nope"}, t.TempDir()), "")
		if err == nil || !strings.Contains(err.Error(), "refs/heads/nope not found") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("unknown commit", func(t *testing.T) {
		_, err := source.Fetch(context.Background(), httpsOptions(srv, source.Ref{Commit: strings.Repeat("ab", 20)}, t.TempDir()), "")
		if err == nil {
			t.Error("fetched a commit that does not exist")
		}
	})
}

func TestFetchWrongCredentials(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	r.commit("first", v1Files, nil)
	srv := serveHTTPS(t, r)
	const wrong = "wrong-Passw0rd-xyz"
	opts := httpsOptions(srv, source.Ref{Branch: "main"}, t.TempDir())
	opts.Auth.Password = wrong
	_, err := source.Fetch(context.Background(), opts, "")
	if err == nil {
		t.Fatal("fetched with a wrong password")
	}
	msg := err.Error()
	if strings.Contains(msg, wrong) || strings.Contains(msg, testPassword) {
		t.Errorf("error shows the password: %s", msg)
	}
	if !strings.Contains(msg, `git source "`+srv.URL+`" ref "main"`) || !strings.Contains(msg, "authentication") {
		t.Errorf("error does not name the source and the cause: %s", msg)
	}
	if srv.fetches.Load() != 0 {
		t.Errorf("%d fetches after a failed remote check", srv.fetches.Load())
	}
}

func TestFetchOverSSH(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	head := r.commit("first", v1Files, nil)
	r.tag("v1", "release")
	srv := serveSSH(t, r)
	auth := source.Auth{SSHPrivateKey: srv.ClientKey, SSHKnownHosts: srv.KnownHosts}

	for _, ref := range []source.Ref{{Branch: "main"}, {Tag: "v1"}, {Commit: head}} {
		t.Run(ref.String(), func(t *testing.T) {
			a := fetch(t, source.Options{URL: srv.URL, Ref: ref, Auth: auth, CacheDir: t.TempDir(), Timeout: 20 * time.Second}, "")
			if a.Commit != head {
				t.Errorf("commit %s, want %s", a.Commit, head)
			}
			assertTree(t, a.Dir, v1Files)
		})
	}

	t.Run("unknown host key", func(t *testing.T) {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		other, _ := ssh.NewPublicKey(pub)
		host := strings.Fields(string(srv.KnownHosts))[0]
		bad := auth
		bad.SSHKnownHosts = []byte(host + " " + string(ssh.MarshalAuthorizedKey(other)))
		_, err = source.Fetch(context.Background(), source.Options{URL: srv.URL, Ref: source.Ref{Branch: "main"}, Auth: bad, CacheDir: t.TempDir()}, "")
		if err == nil || !strings.Contains(err.Error(), srv.URL) {
			t.Errorf("err = %v, want a host key error naming the URL", err)
		}
	})
	t.Run("key not authorized", func(t *testing.T) {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		block, err := ssh.MarshalPrivateKey(key, "")
		if err != nil {
			t.Fatal(err)
		}
		bad := auth
		bad.SSHPrivateKey = pem.EncodeToMemory(block)
		_, err = source.Fetch(context.Background(), source.Options{URL: srv.URL, Ref: source.Ref{Branch: "main"}, Auth: bad, CacheDir: t.TempDir()}, "")
		if err == nil || strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("err = %v", err)
		}
	})
}

// TestUnchangedDoesNoWork: the remote still at lastRevision costs one ls-remote: no
// fetch, and the cache directory is not even created.
func TestUnchangedDoesNoWork(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	head := r.commit("first", v1Files, nil)
	srv := serveHTTPS(t, r)
	a := fetch(t, httpsOptions(srv, source.Ref{Branch: "main"}, t.TempDir()), "")

	cache := filepath.Join(t.TempDir(), "never-created")
	srv.lsRemote.Store(0)
	srv.fetches.Store(0)
	_, err := source.Fetch(context.Background(), httpsOptions(srv, source.Ref{Branch: "main"}, cache), a.Revision)
	if !errors.Is(err, source.ErrUnchanged) {
		t.Fatalf("err = %v, want ErrUnchanged", err)
	}
	if ls, f := srv.lsRemote.Load(), srv.fetches.Load(); ls != 1 || f != 0 {
		t.Errorf("%d ls-remote and %d fetch requests, want 1 and 0", ls, f)
	}
	if _, err := os.Stat(cache); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cache directory touched: %v", err)
	}
	// Flux's older revision format is understood too.
	if _, err := source.Fetch(context.Background(), httpsOptions(srv, source.Ref{Branch: "main"}, cache), "main/"+head); !errors.Is(err, source.ErrUnchanged) {
		t.Errorf("legacy revision: err = %v", err)
	}

	// A commit ref knows its revision: not even an ls-remote.
	srv.lsRemote.Store(0)
	_, err = source.Fetch(context.Background(), httpsOptions(srv, source.Ref{Commit: head}, cache), "sha1:"+head)
	if !errors.Is(err, source.ErrUnchanged) || srv.lsRemote.Load() != 0 {
		t.Errorf("commit ref: err = %v after %d ls-remote", err, srv.lsRemote.Load())
	}
}

// TestWarmCacheAfterRestart: a new Fetch without lastRevision (a restarted
// controller) finds the commit in the cache and does not clone.
func TestWarmCacheAfterRestart(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	r.commit("first", v1Files, nil)
	srv := serveHTTPS(t, r)
	cache := t.TempDir()
	a := fetch(t, httpsOptions(srv, source.Ref{Branch: "main"}, cache), "")
	if srv.fetches.Load() == 0 {
		t.Fatal("first Fetch did not clone")
	}
	// A clone a crashed process left behind is cleaned up.
	leftover := filepath.Join(filepath.Dir(filepath.Dir(a.Dir)), "tmp-crashed")
	if err := os.MkdirAll(filepath.Join(leftover, "tree"), 0o700); err != nil {
		t.Fatal(err)
	}
	srv.lsRemote.Store(0)
	srv.fetches.Store(0)
	b := fetch(t, httpsOptions(srv, source.Ref{Branch: "main"}, cache), "")
	if _, err := os.Stat(leftover); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("left-over clone kept: %v", err)
	}
	if ls, f := srv.lsRemote.Load(), srv.fetches.Load(); ls != 1 || f != 0 {
		t.Errorf("%d ls-remote and %d fetch requests, want 1 and 0", ls, f)
	}
	if b.Dir != a.Dir || b.Revision != a.Revision {
		t.Errorf("warm cache gave %+v, want %+v", b, a)
	}
	assertTree(t, b.Dir, v1Files)

	// A tag on the same commit reuses the checkout as well.
	r.tag("v1", "")
	srv.fetches.Store(0)
	c := fetch(t, httpsOptions(srv, source.Ref{Tag: "v1"}, cache), "")
	if c.Dir != a.Dir || c.Revision != "v1@sha1:"+a.Commit || srv.fetches.Load() != 0 {
		t.Errorf("tag on a cached commit: %+v after %d fetches", c, srv.fetches.Load())
	}
}

// TestNewCommit: a new commit gives a new revision whose tree has the deleted file
// gone; old checkouts are pruned (the previous one is kept).
func TestNewCommit(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	r.commit("first", v1Files, nil)
	srv := serveHTTPS(t, r)
	cache := t.TempDir()
	opts := httpsOptions(srv, source.Ref{Branch: "main"}, cache)
	a := fetch(t, opts, "")

	second := r.commit("second", map[string]string{"profiles/extra.yaml": "", "new.yaml": "new\n"}, nil)
	b := fetch(t, opts, a.Revision)
	if b.Commit != second || b.Revision == a.Revision {
		t.Fatalf("revision %s after a new commit %s", b.Revision, second)
	}
	want := map[string]string{"new.yaml": "new\n"}
	for k, v := range v1Files {
		if k != "profiles/extra.yaml" {
			want[k] = v
		}
	}
	assertTree(t, b.Dir, want)
	if _, err := os.Stat(a.Dir); err != nil {
		t.Errorf("previous checkout removed too early: %v", err)
	}

	r.commit("third", map[string]string{"new.yaml": "newer\n"}, nil)
	c := fetch(t, opts, b.Revision)
	want["new.yaml"] = "newer\n"
	assertTree(t, c.Dir, want)
	if _, err := os.Stat(a.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("checkout two revisions old is still there: %v", err)
	}
	if _, err := os.Stat(b.Dir); err != nil {
		t.Errorf("previous checkout removed: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	r.commit("first", v1Files, nil)
	srv := serveHTTPS(t, r)
	cache := t.TempDir()
	opts := httpsOptions(srv, source.Ref{Branch: "main"}, cache)
	a := fetch(t, opts, "")
	srv.Close()

	for _, last := range []string{"", a.Revision} { // a warm cache does not hide it
		_, err := source.Fetch(context.Background(), opts, last)
		if err == nil || errors.Is(err, source.ErrUnchanged) {
			t.Fatalf("last %q: err = %v, want an error", last, err)
		}
		if msg := err.Error(); !strings.Contains(msg, `git source "`+srv.URL+`" ref "main"`) {
			t.Errorf("error does not name URL and ref: %s", msg)
		}
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := hangingServer(t, release)
	start := time.Now()
	_, err := source.Fetch(context.Background(), source.Options{
		URL: srv.URL + "/repo.git", Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir(), Timeout: 300 * time.Millisecond,
	}, "")
	close(release)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("err = %v after %s", err, time.Since(start))
	}
}

func TestConcurrentFetchesShareOneClone(t *testing.T) {
	t.Parallel()
	r := newRepo(t)
	r.commit("first", v1Files, nil)
	srv := serveHTTPS(t, r)
	// How many upload-pack requests one clone takes.
	fetch(t, httpsOptions(srv, source.Ref{Branch: "main"}, t.TempDir()), "")
	perClone := srv.fetches.Load()
	srv.fetches.Store(0)

	cache := t.TempDir()
	var wg sync.WaitGroup
	dirs := make([]string, 4)
	errs := make([]error, len(dirs))
	for i := range dirs {
		wg.Go(func() {
			a, err := source.Fetch(context.Background(), httpsOptions(srv, source.Ref{Branch: "main"}, cache), "")
			errs[i] = err
			if err == nil {
				dirs[i] = a.Dir
			}
		})
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Errorf("fetch %d: dir %q, err %v", i, dirs[i], errs[i])
		}
	}
	if got := srv.fetches.Load(); got != perClone {
		t.Errorf("%d upload-pack requests, want %d (one clone)", got, perClone)
	}
	assertTree(t, dirs[0], v1Files)
}

// openPGPKey returns a new signing key and its armored public key ring.
func openPGPKey(t *testing.T, name string) (git.Signer, []byte) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@example.org", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	signer, err := signature.NewOpenPGPSigner(e)
	if err != nil {
		t.Fatal(err)
	}
	return signer, buf.Bytes()
}

func sshSigningKey(t *testing.T) (git.Signer, []byte) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signature.NewSSHSigner(pem.EncodeToMemory(block), nil)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return signer, ssh.MarshalAuthorizedKey(sshPub)
}

func TestVerifyOpenPGP(t *testing.T) {
	t.Parallel()
	trusted, trustedRing := openPGPKey(t, "trusted")
	stranger, _ := openPGPKey(t, "stranger")
	sshSigner, _ := sshSigningKey(t)
	r := newRepo(t)
	srv := serveHTTPS(t, r)
	cache := t.TempDir()
	opts := httpsOptions(srv, source.Ref{Branch: "main"}, cache)
	opts.Verify = &source.Verification{Mode: source.VerifyOpenPGP, Keys: [][]byte{trustedRing}}

	signed := r.commit("signed", v1Files, trusted)
	a := fetch(t, opts, "")
	if !a.Verified || a.Signer == "" || a.Commit != signed {
		t.Fatalf("signed commit: %+v", a)
	}
	// A cache hit verifies again.
	if b := fetch(t, opts, ""); !b.Verified || b.Signer != a.Signer {
		t.Errorf("cache hit: %+v", b)
	}

	for _, tc := range []struct {
		name   string
		signer git.Signer
		reason string
	}{
		{"unsigned", nil, "not signed"},
		{"other key", stranger, "does not verify with any trusted key"},
		{"ssh signature", sshSigner, "ssh signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := r.commit(tc.name, map[string]string{"n.yaml": tc.name}, tc.signer)
			for range 2 { // refused on the fresh clone and on the cache hit
				a, err := source.Fetch(context.Background(), opts, signedRevision(signed))
				if a != nil || !errors.Is(err, source.ErrUnverified) {
					t.Fatalf("artifact %v, err %v, want ErrUnverified", a, err)
				}
				var ve *source.VerificationError
				if !errors.As(err, &ve) || ve.Commit != h || !strings.Contains(err.Error(), tc.reason) || !strings.Contains(err.Error(), h) {
					t.Errorf("err = %v, want commit %s and %q", err, h, tc.reason)
				}
			}
		})
	}
}

func signedRevision(h string) string { return "main@sha1:" + h }

func TestVerifySSH(t *testing.T) {
	t.Parallel()
	signer, authorized := sshSigningKey(t)
	pgp, _ := openPGPKey(t, "pgp")
	r := newRepo(t)
	srv := serveHTTPS(t, r)
	opts := httpsOptions(srv, source.Ref{Branch: "main"}, t.TempDir())
	opts.Verify = &source.Verification{Mode: source.VerifySSH, Keys: [][]byte{authorized}}

	r.commit("ssh signed", v1Files, signer)
	a := fetch(t, opts, "")
	if !a.Verified || !strings.HasPrefix(a.Signer, "SHA256:") {
		t.Errorf("ssh-signed commit: %+v", a)
	}
	r.commit("pgp signed", map[string]string{"x": "y"}, pgp)
	if _, err := source.Fetch(context.Background(), opts, ""); !errors.Is(err, source.ErrUnverified) {
		t.Errorf("OpenPGP-signed commit in ssh mode: err = %v", err)
	}
}

func TestOptionsAreValidated(t *testing.T) {
	t.Parallel()
	_, ring := openPGPKey(t, "k")
	good := source.Options{URL: "https://git.example.org/ws.git", Ref: source.Ref{Branch: "main"}, CacheDir: t.TempDir()}
	for _, tc := range []struct {
		name string
		edit func(*source.Options)
		want string
	}{
		{"no ref", func(o *source.Options) { o.Ref = source.Ref{} }, "no ref"},
		{"tag and branch", func(o *source.Options) { o.Ref.Tag = "v1" }, "cannot be combined"},
		{"short commit", func(o *source.Options) { o.Ref = source.Ref{Commit: "abc123"} }, "full 40-character"},
		{"full ref name", func(o *source.Options) { o.Ref.Branch = "refs/heads/main" }, "short name"},
		{"bad ref name", func(o *source.Options) { o.Ref.Branch = "a..b" }, "not a valid Git reference"},
		{"no cache", func(o *source.Options) { o.CacheDir = "" }, "no cache directory"},
		{"no URL", func(o *source.Options) { o.URL = "" }, "no URL"},
		{"scp-like URL", func(o *source.Options) { o.URL = "git@example.org:ws.git" }, "not valid"},
		{"file URL", func(o *source.Options) { o.URL = "file:///srv/ws.git" }, "not supported"},
		{"password in URL", func(o *source.Options) { o.URL = "https://u:" + testPassword + "@example.org/ws.git" }, "holds a password"},
		{"credentials over http", func(o *source.Options) {
			o.URL = "http://example.org/ws.git"
			o.Auth = source.Auth{Username: "u", Password: testPassword}
		}, "plain http"},
		{"basic and bearer", func(o *source.Options) {
			o.Auth = source.Auth{Username: "u", Password: testPassword, BearerToken: testToken}
		}, "cannot be combined"},
		{"ssh without key", func(o *source.Options) { o.URL = "ssh://git@example.org/ws.git" }, "needs an SSH private key"},
		{"ssh key for https", func(o *source.Options) { o.Auth = source.Auth{SSHPrivateKey: []byte("k"), SSHKnownHosts: []byte("h")} }, "SSH key"},
		{"verify mode", func(o *source.Options) { o.Verify = &source.Verification{Mode: "x509", Keys: [][]byte{ring}} }, "not supported"},
		{"verify without keys", func(o *source.Options) { o.Verify = &source.Verification{Mode: source.VerifyOpenPGP} }, "no trusted keys"},
		{"bad key ring", func(o *source.Options) {
			o.Verify = &source.Verification{Mode: source.VerifyOpenPGP, Keys: [][]byte{[]byte("junk")}}
		}, "not an armored OpenPGP"},
		{"bad ssh keys", func(o *source.Options) {
			o.Verify = &source.Verification{Mode: source.VerifySSH, Keys: [][]byte{ring}}
		}, "SSH keys 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := good
			tc.edit(&opts)
			_, err := source.Fetch(context.Background(), opts, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), testPassword) || strings.Contains(err.Error(), testToken) {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestAuthFromSecret(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		data map[string]string
		want source.Auth
		err  string
	}{
		{"basic", map[string]string{"username": "u", "password": "p", "ca.crt": "CA"}, source.Auth{Username: "u", Password: "p", CACert: []byte("CA")}, ""},
		{"caFile", map[string]string{"caFile": "CA"}, source.Auth{CACert: []byte("CA")}, ""},
		{"token", map[string]string{"bearerToken": "t"}, source.Auth{BearerToken: "t"}, ""},
		{"ssh", map[string]string{"identity": "K", "known_hosts": "H", "password": "pp"}, source.Auth{SSHPrivateKey: []byte("K"), SSHKnownHosts: []byte("H"), Password: "pp"}, ""},
		{"empty", nil, source.Auth{}, ""},
		{"token and basic", map[string]string{"bearerToken": "t", "username": "u"}, source.Auth{}, "cannot be combined"},
		{"identity without known_hosts", map[string]string{"identity": "K"}, source.Auth{}, "identity needs known_hosts"},
		{"password without username", map[string]string{"password": "p"}, source.Auth{}, "password needs username"},
		{"client certificate", map[string]string{"tls.crt": "C", "tls.key": "K"}, source.Auth{}, "not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := map[string][]byte{}
			for k, v := range tc.data {
				data[k] = []byte(v)
			}
			got, err := source.AuthFromSecret(data)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.GoString() != tc.want.GoString() || string(got.SSHPrivateKey) != string(tc.want.SSHPrivateKey) ||
				got.Password != tc.want.Password || got.BearerToken != tc.want.BearerToken || string(got.CACert) != string(tc.want.CACert) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
	a := source.Auth{Username: "u", Password: testPassword, BearerToken: testToken, SSHPrivateKey: []byte("PRIVATE")}
	for _, s := range []string{a.String(), a.GoString()} {
		if strings.Contains(s, testPassword) || strings.Contains(s, testToken) || strings.Contains(s, "PRIVATE") {
			t.Errorf("Auth prints a secret: %s", s)
		}
	}
}
