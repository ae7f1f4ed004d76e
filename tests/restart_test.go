package tests

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// historyKinds returns the event kinds of an execution, via `stent history --json`.
func historyKinds(t *testing.T, dir, id string) []string {
	t.Helper()
	r := stent(t, dir, "history", "--json", id)
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var ev struct{ Kind string }
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Kind != "" {
			kinds = append(kinds, ev.Kind)
		}
	}
	return kinds
}

// waitForKindOrEnd waits, with a generous deadline, until execution id has recorded n
// events of kind, or has ended (then it returns true).
func waitForKindOrEnd(t *testing.T, dir, id, kind string, n int) (ended bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		c := 0
		for _, k := range historyKinds(t, dir, id) {
			switch k {
			case kind:
				c++
			case "completed", "failed":
				if kind != k {
					return true
				}
			}
		}
		if c >= n {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("execution %s never recorded %d %s events; history: %v", id, n, kind, historyKinds(t, dir, id))
	return false
}

func killWorker(t *testing.T, dir string, env []string) func() {
	t.Helper()
	w, _, _ := startStent(t, dir, env, "worker", "--activity", "slow=./slow.sh", "--dead-worker-grace", "2s", "--poll", "100ms")
	return func() { _ = w.Process.Signal(syscall.SIGKILL); _ = w.Wait() }
}

const slowScript = "#!/bin/sh\nn=$(cat | tr -d '[] \\n')\nsleep ${SLOW:-0.3}\necho \"$n\"\n"

// killMidRun dispatches execution x in a directory setup makes, starts a worker whose
// slow activity takes a while, and waits until x has recorded n events of kind; it
// returns the directory and the function that kills that worker. When x ended first
// (a busy machine starved the test's own polling), it tries again in a fresh directory
// with a slower activity, rather than asserting that the machine keeps pace.
func killMidRun(t *testing.T, setup func() string, dispatch []string, kind string, n int) (string, func()) {
	t.Helper()
	levels := []string{"0.3", "1.5", "6"}
	for i, slow := range levels {
		dir := setup()
		if r := stent(t, dir, append([]string{"dispatch", "flow.star", "--id", "x"}, dispatch...)...); r.code != 0 {
			t.Fatalf("dispatch: %s", r.stderr)
		}
		kill := killWorker(t, dir, []string{"SLOW=" + slow})
		if !waitForKindOrEnd(t, dir, "x", kind, n) {
			return dir, kill
		}
		kill()
		if i == len(levels)-1 {
			t.Fatalf("execution x ended before it recorded %d %s events, even with %ss activities; history: %v", n, kind, slow, historyKinds(t, dir, "x"))
		}
		t.Logf("execution x ended before it recorded %d %s events with %ss activities; again, slower", n, kind, slow)
	}
	panic("unreachable")
}

// sleepingChildren starts three children that sleep for an hour.
const sleepingChildren = "def child(i):\n    sleep('1h')\n    return i\n\ndef main():\n    return gather([start(child, i) for i in range(3)])\n"

// controlChildren is the between step of a sleepingChildren case: once the children
// are underway, `stent COMMAND ID`, then check, if any.
func controlChildren(command string, check func(t *testing.T, dir string)) func(t *testing.T, dir, id string) {
	return func(t *testing.T, dir, id string) {
		time.Sleep(500 * time.Millisecond)
		mustStent(t, dir, command, id)
		if check != nil {
			check(t, dir)
		}
	}
}

// flowDir is a fresh directory holding script as flow.star and the slow.sh activity.
func flowDir(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "flow.star"), script, 0o644)
	writeFile(t, filepath.Join(dir, "slow.sh"), slowScript, 0o755)
	return dir
}

