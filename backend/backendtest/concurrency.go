package backendtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

var concurrencyTests = []test{
	{"ConcurrentClaimsNeverShareATask", testConcurrentClaims},
	{"ConcurrentWorkersFinishEveryExecution", testConcurrentWorkers},
	{"ConcurrentMigrate", testConcurrentMigrate},
}

func testConcurrentClaims(t *testing.T, e *env) {
	const execs, workers = 120, 8
	for i := 0; i < execs; i++ {
		e.create(fmt.Sprintf("e%03d", i))
	}
	var (
		mu    sync.Mutex
		owner = map[int64]string{}
		wg    sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(worker string) {
			defer wg.Done()
			for empty := 0; empty < 3; {
				tasks, err := e.b.ClaimTasks(e.ctx, backend.ClaimRequest{WorkerID: worker, Limit: 3, Lease: time.Hour})
				if err != nil {
					t.Errorf("ClaimTasks by %s: %v", worker, err)
					return
				}
				if len(tasks) == 0 {
					empty++
					continue
				}
				mu.Lock()
				for _, tk := range tasks {
					if prev, dup := owner[tk.ID]; dup {
						t.Errorf("task %d claimed by both %s and %s", tk.ID, prev, worker)
					}
					owner[tk.ID] = worker
				}
				mu.Unlock()
			}
		}(fmt.Sprintf("w%d", w))
	}
	wg.Wait()
	if len(owner) != execs {
		t.Fatalf("%d distinct tasks claimed, want %d", len(owner), execs)
	}
}

// testConcurrentWorkers runs executions that fan out two activities at a time, twice,
// with several workers racing on every kind of task.
func testConcurrentWorkers(t *testing.T, e *env) {
	const execs, workers, rounds = 16, 6, 2
	for i := 0; i < execs; i++ {
		e.create(fmt.Sprintf("x%02d", i))
	}
	var (
		done  atomic.Int64
		wg    sync.WaitGroup
		stop  = make(chan struct{})
		fatal = func(format string, args ...any) { t.Errorf(format, args...) }
	)
	step := func(worker string, tk backend.Task) error {
		switch tk.Kind {
		case backend.TaskActivity:
			return e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: tk.Ref(), ExecutionID: tk.ExecutionID,
				Seq: tk.Seq, Name: "double", Result: json.RawMessage(itoa(int64(tk.Seq * 2)))})
		case backend.TaskWorkflow:
			x, err := e.b.GetExecution(e.ctx, tk.ExecutionID)
			if err != nil {
				return err
			}
			if x.Status.Terminal() {
				return e.b.DeleteTask(e.ctx, tk.Ref())
			}
			h, err := e.b.History(e.ctx, tk.ExecutionID, 0)
			if err != nil {
				return err
			}
			var scheduled, completed int
			for _, ev := range h {
				switch ev.Kind {
				case backend.EventActivityScheduled:
					scheduled++
				case backend.EventActivityCompleted:
					completed++
				}
			}
			r := backend.WorkflowTaskResult{Task: tk.Ref(), ExecutionID: tk.ExecutionID, ExpectedVersion: x.Version}
			switch {
			case completed < scheduled: // still waiting
			case scheduled == 2*rounds:
				r.Finish = &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(itoa(int64(completed)))}
			default:
				for s := scheduled + 1; s <= scheduled+2; s++ {
					r.Events = append(r.Events, backend.NewEvent{Seq: s, Kind: backend.EventActivityScheduled, Name: "double"})
					r.Tasks = append(r.Tasks, backend.NewTask{Kind: backend.TaskActivity, Seq: s, Attempt: 1, Payload: activityPayload("double")})
				}
			}
			_, err = e.b.CompleteWorkflowTask(e.ctx, r)
			if err == nil && r.Finish != nil {
				done.Add(1)
			}
			return err
		default:
			return fmt.Errorf("unexpected %s task", tk.Kind)
		}
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(worker string) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-e.ctx.Done():
					return
				default:
				}
				if err := e.b.Heartbeat(e.ctx, worker); err != nil {
					fatal("Heartbeat(%s): %v", worker, err)
					return
				}
				tasks, err := e.b.ClaimTasks(e.ctx, backend.ClaimRequest{WorkerID: worker, Limit: 2, Lease: time.Hour})
				if err != nil {
					fatal("ClaimTasks(%s): %v", worker, err)
					return
				}
				if len(tasks) == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				for _, tk := range tasks {
					if err := step(worker, tk); err != nil && !errors.Is(err, backend.ErrLeaseLost) {
						fatal("worker %s on task %d (%s of %s): %v", worker, tk.ID, tk.Kind, tk.ExecutionID, err)
						return
					}
				}
			}
		}(fmt.Sprintf("w%d", w))
	}
	// A reclaimer racing with the workers: nothing is expired, so it must release nothing.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-e.ctx.Done():
				return
			default:
			}
			if n, err := e.b.ReclaimTasks(e.ctx, time.Hour); err != nil || n != 0 {
				fatal("ReclaimTasks while every worker is alive: (%d, %v), want (0, nil)", n, err)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	deadline := time.After(30 * time.Second)
	for done.Load() < execs && !t.Failed() {
		select {
		case <-deadline:
			t.Errorf("after 30s only %d of %d executions finished", done.Load(), execs)
		case <-time.After(5 * time.Millisecond):
		}
		if t.Failed() {
			break
		}
	}
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}
	for i := 0; i < execs; i++ {
		id := fmt.Sprintf("x%02d", i)
		x := e.get(id)
		if x.Status != backend.StatusCompleted || string(x.Result) != itoa(2*rounds) {
			t.Errorf("%s: status %s result %s, want completed %d", id, x.Status, x.Result, 2*rounds)
			continue
		}
		h := e.history(id)
		var completed int
		seen := map[int]bool{}
		for _, ev := range h {
			if ev.Kind == backend.EventActivityCompleted {
				completed++
				if seen[ev.Seq] {
					t.Errorf("%s: activity seq %d completed twice", id, ev.Seq)
				}
				seen[ev.Seq] = true
			}
		}
		if completed != 2*rounds || h[len(h)-1].Kind != backend.EventCompleted {
			t.Errorf("%s: history %v, want %d activity results then completed", id, kinds(h), 2*rounds)
		}
	}
	e.claimNone("every execution finished")
}

func testConcurrentMigrate(t *testing.T, e *env) {
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.b.Migrate(e.ctx); err != nil {
				t.Errorf("concurrent Migrate: %v", err)
			}
		}()
	}
	wg.Wait()
	e.create("x")
}
