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

// flakyScript fails its first attempt, then succeeds; it logs "attempt N <unix ms>".
const flakyScript = `#!/bin/sh
cat >/dev/null
echo "attempt $STENT_ATTEMPT $(date +%s%3N)" >> "$STEP_LOG"
if [ "$STENT_ATTEMPT" = "1" ]; then
  echo "transient failure" >&2
  exit 1
fi
echo '"ok"'
`

// TestRetryScheduleSurvivesAKill: a worker killed between two attempts does not lose or
// restart the retry schedule: the second attempt runs when it was due, once.
func TestRetryScheduleSurvivesAKill(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "flow.star"), "def main():\n    return durable('flaky', retry=retry_policy(max_attempts=3, initial_delay='3s'))\n", 0o644)
	writeFile(t, filepath.Join(dir, "flaky.sh"), flakyScript, 0o755)
	logFile := filepath.Join(dir, "attempts.log")
	env := []string{"STEP_LOG=" + logFile}
	args := []string{"exec", "flow.star", "--id", "retry-kill", "--activity", "flaky=./flaky.sh", "--dead-worker-grace", "2s"}

	cmd, _, _ := startStent(t, dir, env, args...)
	waitForLine(t, logFile, "attempt 1 ", 30*time.Second)
	time.Sleep(300 * time.Millisecond) // let the retry be recorded
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	cmd2, out, errb := startStent(t, dir, env, args...)
	if err := cmd2.Wait(); err != nil {
		t.Fatalf("resumed exec: %v\n%s", err, errb)
	}
	if out.String() != "\"ok\"\n" {
		t.Fatalf("stdout = %q, want \"ok\"", out)
	}
	b, _ := os.ReadFile(logFile)
	var at []int64
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("bad log line %q", line)
		}
		ms, _ := strconv.ParseInt(f[2], 10, 64)
		if want := strconv.Itoa(len(at) + 1); f[1] != want {
			t.Fatalf("attempts ran as %q; want attempt 1 then 2, each once", string(b))
		}
		at = append(at, ms)
	}
	if len(at) != 2 {
		t.Fatalf("%d attempts ran, want 2:\n%s", len(at), b)
	}
	gap := time.Duration(at[1]-at[0]) * time.Millisecond
	if gap < 3*time.Second {
		t.Fatalf("the second attempt ran %s after the first, before its 3s delay", gap)
	}
	t.Logf("second attempt %s after the first, across a kill", gap)
}

func TestSagaExampleCompensatesInReverse(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	dir := t.TempDir()
	args := []string{"exec", filepath.Join(root, "workflows/saga/saga.star"), "--args", `["Lisbon"]`}
	for _, a := range []string{"book_flight", "book_hotel", "book_car", "cancel_flight", "cancel_hotel", "cancel_car"} {
		args = append(args, "--activity", fmt.Sprintf("%s=%s %s", a, filepath.Join(root, "workflows/saga/travel.sh"), a))
	}
	r := stent(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	want := `{"status":"rolled back","failed":"book_car","error":"no cars available in Lisbon (exit status 65)","compensated":["cancel_hotel","cancel_flight"]}` + "\n"
	if r.stdout != want {
		t.Fatalf("stdout = %s\nwant     %s", r.stdout, want)
	}
}

// TestDLQReplayThroughTheCLI: a step that exhausted its retries is dead-lettered; once
// its cause is fixed, `stent dlq replay` completes the execution.
func TestDLQReplayThroughTheCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "flow.star"), "def main():\n    a = durable('pay', 1)\n    return ['paid', a]\n", 0o644)
	// pay fails until the file "fixed" exists.
	writeFile(t, filepath.Join(dir, "pay.sh"), "#!/bin/sh\ncat >/dev/null\nif [ -e fixed ]; then echo '\"receipt\"'; else echo 'processor down' >&2; exit 65; fi\n", 0o755)
	r := stent(t, dir, "exec", "flow.star", "--id", "order-1", "--activity", "pay=./pay.sh")
	if r.code != 1 || !strings.Contains(r.stderr, "processor down") {
		t.Fatalf("first run: exit %d, stderr %s; want a failure naming the cause", r.code, r.stderr)
	}
	list := stent(t, dir, "dlq", "list")
	if !strings.Contains(list.stdout, "order-1") || !strings.Contains(list.stdout, "pay") {
		t.Fatalf("dlq list does not show the dead letter:\n%s%s", list.stdout, list.stderr)
	}
	writeFile(t, filepath.Join(dir, "fixed"), "", 0o644)
	if r := stent(t, dir, "dlq", "replay", "1"); r.code != 0 {
		t.Fatalf("dlq replay: exit %d: %s", r.code, r.stderr)
	}
	// A worker resumes the execution (exec with the same ID serves it too).
	r = stent(t, dir, "exec", "flow.star", "--id", "order-1", "--activity", "pay=./pay.sh")
	if r.code != 0 || r.stdout != `["paid","receipt"]`+"\n" {
		t.Fatalf("after replay: exit %d stdout %q stderr %s", r.code, r.stdout, r.stderr)
	}
}
