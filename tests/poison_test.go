package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPoisonPillActivity: an activity that kills its worker (SIGKILL) is run three
// times, by three `stent exec` processes resuming the same execution; the fourth fails
// the execution with the reason instead of crashing again.
func TestPoisonPillActivity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "flow.star"), "def main():\n    return durable(\"crash\")\n", 0o644)
	// The worker is the parent, or on Linux the parent of the command's supervisor.
	writeFile(t, filepath.Join(dir, "crash.sh"), "#!/bin/sh\ncat >/dev/null\necho \"attempt $STENT_ATTEMPT\" >> runs.log\n"+
		"w=$PPID\nif grep -q __supervise /proc/$PPID/cmdline 2>/dev/null; then w=$(cut -d' ' -f4 /proc/$PPID/stat); fi\n"+
		"kill -9 $w\nsleep 60\n", 0o755)
	args := []string{"exec", "flow.star", "--id", "poison-1", "--activity", "crash=./crash.sh", "--dead-worker-grace", "2s", "--poll", "100ms"}
	var last result
	for run := 1; run <= 4; run++ {
		cmd, out, errb := startStent(t, dir, nil, args...)
		err := cmd.Wait()
		last = result{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
		if run <= 3 {
			if err == nil || !strings.Contains(err.Error(), "killed") {
				t.Fatalf("run %d: exec = %v, want it killed by its activity\nstderr:\n%s", run, err, errb)
			}
			continue
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "runs.log"))
	if want := "attempt 1\nattempt 2\nattempt 3\n"; string(b) != want {
		t.Errorf("the activity ran:\n%s\nwant three attempts, numbered 1 to 3", b)
	}
	want := `stent: execution poison-1 failed: flow.star:2:19: durable: activity "crash" failed after 3 attempts: activity "crash": the workers running it died (attempt limit 3, crashes included); it is not run again`
	if last.code != 1 || !strings.HasPrefix(last.stderr, want) {
		t.Fatalf("fourth exec: exit %d, stderr:\n%s\nwant exit 1 and %q", last.code, last.stderr, want)
	}
	if r := stent(t, dir, "status", "poison-1"); !strings.Contains(r.stdout, "failed") {
		t.Errorf("status:\n%s", r.stdout)
	}
}
