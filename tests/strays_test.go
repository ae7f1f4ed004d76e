package tests

// A claim whose answer is lost (issue 28): PostgreSQL committed the claim, then the
// connection was cut before the worker read the reply. The tasks are leased to a live
// worker that does not know it holds them; the worker gives them back once the
// database answers again, long before their lease (5 minutes) ends.

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	stentapi "github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/backend/postgres"
)

// lostClaim is the PostgreSQL backend whose first claim that takes tasks loses its
// answer: the tasks are claimed in the database, and the caller gets the error a cut
// connection gives. Embedding keeps every optional extension of the backend.
type lostClaim struct {
	*postgres.Backend
	lose atomic.Int64 // claims left to lose
	lost atomic.Int64 // tasks they claimed
	at   atomic.Int64 // when the last one was lost, unix ns
}

func (l *lostClaim) ClaimTasks(ctx context.Context, req backend.ClaimRequest) ([]backend.Task, error) {
	tasks, err := l.Backend.ClaimTasks(ctx, req)
	if err == nil && len(tasks) > 0 && l.lose.Add(-1) >= 0 {
		l.lost.Add(int64(len(tasks)))
		l.at.Store(time.Now().UnixNano())
		return nil, fmt.Errorf("claiming tasks: %w: read tcp: connection reset by peer (after the commit)", backend.ErrUnavailable)
	}
	return tasks, err
}

func TestPostgresLostClaimReleased(t *testing.T) {
	t.Parallel()
	db := newPostgresDB(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "flow.star"), pgFiveSteps, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	pb, err := postgres.Open(ctx, withParams(t, db.dsn, "pool_max_conns", "4"))
	if err != nil {
		t.Fatal(err)
	}
	lc := &lostClaim{Backend: pb}
	lc.lose.Store(1)
	logs := &logCapture{}
	eng, err := stentapi.Open(ctx, db.dsn, stentapi.WithBackend(lc), stentapi.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if err := eng.Register("step", func(ctx context.Context, n int) (int, error) { return 2 * n, nil }); err != nil {
		t.Fatal(err)
	}
	// Dispatched before the worker starts, the workflows' first tasks wait in the
	// table: the worker's first claim takes them all, and its answer is lost.
	const workflows = 10
	ids := dispatchMany(ctx, t, eng, filepath.Join(dir, "flow.star"), indexArgs(workflows))
	serveCtx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	// The default lease: 5 minutes.
	go func() { served <- eng.Serve(serveCtx, stentapi.WorkerOptions{Concurrency: 16}) }()
	defer func() {
		stopServe()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	for i, id := range ids {
		res, err := eng.WaitFor(ctx, id)
		if err != nil {
			t.Fatalf("workflow %d (%s): %v\n%s", i, id, err, strings.Join(logs.lines(), "\n"))
		}
		var got []int
		if err := res.Decode(&got); err != nil || len(got) != 5 || got[4] != (i*10+4)*2 {
			t.Fatalf("workflow %d (%s) returned %v (%v)", i, id, got, err)
		}
	}
	if lc.lost.Load() != workflows {
		t.Fatalf("the lost claim took %d tasks, want the %d first workflow tasks", lc.lost.Load(), workflows)
	}
	took := time.Since(time.Unix(0, lc.at.Load()))
	t.Logf("%d tasks of a lost claim; all %d workflows completed %s after the loss (lease: 5m)", lc.lost.Load(), workflows, took.Round(time.Millisecond))
	if n := logs.count("released tasks of a claim whose answer was lost"); n != 1 {
		t.Errorf("%d log lines say the lost claim's tasks were released, want 1:\n%s", n, strings.Join(logs.lines(), "\n"))
	}
	for _, id := range ids {
		completed, _ := stepCounts(ctx, t, eng, id)
		for seq, n := range completed {
			if n != 1 {
				t.Errorf("execution %s: step %d recorded %d times", id, seq, n)
			}
		}
		if ex, err := lc.GetExecution(ctx, id); err != nil || ex.Crashes != 0 {
			t.Errorf("execution %s: crashes %v (%v), want 0: the worker never started the lost tasks", id, ex, err)
		}
	}
}
