// Package pgtest starts a real PostgreSQL server (Debian's package) on loopback for
// tests that run the charts' SQL and shell scripts against it. Tests skip, saying what
// to install, when the server binaries are missing; `make test` installs them
// (hack/ensure-postgresql.sh).
package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/platzwart/platzwart"
	"github.com/platzwart/platzwart/reconciler/load"
	"github.com/platzwart/platzwart/reconciler/plan"
	"github.com/platzwart/platzwart/reconciler/postrender"
	"github.com/platzwart/platzwart/reconciler/render"
)

// Server is a PostgreSQL server started by a test on 127.0.0.1, with password
// (scram-sha-256) authentication over TCP and trust on its Unix socket.
type Server struct {
	// Bin is the directory of the server binaries (initdb, pg_ctl, postgres, pg_dump).
	Bin string
	// Port is the TCP port on 127.0.0.1.
	Port int
	// Dir holds the data directory, the log and the socket.
	Dir string
	// Superuser is the bootstrap superuser's name.
	Superuser string

	cred *syscall.Credential
}

// BinDir finds the directory of Debian's PostgreSQL server binaries, "" when missing.
func BinDir() string {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(real)
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "pg_ctl")); err == nil {
			return dirs[i]
		}
	}
	return ""
}

// Start initialises a cluster in a temporary directory with superuser and password
// and starts it. PostgreSQL refuses to run as root: as root, the server (and every
// command of [Server.Command]) runs as the user postgres (Debian's package creates it)
// or nobody. The server is stopped when the test ends.
func Start(t testing.TB, superuser, password string) *Server {
	t.Helper()
	bin := BinDir()
	if bin == "" {
		t.Skip("PostgreSQL server binaries not found (initdb, pg_ctl): install Debian's postgresql package (apt-get install -y postgresql) to run this test")
	}
	if _, err := exec.LookPath("psql"); err != nil {
		t.Skip("psql not found: install Debian's postgresql package")
	}
	s := &Server{Bin: bin, Superuser: superuser}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			u, err = user.Lookup("nobody")
		}
		if err != nil {
			t.Skipf("running as root and no user postgres or nobody to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	s.Dir = s.TempDir(t)
	pwfile := filepath.Join(s.Dir, "pw")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.chown(t, pwfile)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s.Run(t, "initdb", "-D", s.DataDir(), "-U", superuser, "--pwfile", pwfile, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C")
	s.StartServer(t)
	t.Cleanup(func() {
		cmd := exec.Command(filepath.Join(bin, "pg_ctl"), "-D", s.DataDir(), "-m", "immediate", "-w", "stop")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
		_ = cmd.Run()
	})
	return s
}

// TempDir returns a new directory the server's user owns, removed when the test
// ends (t.TempDir's parents are closed to other users).
func (s *Server) TempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "platzwart-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	s.chown(t, dir)
	return dir
}

func (s *Server) chown(t testing.TB, path string) {
	t.Helper()
	if s.cred == nil {
		return
	}
	if err := os.Chown(path, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
		t.Fatal(err)
	}
}

// DataDir is the server's data directory (PGDATA).
func (s *Server) DataDir() string { return filepath.Join(s.Dir, "data") }

// StartServer starts the server on 127.0.0.1:Port.
func (s *Server) StartServer(t testing.TB) {
	t.Helper()
	s.Run(t, "pg_ctl", "-D", s.DataDir(), "-w", "-t", "60", "-l", filepath.Join(s.Dir, "log"),
		"-o", fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s", s.Port, s.Dir), "start")
}

// StopServer stops the server cleanly, as Kubernetes stops the pod before a new one
// starts.
func (s *Server) StopServer(t testing.TB) {
	t.Helper()
	s.Run(t, "pg_ctl", "-D", s.DataDir(), "-m", "fast", "-w", "-t", "60", "stop")
}

// Command returns a command running as the server's user in Dir; name is looked up
// in Bin first, then on PATH.
func (s *Server) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	path := name
	if _, err := os.Stat(filepath.Join(s.Bin, name)); err == nil {
		path = filepath.Join(s.Bin, name)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = s.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

// Run runs a server binary as the server's user and fails the test, with the server
// log, when it fails.
func (s *Server) Run(t testing.TB, name string, args ...string) {
	t.Helper()
	cmd := s.Command(context.Background(), name, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.Dir, "log"))
		t.Fatalf("%s: %v\n%s\n%s", name, err, out, log)
	}
}

// Env is the libpq environment of a client connecting over TCP as usr.
func (s *Server) Env(usr, password, database string) []string {
	return []string{"PGHOST=127.0.0.1", "PGPORT=" + strconv.Itoa(s.Port), "PGUSER=" + usr,
		"PGPASSWORD=" + password, "PGDATABASE=" + database, "PGCONNECT_TIMEOUT=5"}
}

// Login connects as usr with password over TCP and returns psql's error output.
func (s *Server) Login(ctx context.Context, usr, password, database string) error {
	cmd := exec.CommandContext(ctx, "psql", "-X", "-Atq", "-c", "SELECT current_user")
	cmd.Env = append(os.Environ(), s.Env(usr, password, database)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
	}
	if got := strings.TrimSpace(string(out)); got != usr {
		return fmt.Errorf("logged in as %q, want %q", got, usr)
	}
	return nil
}

// Query runs SQL as the superuser over the Unix socket and returns psql's unaligned,
// tuples-only output.
func (s *Server) Query(t testing.TB, database, sql string) string {
	t.Helper()
	cmd := exec.CommandContext(context.Background(), "psql", "-X", "-Atq", "-v", "ON_ERROR_STOP=1", "-c", sql)
	cmd.Env = append(os.Environ(), "PGHOST="+s.Dir, "PGPORT="+strconv.Itoa(s.Port), "PGUSER="+s.Superuser, "PGDATABASE="+database)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q in %s: %v\n%s", sql, database, err, out)
	}
	return strings.TrimSpace(string(out))
}

// ExampleRelease renders the postgresql release of the example workplace in dir (the
// repository's examples/workplace) and returns it with its decoded objects: the
// scripts the tests run are taken from there, as the chart renders them.
func ExampleRelease(t testing.TB, dir string) (*plan.Release, []*postrender.Object) {
	t.Helper()
	repo, err := load.Dir(dir, platzwart.Builtin(), "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(repo.Workplaces[0], repo.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range p.Releases {
		if rel.Component != "postgresql" {
			continue
		}
		m, err := render.Release(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := m.Objects()
		if err != nil {
			t.Fatal(err)
		}
		return rel, objs
	}
	t.Fatalf("the example in %s has no postgresql release", dir)
	return nil, nil
}

// ConfigMapData returns the data of the ConfigMap name among objs, failing the test
// when there is none.
func ConfigMapData(t testing.TB, objs []*postrender.Object, name string) map[string]string {
	t.Helper()
	for _, o := range objs {
		if o.Kind != "ConfigMap" || o.Name != name {
			continue
		}
		data, _ := o.Fields["data"].(map[string]any)
		out := make(map[string]string, len(data))
		for k, v := range data {
			out[k], _ = v.(string)
		}
		return out
	}
	t.Fatalf("no ConfigMap %s in the rendered release", name)
	return nil
}
