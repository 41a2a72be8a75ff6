package cluster

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
)

// Options configure where the control plane is built and run. The zero value
// is ready to use.
type Options struct {
	// ToolsDir is the directory holding the tools modules (kube, etcd, kwok).
	// Default: the e2e/tools directory of the repository, found by walking up
	// from the working directory.
	ToolsDir string

	// CacheDir is where the binaries are built, one subdirectory per set of
	// pinned versions. Default: <user cache dir>/platzwart/controlplane.
	CacheDir string

	// StateDir holds the run directories of the control planes.
	// Default: <user cache dir>/platzwart/run.
	StateDir string

	// Detached lets the control plane outlive the process that started it (for
	// localcluster up). Otherwise, on Linux, the processes die with it.
	Detached bool

	// Nodes is the number of kwok nodes to register. Default: 2.
	Nodes int

	// Progress receives progress messages. Default: os.Stderr.
	Progress io.Writer

	// UnlimitedClients lifts the client-side rate limits of kube-controller-manager
	// and kube-scheduler (--kube-api-qps 5000, --kube-api-burst 10000, the values
	// kwokctl sets with DisableQPSLimits: sigs.k8s.io/kwok
	// pkg/kwokctl/components/kube_controller_manager.go and kube_scheduler.go). By
	// default kube-controller-manager sends at most 20 requests a second, and a
	// Deployment's roll-out takes several (a ReplicaSet, its Pods, their status):
	// 100 roll-outs at once wait for it, not for what is measured. For scale
	// benchmarks; the tests run with the defaults, as a real cluster would.
	UnlimitedClients bool
}

const defaultNodes = 2

// withDefaults returns a copy of o with every empty field filled in.
func (o Options) withDefaults() (Options, error) {
	if o.CacheDir == "" || o.StateDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return o, fmt.Errorf("find the user cache directory: %w", err)
		}
		if o.CacheDir == "" {
			o.CacheDir = filepath.Join(base, "platzwart", "controlplane")
		}
		if o.StateDir == "" {
			o.StateDir = filepath.Join(base, "platzwart", "run")
		}
	}
	if o.ToolsDir == "" {
		dir, err := findToolsDir()
		if err != nil {
			return o, err
		}
		o.ToolsDir = dir
	}
	if o.Nodes <= 0 {
		o.Nodes = defaultNodes
	}
	if o.Progress == nil {
		o.Progress = os.Stderr
	}
	return o, nil
}

// findToolsDir looks for e2e/tools in the working directory and its parents,
// then next to the source file of this package.
func findToolsDir() (string, error) {
	isTools := func(dir string) bool {
		_, err := os.Stat(filepath.Join(dir, "kube", "go.mod"))
		return err == nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find e2e/tools: %w", err)
	}
	for dir := wd; ; {
		if candidate := filepath.Join(dir, "e2e", "tools"); isTools(candidate) {
			return candidate, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		if candidate := filepath.Join(filepath.Dir(file), "..", "tools"); isTools(candidate) {
			return filepath.Clean(candidate), nil
		}
	}
	return "", errors.New("find e2e/tools: not found above " + wd + "; run from inside the platzwart repository or set Options.ToolsDir")
}
