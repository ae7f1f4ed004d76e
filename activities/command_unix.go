//go:build unix

package activities

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcessGroup runs the command in its own process group and makes cancellation
// (timeout, worker stopping) kill the whole group, so children the command started do
// not outlive it or hold its output open.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	dieWithWorker(cmd.SysProcAttr)
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if err == syscall.ESRCH {
			return os.ErrProcessDone
		}
		return err
	}
}
