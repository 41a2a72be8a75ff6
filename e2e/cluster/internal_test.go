package cluster

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRequiredVersion(t *testing.T) {
	gomod := []byte(`module example.com/tools

go 1.26.0

require k8s.io/kubernetes v1.37.2

require (
	go.etcd.io/etcd/server/v3 v3.6.5 // indirect
	k8s.io/api v0.37.2 // indirect
)

replace k8s.io/api => k8s.io/api v0.37.2
`)
	for module, want := range map[string]string{
		"k8s.io/kubernetes":         "v1.37.2",
		"go.etcd.io/etcd/server/v3": "v3.6.5",
		"k8s.io/api":                "v0.37.2",
		"sigs.k8s.io/kwok":          "",
	} {
		if got := requiredVersion(gomod, module); got != want {
			t.Errorf("requiredVersion(%s) = %q, want %q", module, got, want)
		}
	}
	if got := kubeMinor("v1.37.2"); got != "37" {
		t.Errorf("kubeMinor(v1.37.2) = %q, want 37", got)
	}
}

func TestCacheKeyNamesPinnedVersions(t *testing.T) {
	dir, err := findToolsDir()
	if err != nil {
		t.Fatal(err)
	}
	key, v, err := cacheKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v.Kubernetes == "" || v.Etcd == "" || v.Kwok == "" {
		t.Fatalf("versions not found: %+v", v)
	}
	for _, version := range []string{v.Kubernetes, v.Etcd, v.Kwok} {
		if !strings.Contains(key, version) {
			t.Errorf("cache key %s does not name %s", key, version)
		}
	}
}

func TestNamespacePrefix(t *testing.T) {
	for name, want := range map[string]string{
		"TestHelm/install_with_Wait":     "testhelm-install-with-wait-",
		"Test" + strings.Repeat("x", 80): "test" + strings.Repeat("x", 46) + "-",
		"9lives":                         "t-9lives-",
	} {
		if got := namespacePrefix(name); got != want {
			t.Errorf("namespacePrefix(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestReapStopsLeftoversOfDeadOwners records a run whose owner has died, as a
// crashed test binary leaves it, and checks that Reap kills its process group
// but leaves the runs of live owners and detached runs alone.
func TestReapStopsLeftoversOfDeadOwners(t *testing.T) {
	stateDir := t.TempDir()
	opts := Options{StateDir: stateDir, Progress: io.Discard}

	sleepExe, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep command")
	}
	startSleep := func() *component {
		cmd := exec.Command(sleepExe, "300")
		cmd.SysProcAttr = sysProcAttr(false)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
		return &component{name: "sleep", pid: cmd.Process.Pid, exe: resolveExe(sleepExe), done: done}
	}
	// A pid that no longer runs the recorded executable: a dead owner.
	dead := exec.Command(sleepExe, "0")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	record := func(name string, owner int, ownerExe string, detached bool, p *component) string {
		dir := filepath.Join(stateDir, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		err := writeRun(Run{Dir: dir, Owner: owner, OwnerExe: ownerExe, Detached: detached, Started: time.Now(),
			Processes: []Process{{Name: p.name, PID: p.pid, Exe: p.exe}}})
		if err != nil {
			t.Fatal(err)
		}
		return dir
	}
	orphan, live, detached := startSleep(), startSleep(), startSleep()
	orphanDir := record("orphan", dead.Process.Pid, resolveExe(sleepExe), false, orphan)
	record("live", os.Getpid(), resolveExe(self), false, live)
	detachedDir := record("detached", dead.Process.Pid, resolveExe(sleepExe), true, detached)

	reaped, err := Reap(t.Context(), opts, false)
	if err != nil {
		t.Fatalf("Reap: %v", err)
	}
	if len(reaped) != 1 || reaped[0].Dir != orphanDir {
		t.Fatalf("Reap stopped %+v, want only %s", reaped, orphanDir)
	}
	if !orphan.waitExit(5 * time.Second) {
		t.Error("the orphaned process is still running")
	}
	if live.exited() || detached.exited() {
		t.Error("Reap stopped the process of a live owner or a detached run")
	}
	if _, err := os.Stat(filepath.Join(orphanDir, pidFileName)); !os.IsNotExist(err) {
		t.Errorf("pid file of the reaped run: %v, want it removed", err)
	}

	reaped, err = Reap(t.Context(), opts, true)
	if err != nil {
		t.Fatalf("Reap detached: %v", err)
	}
	if len(reaped) != 1 || reaped[0].Dir != detachedDir {
		t.Fatalf("Reap with detached stopped %+v, want only %s", reaped, detachedDir)
	}
	if !detached.waitExit(5 * time.Second) {
		t.Error("the detached process is still running")
	}
	if _, err := os.Stat(detachedDir); !os.IsNotExist(err) {
		t.Errorf("run directory of the stopped detached run: %v, want it removed", err)
	}
}
