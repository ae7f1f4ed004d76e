//go:build unix

package engine

import "syscall"

// processGone reports whether no process with this pid exists on this host.
func processGone(pid int) bool {
	return syscall.Kill(pid, 0) == syscall.ESRCH
}
