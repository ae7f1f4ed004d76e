package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// startListener runs b.Listen until the test ends and returns its notifications.
func startListener(t *testing.T, b *Backend) <-chan backend.Notification {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	notes := make(chan backend.Notification, 1000)
	done := make(chan error, 1)
	go func() {
		done <- b.Listen(ctx, func(n backend.Notification) { notes <- n })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Listen returned %v after its context ended, want nil", err)
			}
		case <-time.After(patience):
			t.Error("Listen did not return after its context ended")
		}
	})
	waitListening(t, b)
	return notes
}

// patience is how long a test waits for a state it needs (a notification, a listener
// connected) before it fails: generous, so that a loaded machine only makes it slower.
const patience = 2 * time.Minute

// waitListening waits until b's listener connection has subscribed: its LISTEN has
// finished (state idle), since a LISTEN takes effect only when it commits and a
// notification sent while it is still running is not delivered to it.
func waitListening(t *testing.T, b *Backend) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for time.Now().Before(deadline) {
		var n int
		err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND query ILIKE 'LISTEN%' AND state = 'idle'`, b.listenerApplicationName()).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the listener did not connect within %s", patience)
}

// expectNote waits up to within for a notification equal to want, skipping others.
func expectNote(t *testing.T, notes <-chan backend.Notification, want backend.Notification, within time.Duration) {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case n := <-notes:
			if n == want {
				return
			}
		case <-timer.C:
			t.Fatalf("no notification %+v within %v", want, within)
		}
	}
}

func openSameSchema(t *testing.T, b *Backend, opts ...Option) *Backend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	other, err := Open(ctx, testDSN(t), append([]Option{WithSchema(b.schema), WithClock(b.clock), WithMaxConns(4)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	return other
}

func newExec(id string) backend.NewExecution {
	return backend.NewExecution{
		ID:      id,
		Bundle:  backend.Bundle{Main: "main.star", Files: map[string]string{"main.star": "h-" + id}},
		Sources: map[string][]byte{"h-" + id: []byte("def main(): return 1\n")},
		Entry:   "main",
		Args:    []byte(`[]`),
	}
}

// A dispatch in one process wakes a listener in another at once; so does the end of an
// execution someone awaits (backend.Awaiter), and only of such one.
func TestListenReceivesNotifications(t *testing.T) {
	ctx := context.Background()
	b1 := openTestBackend(t, backend.SystemClock{})
	b2 := openSameSchema(t, b1)
	notes := startListener(t, b1)

	finish := func(id string) {
		t.Helper()
		tasks, err := b2.ClaimTasks(ctx, backend.ClaimRequest{WorkerID: "w", Limit: 1, Lease: time.Minute})
		if err != nil || len(tasks) != 1 || tasks[0].ExecutionID != id {
			t.Fatalf("ClaimTasks = %v, %v", tasks, err)
		}
		_, err = b2.CompleteWorkflowTask(ctx, backend.WorkflowTaskResult{
			Task: tasks[0].Ref(), ExecutionID: id,
			Finish: &backend.Finish{Status: backend.StatusCompleted, Result: []byte(`1`)},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b2.CreateExecution(ctx, newExec("e1")); err != nil {
		t.Fatal(err)
	}
	expectNote(t, notes, backend.Notification{Kind: "task", Queue: backend.DefaultQueue}, patience)
	finish("e1") // awaited by no one: not announced

	if _, err := b2.CreateExecution(ctx, newExec("e2")); err != nil {
		t.Fatal(err)
	}
	if err := b1.AwaitExecution(ctx, "e2"); err != nil {
		t.Fatal(err)
	}
	finish("e2")
	// Until e2's end is announced, and a little longer (one flush may carry both).
	timer := time.NewTimer(patience)
	defer timer.Stop()
	for sawE2 := false; ; {
		select {
		case n := <-notes:
			switch {
			case n.Kind == "finished" && n.ExecutionID == "e1":
				t.Fatal("the end of e1, which no one awaited, was announced")
			case n.Kind == "finished" && n.ExecutionID == "e2" && !sawE2:
				sawE2 = true
				timer.Reset(200 * time.Millisecond)
			}
		case <-timer.C:
			if !sawE2 {
				t.Fatal("no notification of e2's end, which was awaited")
			}
			return
		}
	}
}

// AwaitExecution leaves an ended execution as it is, and marks a running one once.
func TestAwaitExecution(t *testing.T) {
	ctx := context.Background()
	b := openTestBackend(t, backend.SystemClock{})
	if _, err := b.CreateExecution(ctx, newExec("r")); err != nil {
		t.Fatal(err)
	}
	awaited := func(id string) bool {
		t.Helper()
		var a bool
		if err := b.pool.QueryRow(ctx, `SELECT awaited FROM executions WHERE id = $1`, id).Scan(&a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	if awaited("r") {
		t.Fatal("a new execution is awaited")
	}
	for range 2 {
		if err := b.AwaitExecution(ctx, "r"); err != nil {
			t.Fatal(err)
		}
	}
	if !awaited("r") {
		t.Fatal("AwaitExecution did not mark the execution")
	}
	if _, err := b.CreateExecution(ctx, newExec("done")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(ctx, `UPDATE executions SET status = 'completed' WHERE id = 'done'`); err != nil {
		t.Fatal(err)
	}
	if err := b.AwaitExecution(ctx, "done"); err != nil {
		t.Fatal(err)
	}
	if awaited("done") {
		t.Fatal("AwaitExecution marked an ended execution")
	}
	if err := b.AwaitExecution(ctx, "missing"); err != nil {
		t.Fatalf("AwaitExecution of a missing execution: %v, want nil (WaitFor's read says it is missing)", err)
	}
}

// Schemas are isolated: a dispatch in another schema does not wake this listener.
func TestListenIgnoresOtherSchemas(t *testing.T) {
	ctx := context.Background()
	b1 := openTestBackend(t, backend.SystemClock{})
	b2 := openTestBackend(t, backend.SystemClock{})
	notes := startListener(t, b1)
	if _, err := b2.CreateExecution(ctx, newExec("e1")); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-notes:
		t.Fatalf("got %+v from another schema", n)
	case <-time.After(200 * time.Millisecond):
	}
}

// When its connection is killed, the listener reconnects by itself, says that
// notifications may have been missed, and goes on delivering.
func TestListenReconnects(t *testing.T) {
	ctx := context.Background()
	b := openTestBackend(t, backend.SystemClock{})
	notes := startListener(t, b)

	tag, err := b.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = $1`, b.listenerApplicationName())
	if err != nil {
		t.Fatal(err)
	}
	if tag.RowsAffected() != 1 {
		t.Fatalf("terminated %d listener connections, want 1", tag.RowsAffected())
	}
	expectNote(t, notes, backend.Notification{Kind: "task"}, patience)
	waitListening(t, b)

	if _, err := b.CreateExecution(ctx, newExec("after-reconnect")); err != nil {
		t.Fatal(err)
	}
	expectNote(t, notes, backend.Notification{Kind: "task", Queue: backend.DefaultQueue}, patience)
}

// Close ends a running Listen.
func TestListenEndsOnClose(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchemaName(t, dsn)
	b, err := Open(context.Background(), dsn, WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Listen(context.Background(), func(backend.Notification) {}) }()
	waitListening(t, b)
	b.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Listen returned %v after Close, want nil", err)
		}
	case <-time.After(patience):
		t.Fatal("Listen did not return after Close")
	}
	if err := b.Listen(context.Background(), func(backend.Notification) {}); err == nil {
		t.Error("Listen on a closed backend succeeded")
	}
}
