package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// pidFileName is the pid file in every run directory. It lists the processes
// of the control plane and is removed once they are stopped.
const pidFileName = "pids.json"

// keepLogsFor is how long the run directories of stopped control planes that
// were kept (failed tests, crashed runs) stay before Start removes them.
const keepLogsFor = 72 * time.Hour

// Run describes the run directory of a control plane as recorded in its pid
// file.
type Run struct {
	// Dir is the run directory: logs, kubeconfig, certificates, etcd data.
	Dir string `json:"-"`
	// Owner is the pid of the process that started the control plane, and
	// OwnerExe its executable.
	Owner    int    `json:"owner"`
	OwnerExe string `json:"ownerExe"`
	// Detached is true for a control plane that outlives its owner
	// (localcluster up).
	Detached bool `json:"detached"`
	// Started is when the control plane was started.
	Started time.Time `json:"started"`
	// Kubeconfig is the path of the admin kubeconfig.
	Kubeconfig string `json:"kubeconfig"`
	// Processes are the components in start order.
	Processes []Process `json:"processes"`
}

// Process is one component of a recorded control plane.
type Process struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	Exe  string `json:"exe"`
}

// Running reports whether the process is still alive.
func (p Process) Running() bool { return alive(p.PID, p.Exe) }

// OwnerRunning reports whether the process that started the control plane is
// still alive.
func (r Run) OwnerRunning() bool { return alive(r.Owner, r.OwnerExe) }

// orphaned reports whether the control plane has nobody left to stop it.
func (r Run) orphaned() bool { return !r.Detached && !r.OwnerRunning() }

// writeRun writes the pid file of a run atomically.
func writeRun(r Run) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode pid file: %w", err)
	}
	path := filepath.Join(r.Dir, pidFileName)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}

// Runs lists the control planes recorded in the state directory whose pid
// files still exist: running ones and leftovers of crashed runs.
func Runs(opts Options) ([]Run, error) {
	opts, err := opts.withStateDefaults()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(opts.StateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list run directories: %w", err)
	}
	var runs []Run
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(opts.StateDir, e.Name())
		data, err := os.ReadFile(filepath.Join(dir, pidFileName))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read pid file: %w", err)
		}
		var r Run
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("read pid file %s: %w", filepath.Join(dir, pidFileName), err)
		}
		r.Dir = dir
		runs = append(runs, r)
	}
	return runs, nil
}

// Reap stops the control planes that nobody else will stop: those whose owner
// died without stopping them (a crashed or killed test binary) and, if
// detached is true, also the detached ones (localcluster up). Control planes
// of live test binaries are left alone. It returns the runs it stopped. The
// run directories of detached control planes are removed; those of crashed
// runs are kept for their logs.
func Reap(ctx context.Context, opts Options, detached bool) ([]Run, error) {
	runs, err := Runs(opts)
	if err != nil {
		return nil, err
	}
	var reaped []Run
	var errs []error
	for _, r := range runs {
		if !r.orphaned() && !(detached && r.Detached) {
			continue
		}
		if err := stopRun(ctx, r); err != nil {
			errs = append(errs, err)
			continue
		}
		reaped = append(reaped, r)
		if r.Detached {
			if err := os.RemoveAll(r.Dir); err != nil {
				errs = append(errs, fmt.Errorf("remove run directory: %w", err))
			}
		}
	}
	return reaped, errors.Join(errs...)
}

// stopRun stops the processes of a recorded run in reverse start order and
// removes its pid file.
func stopRun(ctx context.Context, r Run) error {
	var errs []error
	for i := len(r.Processes) - 1; i >= 0; i-- {
		p := r.Processes[i]
		errs = append(errs, terminate(ctx, &component{name: p.Name, pid: p.PID, exe: p.Exe}))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop control plane of %s: %w", r.Dir, err)
	}
	if err := os.Remove(filepath.Join(r.Dir, pidFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove pid file: %w", err)
	}
	return nil
}

// pruneRunDirs removes run directories without a pid file (stopped control
// planes whose logs were kept) that are older than keepLogsFor.
func pruneRunDirs(stateDir string) error {
	entries, err := os.ReadDir(stateDir)
	if err != nil {
		return fmt.Errorf("list run directories: %w", err)
	}
	var errs []error
	for _, e := range entries {
		dir := filepath.Join(stateDir, e.Name())
		info, err := e.Info()
		if err != nil || !e.IsDir() || time.Since(info.ModTime()) < keepLogsFor {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, pidFileName)); err == nil {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove old run directory: %w", err))
		}
	}
	return errors.Join(errs...)
}

// withStateDefaults fills in the state directory only; Runs and Reap need
// nothing else.
func (o Options) withStateDefaults() (Options, error) {
	if o.StateDir != "" {
		return o, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return o, fmt.Errorf("find the user cache directory: %w", err)
	}
	o.StateDir = filepath.Join(base, "platzwart", "run")
	return o, nil
}
