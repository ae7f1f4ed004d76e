//go:build linux

package activities

import "syscall"

// dieWithWorker makes the kernel SIGKILL the command when the worker dies (even by
// SIGKILL), so that it cannot outlive its worker and overlap the retry another worker
// starts. (Pdeathsig fires when the thread that started the command exits; the Go
// runtime only ends threads that a goroutine locked, which Stent never does.)
func dieWithWorker(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = syscall.SIGKILL
}
