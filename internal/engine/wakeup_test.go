package engine

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// No task waits for the safety-net poll: with it set to an hour, a tree whose results
// race with the workflow tasks that wait for them (an outcome arriving while another
// task of this process holds the execution's workflow task only flags it to run again)
// still completes at once.
func TestNoWakeupLostToARerun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	eng, err := Open(context.Background(), dir+"/stent.db")
	if err != nil {
		t.Fatal(err)
	}
	_ = eng.Register("jitter", func(ctx context.Context, i int) (int, error) {
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		return i, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- eng.Serve(ctx, WorkerOptions{Concurrency: 32, PollInterval: time.Hour}) }()
	defer func() { cancel(); <-served; _ = eng.Close() }()
	if err := eng.WaitUntilReady(ctx); err != nil {
		t.Fatal(err)
	}
	f := &fixture{eng: eng, dir: dir}
	script := f.script(t, `
def leaf(n):
    total = 0
    for r in gather([start("jitter", i) for i in range(n)]):
        total += r
    return total

def mid(leaves, n):
    return len(gather([start(leaf, n) for _ in range(leaves)]))

def main(mids, leaves, n):
    return len(gather([start(mid, leaves, n) for _ in range(mids)]))
`)
	for round := range 6 {
		wctx, wcancel := context.WithTimeout(ctx, runDeadline)
		res, err := eng.Run(wctx, script, []any{4, 6, 5})
		wcancel()
		if err != nil {
			if dump := os.Getenv("STENT_DUMP_TASKS"); dump != "" {
				db, _ := sql.Open("sqlite", dir+"/stent.db?_query_only=1")
				rows, qerr := db.Query("SELECT id, kind, execution_id, seq, status, run_at, rerun, lease_owner FROM tasks")
				if qerr == nil {
					for rows.Next() {
						var id, seq, runAt, rerun int64
						var kind, ex, status string
						var owner sql.NullString
						_ = rows.Scan(&id, &kind, &ex, &seq, &status, &runAt, &rerun, &owner)
						t.Logf("task %d %s %s seq %d %s run_at %d rerun %d owner %s", id, kind, ex, seq, status, runAt, rerun, owner.String)
					}
					rows.Close()
				}
				db.Close()
			}
			t.Fatalf("round %d: %v (a task waited for the poll: a wake-up was lost)", round, err)
		}
		mustValue(t, res, "4")
	}
}
