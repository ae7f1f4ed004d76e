package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stent-go/stent/internal/testlog"
	"github.com/stent-go/stent/tests/internal/stentcli"
)

// stentBin is the CLI built once for all tests.
var stentBin string

func TestMain(m *testing.M) {
	testlog.Setup() // warn unless -v
	stentcli.Main(m, func(bin string) { stentBin = bin })
}

// repoRoot is the module root (tests run in tests/).
func repoRoot(t *testing.T) string {
	t.Helper()
	return stentcli.RepoRoot()
}

type result struct {
	stdout, stderr string
	code           int
}

// stent runs the CLI in dir with a private database and returns what it printed.
func stent(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return stentOn(t, dir, filepath.Join(dir, "stent.db"), args...)
}

// stentOn runs the CLI in dir against the database dsn and returns what it printed.
func stentOn(t *testing.T, dir, dsn string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, stentBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "STENT_DB="+dsn)
	var r result
	r.stdout, r.stderr, r.code = stentcli.Run(t, cmd)
	return r
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func TestGreetingExample(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root := repoRoot(t)
	r := stent(t, dir, "exec", filepath.Join(root, "workflows/greeting.star"), "--args", `[["Alice","Bob","Charlie"]]`)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if want := "[\"Hello, Alice!\",\"Hello, Bob!\",\"Hello, Charlie!\"]\n"; r.stdout != want {
		t.Fatalf("stdout = %q, want %q", r.stdout, want)
	}
}

// stepScript is a command activity that appends "start N" and "done N" to a log file
// around its work; it hangs on step N == $HANG_STEP until $HANG_MARK exists... the
// first time only (it creates the mark), so a resumed run gets through.
const stepScript = `#!/bin/sh
n=$(cat | tr -d '[] \n')
echo "start $n seq=$STENT_SEQ attempt=$STENT_ATTEMPT" >> "$STEP_LOG"
if [ "$n" = "$HANG_STEP" ] && [ ! -e "$HANG_MARK" ]; then
  touch "$HANG_MARK"
  sleep 60
fi
echo "done $n" >> "$STEP_LOG"
echo "\"step $n\""
`

// stepDir is a fresh directory holding script as flow.star and the step.sh activity,
// with the environment step.sh reads: its log, logFile, and the step it hangs at
// (hangStep, or "none").
func stepDir(t *testing.T, script, hangStep string) (dir, logFile string, env []string) {
	t.Helper()
	dir = t.TempDir()
	writeFile(t, filepath.Join(dir, "flow.star"), script, 0o644)
	writeFile(t, filepath.Join(dir, "step.sh"), stepScript, 0o755)
	logFile = filepath.Join(dir, "steps.log")
	env = []string{"STEP_LOG=" + logFile, "HANG_STEP=" + hangStep, "HANG_MARK=" + filepath.Join(dir, "hung")}
	return dir, logFile, env
}

const fiveSteps = `
def main():
    out = []
    for i in range(1, 6):
        out.append(durable("step", i))
    return out
`

// startStent starts the CLI in the background.
func startStent(t *testing.T, dir string, env []string, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(stentBin, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "STENT_DB="+filepath.Join(dir, "stent.db")), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, &out, &errb
}

func waitForLine(t *testing.T, file, line string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(file)
		if strings.Contains(string(b), line) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := os.ReadFile(file)
	t.Fatalf("%s never contained %q; it has:\n%s", file, line, b)
}

// waitExited waits for the resumed exec cmd to exit 0, at most d: a resume that waited
// for the dead worker's lease or grace (1h) fails here instead of timing out the package.
func waitExited(t *testing.T, cmd *exec.Cmd, stderr *bytes.Buffer, d time.Duration) {
	t.Helper()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("resumed exec: %v\nstderr:\n%s", err, stderr)
		}
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-waited
		t.Fatalf("the resumed exec did not finish in %s: it waited for the dead worker's lease or grace (1h)\nstderr:\n%s", d, stderr)
	}
}

