//go:build !linux

package cluster

import "syscall"

// sysProcAttr puts a component into a process group of its own, or a session
// of its own when the control plane is detached. Without Linux's parent-death
// signal, leftovers of a crashed test binary are stopped by the next Start or
// by Reap.
func sysProcAttr(detached bool) *syscall.SysProcAttr {
	if detached {
		return &syscall.SysProcAttr{Setsid: true}
	}
	return &syscall.SysProcAttr{Setpgid: true}
}
