package cluster

import "syscall"

// sysProcAttr puts a component into a process group of its own. Unless the
// control plane is detached, the kernel kills the component when the process
// that started it dies, so a crashed or killed test binary leaves nothing
// behind. A detached component gets a session of its own, away from the
// terminal.
func sysProcAttr(detached bool) *syscall.SysProcAttr {
	if detached {
		return &syscall.SysProcAttr{Setsid: true}
	}
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
