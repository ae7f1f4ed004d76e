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
