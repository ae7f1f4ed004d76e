package engine

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

// A Go activity without a timeout runs on its task's goroutine. One that ignores its
// context does not keep a stopping worker from returning: Serve gives up on it
// stopGrace after cancelling it, and its late end touches nothing that was closed.
func TestServeReturnsDespiteAnActivityIgnoringItsContext(t *testing.T) {
	dir := t.TempDir()
	eng, err := Open(context.Background(), filepath.Join(dir, "stent.db"), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	release := make(chan struct{})
	finished := make(chan struct{})
	if err := eng.Register("stubborn", func(ctx context.Context) (int, error) {
		close(started)
		<-release // ignores ctx
		defer close(finished)
		return 1, nil
	}); err != nil {
		t.Fatal(err)
	}
	id, err := eng.Dispatch(context.Background(), writeScript(t, dir, "def main():\n    return durable('stubborn')\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- eng.Serve(ctx, WorkerOptions{ShutdownTimeout: 50 * time.Millisecond}) }()
	<-started
	stopAt := time.Now()
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(stopGrace + time.Minute):
		t.Fatalf("Serve still running %s after it was stopped, its activity ignoring its context", time.Since(stopAt))
	}
	if err := eng.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// The activity ends after everything closed: its outcome goes nowhere, quietly.
	close(release)
	<-finished
	time.Sleep(50 * time.Millisecond)

	// The execution is intact and runs to its end under a new engine.
	eng2, err := Open(context.Background(), filepath.Join(dir, "stent.db"), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer eng2.Close()
	if err := eng2.Register("stubborn", func(ctx context.Context) (int, error) { return 2, nil }); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	go func() {
		_ = eng2.Serve(ctx2, WorkerOptions{DeadWorkerGrace: 200 * time.Millisecond, HeartbeatInterval: 50 * time.Millisecond})
	}()
	res, err := eng2.WaitFor(ctx2, id)
	if err != nil || res.Err() != nil {
		t.Fatalf("WaitFor after restart: %v %v", err, res)
	}
}
