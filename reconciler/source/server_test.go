package source_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Test fixtures: a bare repository served by real Git (git http-backend over HTTPS
// with basic or bearer auth, git upload-pack behind an SSH server), and a work
// repository where tests commit with go-git (so commits can be signed in-process)
// and push with the git CLI.

const (
	testUser     = "platzwart"
	testPassword = "s3cret-Passw0rd"
	testToken    = "t0ken-abcdef"
)

// gitEnv isolates git from the machine's and the user's configuration.
func gitEnv(t *testing.T) []string {
	home := t.TempDir()
	return []string{"HOME=" + home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + filepath.Join(home, "gitconfig"), "PATH=" + os.Getenv("PATH")}
}

func runGit(t *testing.T, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// repo is a served bare repository and the work repository feeding it.
type repo struct {
	t     *testing.T
	env   []string
	root  string // holds repo.git, the served repository
	bare  string
	work  string
	git   *git.Repository
	clock time.Time
}

func newRepo(t *testing.T) *repo {
	t.Helper()
	r := &repo{t: t, env: gitEnv(t), root: t.TempDir(), work: t.TempDir(), clock: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	r.bare = filepath.Join(r.root, "repo.git")
	runGit(t, r.env, "init", "--quiet", "--bare", "--initial-branch=main", r.bare)
	var err error
	r.git, err = git.PlainInitWithOptions(r.work, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// commit writes files (an empty content deletes the file), commits them on the
// current branch, signed when signer is not nil, pushes, and returns the hash.
func (r *repo) commit(msg string, files map[string]string, signer git.Signer) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.work, name)
		if content == "" {
			if err := os.Remove(p); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	wt, err := r.git.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		r.t.Fatal(err)
	}
	r.clock = r.clock.Add(time.Minute)
	h, err := wt.Commit(msg, &git.CommitOptions{
		Author: &object.Signature{Name: "Ada Admin", Email: "ada@example.org", When: r.clock},
		Signer: signer,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.push()
	return h.String()
}

// tag tags HEAD, annotated when msg is not empty, and pushes.
func (r *repo) tag(name, msg string) {
	r.t.Helper()
	head, err := r.git.Head()
	if err != nil {
		r.t.Fatal(err)
	}
	var opts *git.CreateTagOptions
	if msg != "" {
		opts = &git.CreateTagOptions{Message: msg, Tagger: &object.Signature{Name: "Ada Admin", Email: "ada@example.org", When: r.clock}}
	}
	if _, err := r.git.CreateTag(name, head.Hash(), opts); err != nil {
		r.t.Fatal(err)
	}
	r.push()
}

// branch creates and checks out a branch at HEAD.
func (r *repo) branch(name string) {
	r.t.Helper()
	wt, err := r.git.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(name), Create: true}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *repo) push() {
	r.t.Helper()
	runGit(r.t, r.env, "-C", r.work, "push", "--quiet", "--force", r.bare, "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
}

// httpsServer serves the repository root with git http-backend over TLS and counts
// what clients ask for.
type httpsServer struct {
	*httptest.Server
	URL      string // of repo.git
	CA       []byte // PEM of the server's certificate
	lsRemote atomic.Int64
	fetches  atomic.Int64
}

func serveHTTPS(t *testing.T, r *repo) *httpsServer {
	t.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	backend := &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Env:  append([]string{"GIT_PROJECT_ROOT=" + r.root, "GIT_HTTP_EXPORT_ALL=1"}, r.env...),
	}
	s := &httpsServer{}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		user, pass, basic := req.BasicAuth()
		bearer := req.Header.Get("Authorization") == "Bearer "+testToken
		if !bearer && (!basic || user != testUser || pass != testPassword) {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		switch {
		case strings.HasSuffix(req.URL.Path, "/info/refs"):
			s.lsRemote.Add(1)
		case strings.HasSuffix(req.URL.Path, "/git-upload-pack"):
			s.fetches.Add(1)
		default:
			http.Error(w, "not served here", http.StatusForbidden)
			return
		}
		backend.ServeHTTP(w, req)
	}))
	t.Cleanup(s.Close)
	s.URL = s.Server.URL + "/repo.git"
	s.CA = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	return s
}

// sshServer serves git-upload-pack of the repositories under root to one client key.
type sshServer struct {
	URL        string
	KnownHosts []byte
	ClientKey  []byte // OpenSSH PEM
	sessions   atomic.Int64

	root   string
	ln     net.Listener
	config *ssh.ServerConfig
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

func serveSSH(t *testing.T, r *repo) *sshServer {
	t.Helper()
	_, hostKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	clientPub, clientKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	authorized, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(clientKey, "")
	if err != nil {
		t.Fatal(err)
	}
	s := &sshServer{root: r.root, ClientKey: pem.EncodeToMemory(block), conns: map[net.Conn]struct{}{}}
	s.config = &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(key.Marshal(), authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("key not authorized")
		},
	}
	s.config.AddHostKey(hostSigner)
	if s.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	addr := s.ln.Addr().String()
	s.URL = "ssh://git@" + addr + "/repo.git"
	s.KnownHosts = []byte(knownhosts.Line([]string{knownhosts.Normalize(addr)}, hostSigner.PublicKey()) + "\n")
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

// Close stops listening, ends every connection and upload-pack, and waits for them.
func (s *sshServer) Close() {
	_ = s.ln.Close()
	s.cancel()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *sshServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

func (s *sshServer) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		_ = c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	conn, chans, reqs, err := ssh.NewServerConn(c, s.config)
	if err != nil {
		return
	}
	defer func() { _ = conn.Close() }()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go s.serveSession(ch, chReqs)
	}
}

// serveSession runs "git-upload-pack '/<repo>'" and nothing else.
func (s *sshServer) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer s.wg.Done()
	defer func() { _ = ch.Close() }()
	for req := range reqs {
		if req.Type != "exec" {
			_ = req.Reply(false, nil)
			continue
		}
		var payload struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
			_ = req.Reply(false, nil)
			return
		}
		path, ok := strings.CutPrefix(payload.Command, "git-upload-pack ")
		if !ok {
			_ = req.Reply(false, nil)
			return
		}
		path = strings.Trim(path, "'")
		_ = req.Reply(true, nil)
		s.sessions.Add(1)
		status := s.uploadPack(ch, filepath.Join(s.root, filepath.Clean("/"+path)))
		_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
		return
	}
}

func (s *sshServer) uploadPack(ch ssh.Channel, dir string) uint32 {
	cmd := exec.CommandContext(s.ctx, "git", "upload-pack", dir)
	cmd.Env = []string{"GIT_CONFIG_NOSYSTEM=1", "HOME=" + s.root, "PATH=" + os.Getenv("PATH")}
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 1
	}
	if err := cmd.Start(); err != nil {
		return 1
	}
	// Not cmd.Stdin = ch: Wait would then wait for the client to close its side,
	// which it does only after the exit status. This copy ends when the channel
	// closes.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_, _ = io.Copy(stdin, ch)
		_ = stdin.Close()
	}()
	if err := cmd.Wait(); err != nil {
		return 1
	}
	return 0
}

// hangingServer is a plain HTTP server that answers nothing until release is closed.
func hangingServer(t *testing.T, release <-chan struct{}) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}))
	t.Cleanup(s.Close)
	return s
}
