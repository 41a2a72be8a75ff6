package ociimage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// compile builds ./cmd/platzwart of moduleDir for platform p into out: static
// (no cgo), without file system paths or VCS stamps, stripped, the version linked
// in, the architecture levels fixed, so that a commit always gives the same bytes
// with the toolchain go.mod names.
func compile(ctx context.Context, moduleDir string, p v1.Platform, version, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build",
		"-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -X main.version="+version,
		"-o", out, "./cmd/platzwart")
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture,
		"GOAMD64=v1", "GOARM64=v8.0", "GOEXPERIMENT=", "GOFLAGS=-mod=readonly")
	if outb, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build for %s: %w\n%s", p, err, outb)
	}
	return nil
}

// goEnv returns the values of go env variables as the module's toolchain sees them.
func goEnv(ctx context.Context, moduleDir string, names ...string) ([]string, error) {
	out, err := run(ctx, moduleDir, "go", append([]string{"env"}, names...)...)
	if err != nil {
		return nil, err
	}
	values := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(values) != len(names) {
		return nil, fmt.Errorf("go env %s: %d values", strings.Join(names, " "), len(values))
	}
	return values, nil
}

// Commit is the commit a work tree is at.
type Commit struct {
	// Revision is the full commit hash.
	Revision string
	// Time is the committer time, used as SOURCE_DATE_EPOCH.
	Time time.Time
}

// HeadCommit returns the commit checked out in dir.
func HeadCommit(ctx context.Context, dir string) (Commit, error) {
	out, err := run(ctx, dir, "git", "log", "-1", "--format=%H %ct")
	if err != nil {
		return Commit{}, err
	}
	hash, epoch, ok := strings.Cut(strings.TrimSpace(out), " ")
	if !ok {
		return Commit{}, fmt.Errorf("git log in %s: unexpected output %q", dir, out)
	}
	secs, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return Commit{}, fmt.Errorf("git log in %s: commit time %q: %w", dir, epoch, err)
	}
	return Commit{Revision: hash, Time: time.Unix(secs, 0).UTC()}, nil
}

// Describe returns `git describe --tags --always --dirty` of dir, the Makefile's
// VERSION.
func Describe(ctx context.Context, dir string) (string, error) {
	out, err := run(ctx, dir, "git", "describe", "--tags", "--always", "--dirty")
	return strings.TrimSpace(out), err
}

func run(ctx context.Context, dir, name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), dir, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