// mustVerify runs `stent verify` on dir's store and fails the test unless it is clean.
func mustVerify(t *testing.T, dir string) {
	t.Helper()
	if r := stent(t, dir, "verify"); r.code != 0 || !strings.HasPrefix(r.stdout, "ok: ") {
		t.Fatalf("stent verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// mustStent runs the CLI like stent and fails the test unless it exits 0.
func mustStent(t *testing.T, dir string, args ...string) result {
	t.Helper()
	r := stent(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("%s: %s", args[0], r.stderr)
	}
	return r
}

// TestControlFlowSurvivesAWorkerKill runs each control-flow case with a worker that is
// killed (SIGKILL) in the middle, does the case's action while no worker runs, and
// resumes with a fresh worker: the outcome is the one of an uninterrupted run.
func TestControlFlowSurvivesAWorkerKill(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		script   string
		dispatch []string
		killAt   string // event kind to wait for before the kill
		killN    int
		between  func(t *testing.T, dir, id string)
		// mayEnd: the execution may end before killAt (a deadline counted from the
		// dispatch can pass before a worker on a loaded machine even starts); the
		// outcome is checked all the same.
		mayEnd bool
		want   string // `stent wait` stdout, or "status:<status>"
	}{
		{name: "signal buffered while no worker runs", script: "def main():\n    sleep('1s')\n    return wait_signal('go')\n",
			killAt: "timer_scheduled", killN: 1,
			between: func(t *testing.T, dir, id string) {
				mustStent(t, dir, "signal", id, "go", `{"n":1}`)
			}, want: `{"n":1}`},
		{name: "signal timeout", script: "def main():\n    return [wait_signal('never', timeout='2s'), 'after']\n",
			killAt: "signal_wait", killN: 1, want: `[null,"after"]`},
		{name: "cancel during sleep", script: "def main():\n    sleep('1h')\n    return 1\n",
			killAt: "timer_scheduled", killN: 1,
			between: func(t *testing.T, dir, id string) {
				mustStent(t, dir, "cancel", id)
			}, want: "status:cancelled"},
		// A request: the scripts (parent and children) see it when a worker runs.
		{name: "cancel with children", script: sleepingChildren, killAt: "child_scheduled", killN: 3,
			between: controlChildren("cancel", nil), want: "status:cancelled"},
		{name: "terminate with children", script: sleepingChildren, killAt: "child_scheduled", killN: 3,
			between: controlChildren("terminate", func(t *testing.T, dir string) {
				if running := listRunning(t, dir); len(running) > 0 {
					t.Fatalf("children still running after terminate: %v", running)
				}
			}), want: "status:cancelled"},
		{name: "max duration during a sleep", script: "def main():\n    sleep('1h')\n    return 1\n", dispatch: []string{"--max-duration", "2s"},
			killAt: "timer_scheduled", killN: 1, mayEnd: true, want: "status:timed_out"},
		{name: "fan-out", script: "def main():\n    return gather([start('slow', i) for i in range(20)])\n",
			killAt: "activity_completed", killN: 3, want: `[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19]`},
		{name: "continue_as_new loop", script: "def main(i, total):\n    if i == 60:\n        return total\n    total += durable('slow', i)\n    continue_as_new(i + 1, total)\n",
			dispatch: []string{"--args", "[0, 0]"}, killAt: "started", killN: 1, want: `1770`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var (
				dir  string
				kill func()
			)
			if !tc.mayEnd {
				dir, kill = killMidRun(t, func() string { return flowDir(t, tc.script) }, tc.dispatch, tc.killAt, tc.killN)
			} else {
				dir = flowDir(t, tc.script)
				if r := stent(t, dir, append([]string{"dispatch", "flow.star", "--id", "x"}, tc.dispatch...)...); r.code != 0 {
					t.Fatalf("dispatch: %s", r.stderr)
				}
				kill = killWorker(t, dir, nil)
				if waitForKindOrEnd(t, dir, "x", tc.killAt, tc.killN) {
					t.Logf("the execution ended before %s; the kill comes after its end", tc.killAt)
				}
			}
			if tc.name == "continue_as_new loop" {
				time.Sleep(3 * time.Second) // part of the way through the 60 runs
			}
			kill()
			mustVerify(t, dir) // the store as the kill left it
			if tc.between != nil {
				tc.between(t, dir, "x")
			}
			killWorker(t, dir, nil) // a fresh worker; killed at cleanup
			r := stent(t, dir, "wait", "x")
			if strings.HasPrefix(tc.want, "status:") {
				st := stent(t, dir, "status", "--json", "x")
				var m map[string]any
				_ = json.Unmarshal([]byte(st.stdout), &m)
				if m["status"] != strings.TrimPrefix(tc.want, "status:") {
					t.Fatalf("status %v, want %s (wait: %q %q)", m["status"], tc.want, r.stdout, r.stderr)
				}
			} else if r.code != 0 || strings.TrimSpace(r.stdout) != tc.want {
				t.Fatalf("wait: exit %d stdout %q stderr %q; want %s", r.code, r.stdout, r.stderr, tc.want)
			}
			mustVerify(t, dir)
		})
	}
}

// TestDelaySurvivesAWorkerKill: a delayed execution does not start early, across a kill.
func TestDelaySurvivesAWorkerKill(t *testing.T) {
	t.Parallel()
	dir := flowDir(t, "def main():\n    return 'ran'\n")
	start := time.Now()
	if r := stent(t, dir, "dispatch", "flow.star", "--id", "later", "--delay", "3s"); r.code != 0 {
		t.Fatalf("dispatch: %s", r.stderr)
	}
	kill := killWorker(t, dir, nil)
	time.Sleep(time.Second)
	kill()
	if kinds := historyKinds(t, dir, "later"); len(kinds) != 1 {
		t.Fatalf("the delayed execution advanced before its start: %v", kinds)
	}
	killWorker(t, dir, nil)
	r := stent(t, dir, "wait", "later")
	if r.code != 0 || strings.TrimSpace(r.stdout) != `"ran"` {
		t.Fatalf("wait: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if took := time.Since(start); took < 3*time.Second {
		t.Fatalf("finished %s after dispatch, before its 3s delay", took)
	}
}
