package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// TestMaxConcurrentAcrossBackends runs two *Backend on one schema (as two processes
// would) and 8 goroutines that claim, hand off and complete tasks with a cap on one
// activity; the cap must never be exceeded, whether tasks come from ClaimTasks or from
// CompleteWorkflowTaskAndClaim.
func TestMaxConcurrentAcrossBackends(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchemaName(t, dsn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var bs [2]*Backend
	for i := range bs {
		b, err := Open(ctx, dsn, WithSchema(schema), WithMaxConns(6))
		if err != nil {
			t.Fatalf("opening backend %d: %v", i, err)
		}
		t.Cleanup(func() { _ = b.Close() })
		bs[i] = b
	}
	const (
		execs     = 8
		capped    = 5 // "cap" activities per execution
		free      = 3 // "free" activities per execution
		workers   = 8
		maxConc   = 3
		perWorker = 2
	)
	caps := map[string]int{"cap": maxConc}
	payload := func(name string) json.RawMessage {
		buf, _ := json.Marshal(backend.ActivityPayload{Name: name, Args: json.RawMessage(`[]`)})
		return buf
	}
	for i := 0; i < execs; i++ {
		_, err := bs[i%2].CreateExecution(ctx, backend.NewExecution{ID: fmt.Sprintf("x%d", i),
			Bundle: backend.Bundle{Main: "main.star", Files: map[string]string{}}, Entry: "main",
			Priority: i % 3})
		if err != nil {
			t.Fatalf("CreateExecution: %v", err)
		}
	}
	total := int64(execs * (capped + free))
	var (
		inFlight, maxSeen, done atomic.Int64
		wg                      sync.WaitGroup
	)
	isCap := func(tk backend.Task) bool {
		name := activityOf(tk.Payload)
		return tk.Kind == backend.TaskActivity && name != nil && *name == "cap"
	}
	hold := func(tk backend.Task) {
		if !isCap(tk) {
			return
		}
		n := inFlight.Add(1)
		for m := maxSeen.Load(); n > m && !maxSeen.CompareAndSwap(m, n); m = maxSeen.Load() {
		}
		if n > maxConc {
			t.Errorf("%d cap tasks claimed at once, cap is %d", n, maxConc)
		}
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(b *Backend, worker string) {
			defer wg.Done()
			claim := backend.ClaimRequest{WorkerID: worker, Limit: perWorker, Lease: time.Hour, MaxConcurrent: caps}
			var queue []backend.Task
			for done.Load() < total && ctx.Err() == nil && !t.Failed() {
				if len(queue) == 0 {
					tasks, err := b.ClaimTasks(ctx, claim)
					if err != nil {
						t.Errorf("ClaimTasks by %s: %v", worker, err)
						return
					}
					for _, tk := range tasks {
						hold(tk)
					}
					queue = tasks
					if len(queue) == 0 {
						time.Sleep(time.Millisecond)
						continue
					}
				}
				tk := queue[0]
				queue = queue[1:]
				switch tk.Kind {
				case backend.TaskWorkflow:
					ex, err := b.GetExecution(ctx, tk.ExecutionID)
					if err != nil {
						t.Errorf("GetExecution: %v", err)
						return
					}
					r := backend.WorkflowTaskResult{Task: tk.Ref(), ExecutionID: tk.ExecutionID, ExpectedVersion: ex.Version}
					if ex.Version == 0 {
						for s := 1; s <= capped+free; s++ {
							name := "cap"
							if s > capped {
								name = "free"
							}
							r.Events = append(r.Events, backend.NewEvent{Seq: s, Kind: backend.EventActivityScheduled, Name: name})
							r.Tasks = append(r.Tasks, backend.NewTask{Kind: backend.TaskActivity, Seq: s, Attempt: 1,
								Priority: s % 2, Payload: payload(name)})
						}
					}
					_, handed, err := b.CompleteWorkflowTaskAndClaim(ctx, r, claim)
					if err != nil {
						t.Errorf("CompleteWorkflowTaskAndClaim by %s: %v", worker, err)
						return
					}
					for _, h := range handed {
						hold(h)
					}
					queue = append(queue, handed...)
				case backend.TaskActivity:
					time.Sleep(time.Millisecond)
					if isCap(tk) {
						inFlight.Add(-1) // before the completion starts: never above what is claimed
					}
					err := b.CompleteActivityTask(ctx, backend.ActivityResult{Task: tk.Ref(), ExecutionID: tk.ExecutionID,
						Seq: tk.Seq, Name: *activityOf(tk.Payload), Result: json.RawMessage(`1`)})
					if err != nil {
						t.Errorf("CompleteActivityTask by %s: %v", worker, err)
						return
					}
					done.Add(1)
				}
			}
		}(bs[w%2], fmt.Sprintf("w%d", w))
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if n := done.Load(); n != total {
		t.Fatalf("%d activity tasks completed, want %d", n, total)
	}
	if maxSeen.Load() == 0 {
		t.Fatal("no cap task was seen claimed")
	}
	t.Logf("at most %d cap tasks claimed at once (cap %d)", maxSeen.Load(), maxConc)
}