func countLines(t *testing.T, file, prefix string) int {
	t.Helper()
	b, _ := os.ReadFile(file)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

func TestCrashDuringThirdStepResumes(t *testing.T) {
	t.Parallel()
	dir, logFile, env := stepDir(t, fiveSteps, "3")
	// A lease and a dead-worker grace far longer than any loaded machine needs to
	// resume: the resumed run can only finish within the test's deadline if the dead
	// worker's tasks are reclaimed as soon as its process is found gone.
	args := []string{"exec", "flow.star", "--id", "crash-1", "--activity", "step=./step.sh", "--dead-worker-grace", "1h", "--lease", "1h"}

	cmd, _, _ := startStent(t, dir, env, args...)
	waitForLine(t, logFile, "start 3", 30*time.Second)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	mustVerify(t, dir)

	start := time.Now()
	cmd2, out, errb := startStent(t, dir, env, args...)
	waitExited(t, cmd2, errb, 10*time.Minute)
	took := time.Since(start)
	if want := `["step 1","step 2","step 3","step 4","step 5"]` + "\n"; out.String() != want {
		t.Fatalf("stdout = %q, want %q", out, want)
	}
	for n := 1; n <= 2; n++ {
		if c := countLines(t, logFile, fmt.Sprintf("start %d ", n)); c != 1 {
			t.Errorf("step %d started %d times, want exactly once", n, c)
		}
	}
	if c := countLines(t, logFile, "done 3"); c != 1 {
		t.Errorf("step 3 finished %d times, want once", c)
	}
	mustVerify(t, dir)
	b, _ := os.ReadFile(logFile)
	t.Logf("resumed in %s; step log:\n%s", took.Round(time.Millisecond), b)
}

const sleepFlow = `
def main():
    a = durable("step", 1)
    sleep("3s")
    b = durable("step", 2)
    return [a, b]
`

func TestCrashDuringSleepResumesWhenDue(t *testing.T) {
	t.Parallel()
	dir, logFile, env := stepDir(t, sleepFlow, "none")
	// A lease and a dead-worker grace far longer than any loaded machine needs to
	// resume: the resumed run can only finish within the test's deadline without
	// waiting for them.
	args := []string{"exec", "flow.star", "--id", "sleepy", "--activity", "step=./step.sh", "--dead-worker-grace", "1h", "--lease", "1h"}

	began := time.Now()
	cmd, _, _ := startStent(t, dir, env, args...)
	waitForLine(t, logFile, "done 1", 30*time.Second)
	// Wait for the timer to be recorded, then kill while it sleeps.
	for deadline := time.Now().Add(time.Minute); !strings.Contains(stent(t, dir, "history", "sleepy").stdout, "timer_scheduled"); {
		if time.Now().After(deadline) {
			t.Fatal("the sleep's timer was not recorded within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if countLines(t, logFile, "start 2") != 0 {
		t.Fatal("step 2 ran before the sleep was over")
	}
	time.Sleep(time.Until(began.Add(3500 * time.Millisecond)))

	cmd2, out, errb := startStent(t, dir, env, args...)
	waitExited(t, cmd2, errb, 10*time.Minute)
	if want := `["step 1","step 2"]` + "\n"; out.String() != want {
		t.Fatalf("stdout = %q, want %q", out, want)
	}
	if c := countLines(t, logFile, "start 1 "); c != 1 {
		t.Errorf("step 1 ran %d times, want once", c)
	}
}

func TestEditedScriptKeepsPinnedSource(t *testing.T) {
	t.Parallel()
	flow := func(version string) string {
		return fmt.Sprintf("def main():\n    durable(\"step\", 1)\n    return %q\n", version)
	}
	dir, logFile, env := stepDir(t, flow("v1"), "1")
	args := []string{"exec", "flow.star", "--id", "pinned", "--activity", "step=./step.sh", "--dead-worker-grace", "2s"}

	cmd, _, _ := startStent(t, dir, env, args...)
	waitForLine(t, logFile, "start 1", 30*time.Second)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	writeFile(t, filepath.Join(dir, "flow.star"), flow("v2"), 0o644)
	cmd2, out, errb := startStent(t, dir, env, args...)
	if err := cmd2.Wait(); err != nil {
		t.Fatalf("resumed exec: %v\n%s", err, errb)
	}
	if out.String() != "\"v1\"\n" {
		t.Fatalf("resumed execution printed %q, want \"v1\" (the source it started with)", out)
	}
	fresh, outFresh, errFresh := startStent(t, dir, env, "exec", "flow.star", "--activity", "step=./step.sh")
	if err := fresh.Wait(); err != nil {
		t.Fatalf("new exec: %v\n%s", err, errFresh)
	}
	if outFresh.String() != "\"v2\"\n" {
		t.Fatalf("a new execution printed %q, want \"v2\" (the edited source)", outFresh)
	}
}

// listRunning returns the executions the database still holds as running.
func listRunning(t *testing.T, dir string) []string {
	t.Helper()
	r := stent(t, dir, "list", "--all", "--json", "--status", "running")
	if r.code != 0 {
		t.Fatalf("stent list: exit %d: %s", r.code, r.stderr)
	}
	var page struct {
		Executions []struct {
			ID string `json:"id"`
		} `json:"executions"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &page); err != nil {
		t.Fatalf("stent list --json printed %q: %v", r.stdout, err)
	}
	var ids []string
	for _, ex := range page.Executions {
		ids = append(ids, ex.ID)
	}
	return ids
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		script string
		args   []string
		code   int
		want   []string // substrings of stderr
	}{
		{name: "syntax error", script: "def main():\n    return (1 +\n", code: 2, want: []string{"flow.star:3:1"}},
		{name: "missing entry", script: "def run():\n    return 1\n", code: 2, want: []string{`entry function "main" not found`, "run"}},
		{name: "unknown activity", script: "def main():\n    return durable(\"nope\", 1)\n", args: []string{"--activity", "known=/bin/cat"}, code: 1,
			want: []string{`unknown activity "nope"`, "registered: known", "flow.star:2:19"}},
		{name: "non-JSON args", script: "def main(x):\n    return x\n", args: []string{"--args", "[1, oops]"}, code: 2, want: []string{"JSON array"}},
		{name: "args not an array", script: "def main(x):\n    return x\n", args: []string{"--args", `{"a":1}`}, code: 2, want: []string{"JSON array"}},
		{name: "set passed to durable", script: "def main():\n    return durable(\"known\", set([1]))\n", args: []string{"--activity", "known=/bin/cat"}, code: 1,
			want: []string{"argument 1 has type set", "flow.star:2:19"}},
		{name: "function passed to durable", script: "def f():\n    pass\n\ndef main():\n    return durable(\"known\", f)\n", args: []string{"--activity", "known=/bin/cat"}, code: 1,
			want: []string{"argument 1 has type function", "flow.star:5:19"}},
		{name: "infinite loop", script: "def main():\n    while True:\n        pass\n", args: []string{"--max-steps", "100000"}, code: 1,
			want: []string{"step limit", "flow.star:"}},
		{name: "unknown db scheme", script: "def main():\n    return 1\n", args: []string{"--db", "mysql://root@localhost/x"}, code: 2,
			want: []string{`unknown database scheme "mysql"`}},
		{name: "bad activity spec", script: "def main():\n    return 1\n", args: []string{"--activity", "nocommand"}, code: 2,
			want: []string{"NAME=COMMAND"}},
		{name: "missing script", script: "", args: []string{"missing.star"}, code: 2, want: []string{"missing.star"}},
		{name: "undefined name", script: "def main():\n    return nope\n", code: 2, want: []string{"flow.star:2:12", "undefined: nope"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			script := "flow.star"
			if tc.script != "" {
				writeFile(t, filepath.Join(dir, script), tc.script, 0o644)
			}
			args := []string{"exec"}
			if tc.script != "" {
				args = append(args, script)
			}
			args = append(args, tc.args...)
			r := stent(t, dir, args...)
			if r.code != tc.code {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", r.code, tc.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, r.stderr)
				}
			}
			if r.stdout != "" {
				t.Errorf("stdout should be empty on failure, got %q", r.stdout)
			}
			if _, err := os.Stat(filepath.Join(dir, "stent.db")); err == nil {
				if running := listRunning(t, dir); len(running) > 0 {
					t.Errorf("bad input left executions running: %v", running)
				}
			}
		})
	}
}

func TestLogsAreShownOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "flow.star"), "def main():\n    print('hello', 1)\n    sleep('10ms')\n    log('done')\n    return 1\n", 0o644)
	if r := stent(t, dir, "exec", "flow.star", "--id", "lg", "--cache-size", "0"); r.code != 0 {
		t.Fatalf("exec: %s", r.stderr)
	}
	r := stent(t, dir, "logs", "lg")
	if r.code != 0 || strings.Count(r.stdout, "hello 1") != 1 || strings.Count(r.stdout, "done") != 1 {
		t.Fatalf("stent logs: exit %d\n%s%s\nwant each line once (the script was replayed after the sleep)", r.code, r.stdout, r.stderr)
	}
	if r := stent(t, dir, "logs", "nope"); r.code != 2 || !strings.Contains(r.stderr, "no execution") {
		t.Fatalf("logs of an unknown execution: exit %d %s", r.code, r.stderr)
	}
}
