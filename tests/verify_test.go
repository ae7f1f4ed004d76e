package tests

import (
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// verifyFlows leave executions waiting in each way `stent verify` must accept.
const verifyFlows = `
def waiter():
    return wait_signal("go")

def sleeper():
    sleep("1h")
    return 1

def kid():
    return wait_signal("go")

def parent():
    return gather([start(kid)])

def hanger():
    return durable("hang")

def steps():
    durable("slow", 1)
    durable("slow", 2)
    return wait_signal("go")
`

// hangScript is an activity that says it started, then runs for two minutes.
const hangScript = "#!/bin/sh\ncat >/dev/null\ntouch \"$HANG_MARK\"\nsleep 120\n"

// TestVerifySQLite and TestVerifyPostgres build a store whose executions wait for a
// signal, a sleep, a child, an activity attempt in flight and a signal after two steps:
// `stent verify` passes, with the worker running and after it is killed. Then direct
// SQL breaks it (a timer task and an activity task deleted, a step's events deleted, a
// parent deleted under its running child): verify exits 1 naming each.
func TestVerifySQLite(t *testing.T) {
	t.Parallel()
	dir := flowDir(t, verifyFlows)
	dbPath := filepath.Join(dir, "stent.db")
	testVerify(t, dir, dbPath, func(stmts ...string) {
		db, err := sql.Open("sqlite", dbPath+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, s := range stmts {
			if _, err := db.Exec(s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	})
}

func TestVerifyPostgres(t *testing.T) {
	t.Parallel()
	pg := newPostgresDB(t)
	dir := flowDir(t, verifyFlows)
	testVerify(t, dir, pg.dsn, func(stmts ...string) {
		for _, s := range stmts {
			pgExecAdmin(t, pg.dsn, s)
		}
	})
}

func testVerify(t *testing.T, dir, dsn string, execSQL func(stmts ...string)) {
	writeFile(t, filepath.Join(dir, "hang.sh"), hangScript, 0o755)
	mark := filepath.Join(dir, "hanging")
	entries := []string{"waiter", "sleeper", "parent", "hanger", "steps"}
	for _, e := range entries {
		if r := stentOn(t, dir, dsn, "dispatch", "flow.star", "--entry", e, "--id", e); r.code != 0 {
			t.Fatalf("dispatch %s: %s", e, r.stderr)
		}
	}
	w, _, _ := startStent(t, dir, []string{"STENT_DB=" + dsn, "SLOW=0", "HANG_MARK=" + mark},
		"worker", "--activity", "slow=./slow.sh", "--activity", "hang=./hang.sh", "--activity-env", "HANG_MARK", "--poll", "100ms")
	waitFor := map[string]string{"waiter": "signal_wait", "sleeper": "timer_scheduled", "parent/1": "signal_wait", "steps": "signal_wait"}
	deadline := time.Now().Add(3 * time.Minute)
	for id, kind := range waitFor {
		for !hasKind(t, dir, dsn, id, kind) {
			if time.Now().After(deadline) {
				t.Fatalf("execution %s never recorded %s", id, kind)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, err := os.Stat(mark); err != nil; _, err = os.Stat(mark) {
		if time.Now().After(deadline) {
			t.Fatal("the hang activity never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := stentOn(t, dir, dsn, "verify"); r.code != 0 || strings.TrimSpace(r.stdout) != "ok: 6 executions checked" {
		t.Fatalf("verify with the worker running: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	_ = w.Process.Signal(syscall.SIGKILL)
	_ = w.Wait()
	if r := stentOn(t, dir, dsn, "verify"); r.code != 0 || strings.TrimSpace(r.stdout) != "ok: 6 executions checked" {
		t.Fatalf("verify after the worker's kill: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}

	execSQL(`DELETE FROM tasks WHERE execution_id = 'sleeper'`,
		`DELETE FROM tasks WHERE execution_id = 'hanger' AND kind = 'activity'`,
		`DELETE FROM events WHERE execution_id = 'steps' AND seq = 1`,
		`DELETE FROM executions WHERE id = 'parent'`)
	r := stentOn(t, dir, dsn, "verify")
	if r.code != 1 || !strings.Contains(r.stderr, "violations") {
		t.Fatalf("verify of the broken store: exit %d stdout %q stderr %q; want exit 1", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"sleeper: step 1 (sleep) has no timer task",
		"hanger: step 1 (activity hang) waits for an attempt, but it has no activity task",
		"steps: history: step 1 is missing",
		"parent/1: orphan child: its parent parent does not exist",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("verify does not say %q; it printed:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "waiter") {
		t.Errorf("verify blames the waiter, which waits for a signal as it should:\n%s", r.stdout)
	}
}

// hasKind says whether execution id's history holds an event of kind.
func hasKind(t *testing.T, dir, dsn, id, kind string) bool {
	t.Helper()
	r := stentOn(t, dir, dsn, "history", "--json", id)
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var ev struct{ Kind string }
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Kind == kind {
			return true
		}
	}
	return false
}
