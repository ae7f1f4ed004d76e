package tests

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // PRAGMA integrity_check on the copy
)

// backupFlows are the executions of TestBackupWhileWorkersRun: some wait for a signal,
// some sleep, some run command activities one after another.
const backupFlows = `
def waiter():
    return wait_signal("go")

def sleeper():
    sleep("10s")
    return "slept"

def steps():
    return [durable("slow", i) for i in range(30)]
`

// stepsResult is what steps returns.
var stepsResult = strings.ReplaceAll(fmt.Sprint(seq(30)), " ", ",")

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// TestBackupWhileWorkersRun backs a SQLite store up with `stent backup` while a worker
// runs executions, kills that worker, and checks the copy: PRAGMA integrity_check is
// ok, and a worker on the copy finishes every execution that was running in it (the
// waiting ones once they are sent their signal there).
func TestBackupWhileWorkersRun(t *testing.T) {
	t.Parallel()
	dir := flowDir(t, backupFlows)
	want := map[string]string{}
	for i := 0; i < 4; i++ {
		for entry, result := range map[string]string{"waiter": `{"n":%d}`, "sleeper": `"slept"`, "steps": stepsResult} {
			id := fmt.Sprintf("%s-%d", entry, i)
			mustStent(t, dir, "dispatch", "flow.star", "--entry", entry, "--id", id)
			want[id] = strings.ReplaceAll(result, "%d", fmt.Sprint(i))
		}
	}
	start := time.Now()
	kill := killWorker(t, dir, []string{"SLOW=0.2"})
	for i := 0; i < 4; i++ {
		waitForKindOrEnd(t, dir, fmt.Sprintf("waiter-%d", i), "signal_wait", 1)
	}
	copyDir := t.TempDir()
	copyDB := filepath.Join(copyDir, "stent.db")
	if r := stent(t, dir, "backup", copyDB); r.code != 0 || !strings.Contains(r.stdout, "backed up to") {
		t.Fatalf("backup: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	t.Logf("backed up %s after the dispatch", time.Since(start).Round(time.Millisecond))
	kill()
	if r := stent(t, dir, "backup", copyDB); r.code != 2 || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("backup over an existing file: exit %d stderr %q; want exit 2 naming --force", r.code, r.stderr)
	}

	db, err := sql.Open("sqlite", copyDB)
	if err != nil {
		t.Fatal(err)
	}
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check of the copy: %q, %v", check, err)
	}
	_ = db.Close()

	mustVerify(t, copyDir) // the snapshot is consistent
	writeFile(t, filepath.Join(copyDir, "slow.sh"), slowScript, 0o755)
	runningInCopy := listRunning(t, copyDir)
	if len(runningInCopy) == 0 {
		t.Fatal("the copy holds no running execution: the backup came after every end")
	}
	t.Logf("running in the copy: %v", runningInCopy)
	for i := 0; i < 4; i++ {
		mustStent(t, copyDir, "signal", fmt.Sprintf("waiter-%d", i), "go", fmt.Sprintf(`{"n":%d}`, i))
	}
	killWorker(t, copyDir, []string{"SLOW=0.2"}) // a worker on the copy; killed at cleanup
	for id, result := range want {
		r := stent(t, copyDir, "wait", id)
		if r.code != 0 || strings.TrimSpace(r.stdout) != result {
			t.Errorf("%s on the copy: exit %d stdout %q stderr %q; want %s", id, r.code, r.stdout, r.stderr, result)
		}
	}
	if left := listRunning(t, copyDir); len(left) > 0 {
		t.Fatalf("still running on the copy: %v", left)
	}
	mustVerify(t, copyDir)
	if tmp, _ := filepath.Glob(copyDB + ".tmp-*"); len(tmp) > 0 {
		t.Fatalf("temporary copies left behind: %v", tmp)
	}
}
