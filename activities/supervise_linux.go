//go:build linux

package activities

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// A command activity's whole process tree dies with its worker. The command's direct
// child gets a parent-death signal, but a descendant that calls setsid or double-forks
// leaves the command's process group and would outlive a killed worker (and overlap
// the retry another worker starts). So, in a program that called SupervisorMain, the
// worker does not start the command itself: it starts its own executable again
// (/proc/self/exe) as a tiny supervisor, `__supervise PATH -- ARGV…`, that
//
//   - is a child subreaper (PR_SET_CHILD_SUBREAPER): every orphaned descendant of the
//     command, setsid or double-forked, is re-parented to it, never to init;
//   - gets SIGTERM when the worker dies, even by SIGKILL (the parent-death signal the
//     worker sets when it starts it), and on cancellation (the worker sends it);
//   - starts the command with its own stdin, stdout, stderr and environment, which are
//     the ones the worker prepared;
//   - when the command ends, or on SIGTERM, kills every descendant it has, again until
//     none is left, and exits as the command did (the same exit code, or the same
//     signal), or killed by SIGKILL when it was stopped.
//
// A command that cannot be started is reported through fd 3 (errno or message), so
// the worker's errors are the same as when it starts the command itself. The
// supervisor ends with syscall.Exit: it has nothing to flush, and a binary built with
// -race would otherwise wait a second at exit, delaying the command's result.

// superviseArg is the first argument of a supervisor process.
const superviseArg = "__supervise"

// supervisorOn is set by SupervisorMain: this executable runs supervisors.
var supervisorOn atomic.Bool

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER of prctl(2).
const prSetChildSubreaper = 36

// SupervisorMain makes command activities of this process run under a supervisor
// that kills the command's whole process tree (setsid and double-forked descendants
// included) when the command ends, is cancelled, or its worker dies, even by SIGKILL.
// A program calls it first thing in main: when the process was started as a
// supervisor, SupervisorMain runs it and never returns. Without the call, a command
// activity is started directly, and only its process group is killed with it (Linux
// only; elsewhere SupervisorMain does nothing).
func SupervisorMain() {
	if len(os.Args) > 1 && os.Args[1] == superviseArg {
		supervise(os.Args[2:])
	}
	supervisorOn.Store(true)
}

// supervise is the supervisor process; it never returns.
func supervise(args []string) {
	if len(args) < 3 || args[1] != "--" {
		fmt.Fprintln(os.Stderr, "usage: "+superviseArg+" PATH -- ARGV0 [ARG…]")
		syscall.Exit(2)
	}
	path, argv := args[0], args[2:]
	syscall.CloseOnExec(3) // the start-error pipe is the supervisor's alone
	report := os.NewFile(3, "start-errors")
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
		startFailed(report, fmt.Errorf("becoming a child subreaper: %w", e))
	}
	stop := make(chan os.Signal, 4)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	proc, err := os.StartProcess(path, argv, &os.ProcAttr{
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}, // should the supervisor itself be killed
	})
	if err != nil {
		startFailed(report, err)
	}
	_ = report.Close()
	for {
		select {
		case <-stop:
			killDescendants()
			exitAs(syscall.WaitStatus(syscall.SIGKILL)) // stopped: as if killed
		case <-chld:
		}
		if ws, done, _ := reap(proc.Pid); done {
			killDescendants()
			exitAs(ws)
		}
	}
}

// startFailed reports why the command could not be started and exits.
func startFailed(report *os.File, err error) {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		fmt.Fprintf(report, "errno %d", int(errno))
	} else {
		fmt.Fprintf(report, "error %s", err)
	}
	_ = report.Close()
	syscall.Exit(127)
}

// reap reaps every child that ended. done says whether the command (pid) was one of
// them, with its wait status; left whether the supervisor still has a child.
func reap(pid int) (ws syscall.WaitStatus, done, left bool) {
	for {
		var st syscall.WaitStatus
		p, err := syscall.Wait4(-1, &st, syscall.WNOHANG, nil)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil: // ECHILD: no child at all
			return ws, done, false
		case p == 0: // children, all running
			return ws, done, true
		case p == pid:
			ws, done = st, true
		}
	}
}

// killDescendants SIGKILLs every process below the supervisor and reaps its children,
// again until none is left: a process may fork while it is being killed, and its
// orphans come to the supervisor. None is left when the supervisor has no child: a
// descendant whose parent died is re-parented to it.
func killDescendants() {
	deadline := time.Now().Add(10 * time.Second)
	self := os.Getpid()
	for delay := 50 * time.Microsecond; ; delay = min(2*delay, 20*time.Millisecond) {
		if _, _, left := reap(-1); !left || time.Now().After(deadline) {
			return
		}
		for _, pid := range descendants(self) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(delay)
	}
}

// descendants lists the processes below pid that are still alive, from /proc.
func descendants(pid int) []int {
	dir, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range dir {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid …: comm may hold spaces and parentheses.
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// exitAs ends the supervisor as the command ended: with its exit code, or killed by
// the same signal, its default action restored (the Go runtime handles some signals
// itself, SIGQUIT and SIGSEGV among them).
func exitAs(ws syscall.WaitStatus) {
	if !ws.Signaled() {
		syscall.Exit(ws.ExitStatus())
	}
	sig := ws.Signal()
	signal.Reset(sig)
	var dfl [4]uint64 // struct sigaction, all zero: SIG_DFL, no flags, empty mask
	_, _, _ = syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0)
	_ = syscall.Kill(os.Getpid(), sig)
	time.Sleep(time.Second) // the signal is on its way
	syscall.Exit(128 + int(sig))
}
