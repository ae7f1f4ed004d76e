//go:build unix && !linux

package activities

import "syscall"

// dieWithWorker has no equivalent of Linux's Pdeathsig here: a command whose worker is
// killed runs on until it ends (its process group is still killed on timeout, cancel
// and shutdown).
func dieWithWorker(*syscall.SysProcAttr) {}
