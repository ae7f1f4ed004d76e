//go:build linux

package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// processGone says whether pid has exited (a zombie waiting for its reaper counts).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z' || s[i+2] == 'X'
	}
	return false
}

// TestCommandActivityDiesWithItsWorker: SIGKILL a worker while its command activity
// runs; the command dies too, so the retry on the next worker never overlaps it.
func TestCommandActivityDiesWithItsWorker(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "flow.star"), "def main():\n    return durable(\"hang\")\n", 0o644)
	// exec: the sleep is the activity process itself, the worker's direct child.
	writeFile(t, filepath.Join(dir, "hang.sh"), "#!/bin/sh\ncat >/dev/null\necho $$ >> \"$PID_LOG\"\nexec sleep 300\n", 0o755)
	pidLog := filepath.Join(dir, "pids")
	env := []string{"PID_LOG=" + pidLog}
	if r := stent(t, dir, "dispatch", "flow.star", "--id", "orphan-1"); r.code != 0 {
		t.Fatalf("dispatch: %s", r.stderr)
	}
	w, _, _ := startStent(t, dir, env, "worker", "--activity", "hang=./hang.sh", "--activity-env", "PID_LOG", "--poll", "100ms")
	deadline := time.Now().Add(30 * time.Second)
	for countLines(t, pidLog, "") < 2 && time.Now().Before(deadline) { // a pid and the final empty line
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := os.ReadFile(pidLog)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("the activity never started (pid log %q)", b)
	}
	if processGone(pid) {
		t.Fatalf("activity process %d is not running before the kill", pid)
	}
	if err := w.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = w.Wait()
	deadline = time.Now().Add(10 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("activity process %d outlived its killed worker", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// escapeScript is a command activity that starts a setsid child and a double-forked
// daemon, each writing $OUT_DIR/late after 2 s, says it started, and hangs.
const escapeScript = `#!/bin/sh
cat >/dev/null
setsid sh -c 'sleep 2; echo setsid >> "$OUT_DIR/late"' </dev/null >/dev/null 2>&1 &
( sh -c 'sleep 2; echo daemon >> "$OUT_DIR/late"' </dev/null >/dev/null 2>&1 & )
touch "$OUT_DIR/started"
exec sleep 300
`

// supervisorsOf lists the command supervisors (`stent __supervise …`) whose parent is
// pid.
func supervisorsOf(pid int) []int {
	var out []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.Contains(string(cmdline), "__supervise") {
			continue
		}
		if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}

// TestActivityTreeDiesWithItsWorker: SIGKILL `stent exec` while its command activity
// runs, after the command started a setsid child and a double-forked daemon; once the
// activity's supervisor is gone, and well past the 2 s the two sleep, neither has
// written its file: the whole tree died with the worker.
func TestActivityTreeDiesWithItsWorker(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "flow.star"), "def main():\n    return durable(\"escape\")\n", 0o644)
	writeFile(t, filepath.Join(dir, "escape.sh"), escapeScript, 0o755)
	cmd, _, _ := startStent(t, dir, []string{"OUT_DIR=" + dir}, "exec", "flow.star", "--id", "escape-1", "--activity", "escape=./escape.sh")
	deadline := time.Now().Add(time.Minute)
	var sups []int
	for {
		if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
			if sups = supervisorsOf(cmd.Process.Pid); len(sups) > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the activity never started under a supervisor (supervisors: %v)", sups)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	for _, pid := range sups {
		for !processGone(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("supervisor %d outlived its killed worker", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The descendants would have written 2 s after they started; look until well past.
	late := filepath.Join(dir, "late")
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(late); err == nil {
			t.Fatalf("a descendant of the activity outlived its killed worker and wrote %q", b)
		}
	}
}
