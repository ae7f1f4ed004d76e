package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/backend"
)

// A standby promoted after an asynchronous failover lacks the old primary's last
// commits: a claim among them is undone, as if it never happened. The claim made
// again on the promoted server must not hand out the fence the lost claim did, or the
// worker still holding that fence could complete a task someone else now holds.
func TestFenceNotHandedOutAgainAfterLostCommit(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := openTestBackend(t, clock)
	if _, err := b.CreateExecution(ctx, newExec("a")); err != nil {
		t.Fatal(err)
	}
	var before int64
	if err := b.pool.QueryRow(ctx, `SELECT fence FROM tasks WHERE execution_id = 'a'`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	lost, err := b.ClaimTasks(ctx, backend.ClaimRequest{WorkerID: "w1", Limit: 1, Lease: time.Minute})
	if err != nil || len(lost) != 1 {
		t.Fatalf("ClaimTasks = %v, %v", lost, err)
	}
	// The standby never received the claim.
	if _, err := b.pool.Exec(ctx, `UPDATE tasks SET status = 'pending', fence = $1, lease_owner = NULL,
		lease_expires_at = NULL WHERE id = $2`, before, lost[0].ID); err != nil {
		t.Fatal(err)
	}
	again, err := b.ClaimTasks(ctx, backend.ClaimRequest{WorkerID: "w2", Limit: 1, Lease: time.Minute})
	if err != nil || len(again) != 1 || again[0].ID != lost[0].ID {
		t.Fatalf("ClaimTasks again = %v, %v", again, err)
	}
	if again[0].Fence == lost[0].Fence {
		t.Fatalf("the claim after the lost one handed out its fence %d again", again[0].Fence)
	}
	if err := b.DeleteTask(ctx, lost[0].Ref()); !errors.Is(err, backend.ErrLeaseLost) {
		t.Fatalf("the lost claim's holder removed the task w2 holds: %v", err)
	}
}

// A commit that relies on what was read before the pool reached another server (a
// promoted standby, a restart) fails as stale once a connection to that server is in
// use, and writes nothing; one marked after it goes through.
func TestLossMarkAfterServerChange(t *testing.T) {
	ctx := context.Background()
	b := openTestBackend(t, &testClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)})
	var lc backend.LossCounter = b
	mark := lc.Losses()
	// Every connection from now on reaches "another" server.
	b.inc.mu.Lock()
	b.inc.last = "a server that is gone"
	b.inc.mu.Unlock()
	b.pool.Reset()
	ran := false
	err := b.inTx(backend.WithLossMark(ctx, mark), "a commit", func(*txState) error { ran = true; return nil })
	if !errors.Is(err, backend.ErrStaleExecution) || ran {
		t.Fatalf("a commit marked before the server changed: ran %v, err %v; want ErrStaleExecution and nothing run", ran, err)
	}
	if got := lc.Losses(); got != mark+1 {
		t.Fatalf("Losses() = %d after one change of server, want %d", got, mark+1)
	}
	insert := func(bt *pgx.Batch) error {
		bt.Queue(`CREATE TABLE loss_probe (n int)`)
		return nil
	}
	read := func(br pgx.BatchResults, _ *txState) error { _, err := br.Exec(); return err }
	if err := b.pipelined(backend.WithLossMark(ctx, mark), "a pipelined commit", insert, read); !errors.Is(err, backend.ErrStaleExecution) {
		t.Fatalf("a pipelined commit marked before the change: %v; want ErrStaleExecution", err)
	}
	var n int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 'loss_probe'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the refused pipelined commit wrote: %d tables, %v", n, err)
	}
	if err := b.pipelined(backend.WithLossMark(ctx, lc.Losses()), "a pipelined commit", insert, read); err != nil {
		t.Fatalf("a pipelined commit marked after the change: %v", err)
	}
}

// A server that refuses writes (a standby, or an old primary back as one) is
// unavailable, not an error of the statement: the caller backs off and retries, and the
// pool's connections to it are dropped so that the next ones reach the writable host.
func TestReadOnlyServerIsUnavailable(t *testing.T) {
	ctx := context.Background()
	b := openTestBackend(t, &testClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}, WithMaxConns(1))
	// The pool's one connection turns read-only, as a demoted server's would be.
	if _, err := b.pool.Exec(ctx, `SET SESSION default_transaction_read_only = on`); err != nil {
		t.Fatal(err)
	}
	_, err := b.CreateExecution(ctx, newExec("a"))
	if !errors.Is(err, backend.ErrUnavailable) || !strings.Contains(err.Error(), "target_session_attrs=read-write") {
		t.Fatalf("a write on a read-only server: %v; want ErrUnavailable saying what to do", err)
	}
	if _, err := b.CreateExecution(ctx, newExec("a")); err != nil {
		t.Fatalf("the write again, on a new connection: %v", err)
	}
}
