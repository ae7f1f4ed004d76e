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

// BenchmarkActivityThroughput runs sequential workflows of activities through three
// backends on one schema (three worker processes, as far as the database can tell),
// each with one claim loop handing tasks to up to 16 goroutines, which go on with the
// task each completion hands off (as the engine's worker does), and reports activities
// per second. A workflow's version is kept in memory, as the live-execution cache does.
//
//	STENT_TEST_POSTGRES=... go test -run '^$' -bench ActivityThroughput ./backend/postgres/
func BenchmarkActivityThroughput(b *testing.B) {
	const (
		processes   = 3
		concurrency = 16 // tasks in flight per process
		steps       = 10 // activities per execution
	)
	first := openTestBackend(b, backend.SystemClock{}, WithMaxConns(concurrency))
	bs := []*Backend{first}
	for i := 1; i < processes; i++ {
		other, err := Open(context.Background(), testDSN(b), WithSchema(first.schema), WithMaxConns(concurrency))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { other.Close() })
		bs = append(bs, other)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a stuck run fails
	defer cancel()
	execs := max(1, b.N/steps)
	for i := 0; i < execs; i++ {
		if _, err := first.CreateExecution(ctx, newExec(fmt.Sprintf("x%06d", i))); err != nil {
			b.Fatal(err)
		}
	}
	var (
		versions sync.Map // execution id -> int64
		finished atomic.Int64
		acts     atomic.Int64
		wg       sync.WaitGroup
		failed   atomic.Bool
		claims   atomic.Int64
		notes    atomic.Int64
	)
	fail := func(err error) {
		if failed.CompareAndSwap(false, true) {
			b.Error(err)
		}
	}
	payload := json.RawMessage(`{"name":"a","args":[1]}`)
	// step runs a task and returns the task handed off to the same worker, if any.
	step := func(be *Backend, worker string, tk backend.Task) (*backend.Task, error) {
		claim := backend.ClaimRequest{WorkerID: worker, Limit: 1, Lease: time.Minute}
		switch tk.Kind {
		case backend.TaskActivity:
			acts.Add(1)
			return be.CompleteActivityTaskAndClaim(ctx, backend.ActivityResult{Task: tk.Ref(), ExecutionID: tk.ExecutionID,
				Seq: tk.Seq, Name: "a", Result: json.RawMessage(`1`)}, claim)
		case backend.TaskWorkflow:
			v, _ := versions.LoadOrStore(tk.ExecutionID, int64(0))
			ver := v.(int64)
			r := backend.WorkflowTaskResult{Task: tk.Ref(), ExecutionID: tk.ExecutionID, ExpectedVersion: ver}
			if ver == steps {
				r.Finish = &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`1`)}
			} else {
				seq := int(ver) + 1
				r.Events = []backend.NewEvent{{Seq: seq, Kind: backend.EventActivityScheduled, Name: "a", Data: payload}}
				r.Tasks = []backend.NewTask{{Kind: backend.TaskActivity, Seq: seq, Attempt: 1, Payload: payload}}
			}
			nv, next, err := be.CompleteWorkflowTaskAndClaim(ctx, r, claim)
			if err != nil {
				return nil, err
			}
			versions.Store(tk.ExecutionID, nv)
			if r.Finish != nil {
				finished.Add(1)
			}
			if len(next) > 0 {
				return &next[0], nil
			}
			return nil, nil
		}
		return nil, fmt.Errorf("unexpected %s task", tk.Kind)
	}
	b.ResetTimer()
	start := time.Now()
	for p, be := range bs {
		wg.Add(1)
		go func(worker string) { // one claim loop per process, as the engine's worker runs
			defer wg.Done()
			sem := make(chan struct{}, concurrency)
			wake := make(chan struct{}, 1)
			poke := func() {
				select {
				case wake <- struct{}{}:
				default:
				}
			}
			lctx, stopListening := context.WithCancel(ctx)
			defer stopListening()
			go be.Listen(lctx, func(backend.Notification) { notes.Add(1); poke() })
			var running sync.WaitGroup
			defer running.Wait()
			for finished.Load() < int64(execs) && !failed.Load() {
				free := concurrency - len(sem)
				if free == 0 {
					<-wake
					continue
				}
				claims.Add(1)
				tasks, err := be.ClaimTasks(ctx, backend.ClaimRequest{WorkerID: worker,
					Queues: []string{backend.DefaultQueue}, Limit: free, Lease: time.Minute})
				if err != nil {
					fail(err)
					return
				}
				for _, tk := range tasks {
					sem <- struct{}{}
					running.Add(1)
					go func() {
						defer running.Done()
						for next := &tk; next != nil && !failed.Load(); {
							t := *next
							var err error
							if next, err = step(be, worker, t); err != nil {
								fail(fmt.Errorf("%s task %d of %s: %w", t.Kind, t.ID, t.ExecutionID, err))
							}
						}
						<-sem
						poke()
					}()
				}
				if len(tasks) < free {
					select {
					case <-wake:
					case <-time.After(100 * time.Millisecond):
					}
				}
			}
		}(fmt.Sprintf("p%d", p))
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(acts.Load())/elapsed.Seconds(), "activities/s")
	b.ReportMetric(float64(claims.Load())/float64(max(1, acts.Load())), "claims/activity")
	b.ReportMetric(float64(notes.Load())/float64(max(1, acts.Load())), "notifications/activity")
}
