package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/backend/backendtest"
)

// lockedBuffer is a bytes.Buffer that showProgress writes while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The progress line `stent exec` draws on a terminal says when a worker holding the
// execution's step stopped heartbeating and when its work is reclaimed.
func TestProgressSaysAWorkerStopped(t *testing.T) {
	dir := t.TempDir()
	clock := backendtest.NewFakeClock(backendtest.Epoch)
	ctx := context.Background()
	eng, err := stent.Open(ctx, filepath.Join(dir, "stent.db"), stent.WithClock(clock),
		stent.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	script := filepath.Join(dir, "flow.star")
	if err := os.WriteFile(script, []byte("def main():\n    return durable('step')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id, err := eng.Dispatch(ctx, script, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A worker of another host claims the execution's task, then falls silent.
	if err := eng.Backend().(backend.Routing).RecordWorker(ctx, backend.WorkerInfo{ID: "far", Host: "elsewhere.invalid", PID: 1}); err != nil {
		t.Fatal(err)
	}
	if tasks, err := eng.Backend().ClaimTasks(ctx, backend.ClaimRequest{WorkerID: "far", Limit: 10, Lease: time.Hour}); err != nil || len(tasks) != 1 {
		t.Fatalf("claiming for far: %v %v, want one task", tasks, err)
	}
	clock.Advance(6 * time.Second)

	var out lockedBuffer
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); showProgress(pctx, eng, id, &out) }()
	defer func() { cancel(); <-done }()

	want := regexp.MustCompile(`… worker far stopped heartbeating at 2030-01-02T03:04:05Z; its work is reclaimed at 2030-01-02T03:04:15Z`)
	deadline := time.Now().Add(2 * time.Minute)
	for !want.MatchString(out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("the progress line never said the worker stopped; it drew %q", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
