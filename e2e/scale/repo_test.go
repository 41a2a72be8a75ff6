package scale_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/gittestserver"
)

// scaleProfile is the repository's profile every workplace uses: the minikube
// profile reduced to identity and its infrastructure (keycloak, postgresql, valkey:
// three releases per workplace), so that a thousand workplaces fit the local control
// plane. The converge commit changes valkey's maxmemory, one value of one release of
// every workplace.
const scaleProfile = `apiVersion: platzwart.io/v1alpha1
kind: Profile
metadata:
  name: scale
spec:
  description: >-
    The minikube profile with identity and its infrastructure only: keycloak,
    postgresql and valkey.
  extends: minikube
  components:
    video: none
    office: none
    chat: none
    files: none
    portal: none
    mail: none
  values:
    valkey:
      config: {maxmemory: %q}
`

// workplaceDoc is one workplace in its own namespace with its own domain (hosts are
// claimed cluster-wide). None of the three releases has a NodePort.
const workplaceDoc = `apiVersion: platzwart.io/v1alpha1
kind: Workplace
metadata:
  name: demo
  namespace: %[1]s
spec:
  domain: %[1]s.192.168.49.2.sslip.io
  profile: scale
  dataPolicy: Retain
`

// repository is a workplace repository on a Git server on loopback, changed with the
// git CLI in a clone.
type repository struct {
	b          *testing.B
	url        string
	work       string
	namespaces []string
}

// newRepository serves a repository with the scale profile and n Workplace
// documents, one file each, in namespaces <prefix>-0000 and up.
func newRepository(b *testing.B, prefix string, n int) *repository {
	b.Helper()
	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.StopHTTP(); _ = os.RemoveAll(srv.Root()) })
	srv.AutoCreate()
	if err := srv.StartHTTP(); err != nil {
		b.Fatal(err)
	}
	fixture := b.TempDir()
	r := &repository{b: b, url: srv.HTTPAddress() + "/workplaces.git", work: b.TempDir()}
	write := func(name, content string) {
		path := filepath.Join(fixture, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	write("profiles/scale.yaml", fmt.Sprintf(scaleProfile, maxmemory(0)))
	for i := range n {
		ns := fmt.Sprintf("%s-%04d", prefix, i)
		r.namespaces = append(r.namespaces, ns)
		write(filepath.Join("workplaces", ns+".yaml"), fmt.Sprintf(workplaceDoc, ns))
	}
	if err := srv.InitRepo(fixture, "main", "workplaces.git"); err != nil {
		b.Fatal(err)
	}
	r.git("clone", "--branch", "main", r.url, ".")
	r.git("config", "user.email", "ops@example.org")
	r.git("config", "user.name", "ops")
	return r
}

// maxmemory is valkey's maxmemory in the profile after round commits.
func maxmemory(round int) string { return fmt.Sprintf("%dmb", 96+round) }

func (r *repository) git(args ...string) string {
	r.b.Helper()
	cmd := exec.CommandContext(r.b.Context(), "git", args...)
	cmd.Dir = r.work
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.b.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// head is the commit the branch points at.
func (r *repository) head() string { return r.git("rev-parse", "HEAD") }

// changeProfile commits and pushes the profile with valkey's maxmemory of round: one
// commit that changes one release of every workplace. It returns the commit.
func (r *repository) changeProfile(round int) string {
	r.b.Helper()
	path := filepath.Join(r.work, "profiles", "scale.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(scaleProfile, maxmemory(round))), 0o644); err != nil {
		r.b.Fatal(err)
	}
	r.git("commit", "-am", "valkey: maxmemory "+maxmemory(round))
	r.git("push", "origin", "main")
	return r.head()
}
