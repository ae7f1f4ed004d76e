//go:build linux

package activities

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// supervision is the worker's side of one supervised command (see supervise_linux.go):
// the pipe on which the supervisor says why it could not start the command.
type supervision struct {
	path string   // the command, resolved
	r, w *os.File // the start-error pipe
}

// superviseCommand turns cmd, set up to run a command activity in its own process
// group, into the start of a supervisor that runs it, when SupervisorMain enabled
// supervisors; else it leaves cmd as it is and returns nil. The supervisor gets
// SIGTERM when the worker dies or cancels it, and then kills the command's tree.
func superviseCommand(cmd *exec.Cmd) (*supervision, error) {
	if !supervisorOn.Load() {
		return nil, nil
	}
	if cmd.Err != nil { // not found in PATH: the error Start would return
		return nil, cmd.Err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting the command's supervisor: %w", err)
	}
	s := &supervision{path: cmd.Path, r: r, w: w}
	cmd.Args = append([]string{os.Args[0], superviseArg, cmd.Path, "--"}, cmd.Args...)
	cmd.Path = "/proc/self/exe"
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM // the supervisor cleans up, then exits
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		err := syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		if err == syscall.ESRCH {
			return os.ErrProcessDone
		}
		return err
	}
	return s, nil
}

// started lets go of the worker's copy of the pipe's write end, after Start.
func (s *supervision) started() {
	if s != nil {
		_ = s.w.Close()
	}
}

// close releases the pipe when the supervisor was not started.
func (s *supervision) close() {
	if s != nil {
		_ = s.w.Close()
		_ = s.r.Close()
	}
}

// startError is, once the supervisor has exited, why it could not start the command
// (an error like the one exec.Cmd.Start returns), or nil.
func (s *supervision) startError() error {
	if s == nil {
		return nil
	}
	defer s.r.Close()
	b, err := io.ReadAll(s.r)
	if err != nil || len(b) == 0 {
		return nil
	}
	msg := string(b)
	if n, ok := strings.CutPrefix(msg, "errno "); ok {
		if e, err := strconv.Atoi(n); err == nil {
			return &fs.PathError{Op: "fork/exec", Path: s.path, Err: syscall.Errno(e)}
		}
	}
	return errors.New(strings.TrimPrefix(msg, "error "))
}
