package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// component is one process of a control plane. Each component runs in a
// process group of its own, led by itself, so that it can be signalled as a
// group and never receives the terminal's signals meant for the tests.
type component struct {
	name    string
	pid     int
	exe     string // absolute path of the executable, symlinks resolved
	logPath string
	args    []string // the command line, to start the component again

	// done is closed when the process has exited and been waited for. It is
	// nil for a process that is not a child of this process (found in the pid
	// file of another run); liveness is polled for those.
	done    chan struct{}
	exitErr error // valid once done is closed
}

// Grace periods between SIGTERM and SIGKILL. The apiserver takes a few
// seconds to shut down; the others exit at once.
const (
	defaultGrace   = 5 * time.Second
	apiserverGrace = 10 * time.Second
	killWait       = 5 * time.Second
)

func graceFor(name string) time.Duration {
	if name == "kube-apiserver" {
		return apiserverGrace
	}
	return defaultGrace
}

// exited reports whether the process is known to have exited.
func (p *component) exited() bool {
	if p.done != nil {
		select {
		case <-p.done:
			return true
		default:
			return false
		}
	}
	return !alive(p.pid, p.exe)
}

// waitExit waits up to d for the process to exit and reports whether it did.
func (p *component) waitExit(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	if p.done != nil {
		select {
		case <-p.done:
			return true
		case <-timer.C:
			return false
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if !alive(p.pid, p.exe) {
			return true
		}
		select {
		case <-tick.C:
		case <-timer.C:
			return !alive(p.pid, p.exe)
		}
	}
}

// terminate stops the process group of p: SIGTERM, then SIGKILL after the
// grace period or as soon as ctx is done.
func terminate(ctx context.Context, p *component) error {
	if p.exited() {
		return nil
	}
	_ = syscall.Kill(-p.pid, syscall.SIGTERM)
	grace := graceFor(p.name)
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < grace {
		grace = max(time.Until(deadline), 0)
	}
	if ctx.Err() == nil && p.waitExit(grace) {
		return nil
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	if p.waitExit(killWait) {
		return nil
	}
	return fmt.Errorf("stop %s (pid %d): still running %s after SIGKILL", p.name, p.pid, killWait)
}

// alive reports whether pid is a live process running exe. Comparing the
// executable guards against a pid that has been reused by an unrelated
// process. Zombies count as dead. Without /proc (macOS) only the pid is
// checked.
func alive(pid int, exe string) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return false // gone, or not ours (EPERM)
	}
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		if _, statErr := os.Stat("/proc/self/exe"); statErr != nil {
			return true // no procfs here
		}
		return false // exited; a zombie has no exe link
	}
	return strings.TrimSuffix(link, " (deleted)") == exe
}

// resolveExe returns the absolute, symlink-free path of an executable, the
// form /proc/<pid>/exe shows.
func resolveExe(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		path = resolved
	}
	return path
}

// logTail returns the last lines of a log file, for error messages.
func logTail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	all := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return string(bytes.Join(all, []byte("\n")))
}
