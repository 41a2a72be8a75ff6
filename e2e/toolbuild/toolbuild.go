// Package toolbuild builds the real programs the tests run (rclone, versitygw,
// oauth2-proxy, livekit-server) from the Go module proxy: each is pinned by a tools
// module under e2e/tools/<dir> at the version of the image a chart runs, built once
// per pinned version and recipe into <user cache dir>/platzwart/tools under a file
// lock, so that concurrent test packages build it once (cold build times: see
// e2e/README.md).
package toolbuild

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildTimeout bounds one cold build.
const buildTimeout = 45 * time.Minute

// Tool is a binary built from a tools module.
type Tool struct {
	// Dir is the tools module's directory under e2e/tools.
	Dir string
	// Module is the upstream module the tools module pins; its required version
	// is the tool's version.
	Module string
	// Pkg is the main package built.
	Pkg string
	// Binary is the file name of the binary.
	Binary string
	// VersionVar, when set, is the variable the version is linked into (-X).
	VersionVar string
}

// Version returns the version of Module the tools module requires.
func Version(tl Tool) (string, error) {
	toolsDir, err := findToolsDir(tl.Dir)
	if err != nil {
		return "", err
	}
	_, version, err := cacheKey(filepath.Join(toolsDir, tl.Dir), tl.Module)
	return version, err
}

// Build returns the cached binary of a tool, building it under a file lock when
// missing (concurrent test packages wait for the first), and fails the test when
// it cannot.
func Build(t testing.TB, tl Tool) string {
	t.Helper()
	toolsDir, err := findToolsDir(tl.Dir)
	if err != nil {
		t.Fatal(err)
	}
	modDir := filepath.Join(toolsDir, tl.Dir)
	key, version, err := cacheKey(modDir, tl.Module)
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "platzwart", "tools", fmt.Sprintf("%s-%s-%s", tl.Binary, version, key))
	bin := filepath.Join(dir, tl.Binary)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	unlock, err := lock(t.Context(), dir+".lock")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("build %s: the go command is needed: %v", tl.Binary, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	defer cancel()
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	t.Logf("building %s %s into %s (first time only: several minutes)", tl.Binary, version, dir)
	ldflags := "-s -w"
	if tl.VersionVar != "" {
		ldflags += " -X " + tl.VersionVar + "=" + version
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-ldflags="+ldflags, "-o", filepath.Join(tmp, tl.Binary), tl.Pkg)
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=readonly")
	if os.Getenv("GOTOOLCHAIN") == "" {
		cmd.Env = append(cmd.Env, "GOTOOLCHAIN=auto")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s %s: %v\n%s", tl.Binary, version, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s %s in %s", tl.Binary, version, time.Since(start).Round(time.Second))
	return bin
}

// cacheKey names a build after a hash of the tools module's go.mod and go.sum and the
// platform, and returns the version of module it requires.
func cacheKey(modDir, module string) (key, version string, err error) {
	h := sha256.New()
	fmt.Fprintf(h, "recipe 1 %s/%s\n", runtime.GOOS, runtime.GOARCH)
	for _, name := range []string{"go.mod", "go.sum", "main.go"} {
		data, err := os.ReadFile(filepath.Join(modDir, name))
		if name == "main.go" && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("read tools module: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", name, len(data))
		h.Write(data)
		if name == "go.mod" {
			s := bufio.NewScanner(bytes.NewReader(data))
			for s.Scan() {
				f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(s.Text()), "require "))
				if len(f) >= 2 && f[0] == module {
					version = f[1]
				}
			}
		}
	}
	if version == "" {
		return "", "", fmt.Errorf("%s/go.mod does not require %s", modDir, module)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], version, nil
}

// findToolsDir looks for e2e/tools/<dir>/go.mod in the working directory and its
// parents and returns that e2e/tools.
func findToolsDir(dir string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		tools := filepath.Join(d, "e2e", "tools")
		if _, err := os.Stat(filepath.Join(tools, dir, "go.mod")); err == nil {
			return tools, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no e2e/tools/%s/go.mod in %s or a parent", dir, wd)
		}
	}
}

// lock takes an exclusive flock(2) on path (released by the kernel if the process
// dies) and returns its release.
func lock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for lock %s: %w", path, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
