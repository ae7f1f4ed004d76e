package sqlite_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/backend/backendtest"
	"github.com/stent-go/stent/backend/sqlite"
)

func openFile(t testing.TB, path string, clock backend.Clock) *sqlite.Backend {
	t.Helper()
	b, err := sqlite.Open(context.Background(), path, sqlite.WithClock(clock))
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func TestConformance(t *testing.T) {
	// Every subtest starts from a copy of one migrated file: creating the schema
	// ~60 times is what would make this test slow under the race detector.
	// (Migrating from scratch is covered by the other tests.)
	template := filepath.Join(t.TempDir(), "template.db")
	tb := openFile(t, template, nil)
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	schema, err := os.ReadFile(template)
	if err != nil {
		t.Fatal(err)
	}
	backendtest.Run(t, func(t *testing.T, clock backend.Clock) backend.Backend {
		path := filepath.Join(t.TempDir(), "stent.db")
		if err := os.WriteFile(path, schema, 0o600); err != nil {
			t.Fatal(err)
		}
		return openFile(t, path, clock)
	})
}

func TestConformanceInMemory(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, clock backend.Clock) backend.Backend {
		return openFile(t, ":memory:", clock)
	})
}

func TestInMemoryIsPrivate(t *testing.T) {
	ctx := context.Background()
	a := openFile(t, ":memory:", nil)
	b := openFile(t, ":memory:", nil)
	if _, err := a.CreateExecution(ctx, backend.NewExecution{ID: "x", Entry: "main"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetExecution(ctx, "x"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("second in-memory backend sees the first one's execution: err %v, want ErrNotFound", err)
	}
	if _, err := a.GetExecution(ctx, "x"); err != nil {
		t.Fatalf("GetExecution on the first in-memory backend: %v", err)
	}
}

func TestDSNForms(t *testing.T) {
	dir := t.TempDir()
	for _, dsn := range []string{
		filepath.Join(dir, "a.db"),
		"sqlite://" + filepath.Join(dir, "b.db"),
		"file:" + filepath.Join(dir, "c.db"),
		"file://" + filepath.Join(dir, "d.db"),
		filepath.Join(dir, "e.db") + "?_pragma=cache_size(-4000)",
		":memory:",
		"file::memory:",
		"file::memory:?cache=shared",
		"sqlite://:memory:",
	} {
		b, err := sqlite.Open(context.Background(), dsn)
		if err != nil {
			t.Errorf("Open(%q): %v", dsn, err)
			continue
		}
		if _, err := b.CreateExecution(context.Background(), backend.NewExecution{ID: "x", Entry: "main"}); err != nil {
			t.Errorf("CreateExecution on %q: %v", dsn, err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("Close(%q): %v", dsn, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	for _, dsn := range []string{"", filepath.Join(t.TempDir(), "no", "such", "dir", "x.db")} {
		b, err := sqlite.Open(context.Background(), dsn)
		if err == nil {
			b.Close()
			t.Errorf("Open(%q): nil error, want one", dsn)
			continue
		}
		t.Logf("Open(%q): %v", dsn, err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "stent.db")
	b, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateExecution(ctx, backend.NewExecution{ID: "x", Entry: "main"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	b2 := openFile(t, path, nil)
	if _, err := b2.GetExecution(ctx, "x"); err != nil {
		t.Fatalf("GetExecution after reopening: %v", err)
	}
}

// TestTwoBackendsOneFile plays two processes on one database file: a worker on one
// Backend claims what the other dispatched, and neither steals the other's tasks.
func TestTwoBackendsOneFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "stent.db")
	var (
		opened []*sqlite.Backend
		mu     sync.Mutex
		wg     sync.WaitGroup
	)
	for i := 0; i < 4; i++ { // migrate concurrently from several "processes"
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := sqlite.Open(ctx, path)
			if err != nil {
				t.Errorf("concurrent Open: %v", err)
				return
			}
			mu.Lock()
			opened = append(opened, b)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, b := range opened {
		t.Cleanup(func() { b.Close() })
	}
	if t.Failed() {
		return
	}
	a, b := opened[0], opened[1]
	const n = 100
	for i := 0; i < n; i++ {
		if _, err := a.CreateExecution(ctx, backend.NewExecution{ID: fmt.Sprint("x", i), Entry: "main"}); err != nil {
			t.Fatal(err)
		}
	}
	seen := make(map[int64]bool)
	var seenMu sync.Mutex
	for _, be := range []*sqlite.Backend{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				tasks, err := be.ClaimTasks(ctx, backend.ClaimRequest{WorkerID: fmt.Sprintf("%p", be), Limit: 5})
				if err != nil {
					t.Errorf("ClaimTasks: %v", err)
					return
				}
				if len(tasks) == 0 {
					return
				}
				for _, tk := range tasks {
					seenMu.Lock()
					if seen[tk.ID] {
						t.Errorf("task %d claimed twice", tk.ID)
					}
					seen[tk.ID] = true
					seenMu.Unlock()
					if _, err := be.CompleteWorkflowTask(ctx, backend.WorkflowTaskResult{Task: tk.Ref(), ExecutionID: tk.ExecutionID,
						Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`true`)}}); err != nil {
						t.Errorf("CompleteWorkflowTask: %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("claimed %d tasks across two backends, want %d", len(seen), n)
	}
	list, err := b.ListExecutions(ctx, backend.ListFilter{Status: backend.StatusCompleted, Limit: 1000})
	if err != nil || len(list) != n {
		t.Fatalf("completed executions seen from the other backend: %d (%v), want %d", len(list), err, n)
	}
}

// BenchmarkWorkflowStep measures one step of a sequential workflow: the activity's
// completion, the workflow task that schedules the next activity, and both claims.
func BenchmarkWorkflowStep(b *testing.B) {
	for _, name := range []string{"file", "memory"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			dsn := ":memory:"
			if name == "file" {
				dsn = filepath.Join(b.TempDir(), "stent.db")
			}
			be := openFile(b, dsn, nil)
			if _, err := be.CreateExecution(ctx, backend.NewExecution{ID: "bench", Entry: "main", Args: json.RawMessage(`[]`)}); err != nil {
				b.Fatal(err)
			}
			claim := func(kind backend.TaskKind) backend.Task {
				tasks, err := be.ClaimTasks(ctx, backend.ClaimRequest{WorkerID: "w", Kinds: []backend.TaskKind{kind}, Limit: 1, Lease: time.Minute})
				if err != nil || len(tasks) != 1 {
					b.Fatalf("claim %s: %v %v", kind, tasks, err)
				}
				return tasks[0]
			}
			payload := json.RawMessage(`{"name":"double","args":[21]}`)
			var version int64
			schedule := func(seq int) {
				wf := claim(backend.TaskWorkflow)
				v, err := be.CompleteWorkflowTask(ctx, backend.WorkflowTaskResult{
					Task: wf.Ref(), ExecutionID: "bench", ExpectedVersion: version,
					Events: []backend.NewEvent{{Seq: seq, Kind: backend.EventActivityScheduled, Name: "double", Data: payload}},
					Tasks:  []backend.NewTask{{Kind: backend.TaskActivity, Seq: seq, Attempt: 1, Payload: payload}},
				})
				if err != nil {
					b.Fatal(err)
				}
				version = v
			}
			schedule(1)
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				act := claim(backend.TaskActivity)
				if err := be.CompleteActivityTask(ctx, backend.ActivityResult{Task: act.Ref(), ExecutionID: "bench",
					Seq: act.Seq, Name: "double", Result: json.RawMessage(`42`)}); err != nil {
					b.Fatal(err)
				}
				schedule(act.Seq + 1)
			}
			b.StopTimer()
			// CPU time is a steadier figure than wall time on a busy machine.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkWorkflowStepHandOff is BenchmarkWorkflowStep through backend.HandOff: the
// activity's completion claims the workflow task, whose completion claims the next
// activity, two transactions per step.
func BenchmarkWorkflowStepHandOff(b *testing.B) {
	for _, name := range []string{"file", "memory"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			dsn := ":memory:"
			if name == "file" {
				dsn = filepath.Join(b.TempDir(), "stent.db")
			}
			be := openFile(b, dsn, nil)
			if _, err := be.CreateExecution(ctx, backend.NewExecution{ID: "bench", Entry: "main", Args: json.RawMessage(`[]`)}); err != nil {
				b.Fatal(err)
			}
			req := backend.ClaimRequest{WorkerID: "w", Limit: 1, Lease: time.Minute}
			tasks, err := be.ClaimTasks(ctx, backend.ClaimRequest{WorkerID: "w", Kinds: []backend.TaskKind{backend.TaskWorkflow}, Limit: 1, Lease: time.Minute})
			if err != nil || len(tasks) != 1 {
				b.Fatalf("claim workflow: %v %v", tasks, err)
			}
			wf := tasks[0]
			payload := json.RawMessage(`{"name":"double","args":[21]}`)
			var version int64
			schedule := func(seq int) backend.Task {
				v, claimed, err := be.CompleteWorkflowTaskAndClaim(ctx, backend.WorkflowTaskResult{
					Task: wf.Ref(), ExecutionID: "bench", ExpectedVersion: version,
					Events: []backend.NewEvent{{Seq: seq, Kind: backend.EventActivityScheduled, Name: "double", Data: payload}},
					Tasks:  []backend.NewTask{{Kind: backend.TaskActivity, Seq: seq, Attempt: 1, Payload: payload}},
				}, req)
				if err != nil || len(claimed) != 1 {
					b.Fatalf("schedule seq %d: %v %v", seq, claimed, err)
				}
				version = v
				return claimed[0]
			}
			act := schedule(1)
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				next, err := be.CompleteActivityTaskAndClaim(ctx, backend.ActivityResult{Task: act.Ref(), ExecutionID: "bench",
					Seq: act.Seq, Name: "double", Result: json.RawMessage(`42`)}, req)
				if err != nil || next == nil {
					b.Fatalf("complete activity: %v %v", next, err)
				}
				wf = *next
				act = schedule(act.Seq + 1)
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

func TestCancelledContextWritesNothing(t *testing.T) {
	b := openFile(t, filepath.Join(t.TempDir(), "stent.db"), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	created, err := b.CreateExecution(ctx, backend.NewExecution{ID: "x", Entry: "main"})
	if !errors.Is(err, context.Canceled) || created {
		t.Fatalf("CreateExecution with a cancelled context: (%v, %v), want (false, context.Canceled)", created, err)
	}
	if _, err := b.GetExecution(context.Background(), "x"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("GetExecution after a cancelled create: %v, want ErrNotFound", err)
	}
}

func TestClosedBackendErrors(t *testing.T) {
	b, err := sqlite.Open(context.Background(), ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateExecution(context.Background(), backend.NewExecution{ID: "x"}); err == nil {
		t.Fatal("CreateExecution on a closed backend: nil error")
	}
	if _, err := b.GetExecution(context.Background(), "x"); err == nil {
		t.Fatal("GetExecution on a closed backend: nil error")
	}
}

// BenchmarkClaimWithBacklog claims and completes workflow tasks while thousands of
// due activity tasks wait for a busy activity pool.
func BenchmarkClaimWithBacklog(b *testing.B) {
	ctx := context.Background()
	be := openFile(b, filepath.Join(b.TempDir(), "stent.db"), nil)
	if _, err := be.CreateExecution(ctx, backend.NewExecution{ID: "fan", Entry: "main"}); err != nil {
		b.Fatal(err)
	}
	tasks, err := be.ClaimTasks(ctx, backend.ClaimRequest{WorkerID: "w", Limit: 1})
	if err != nil || len(tasks) != 1 {
		b.Fatal(tasks, err)
	}
	r := backend.WorkflowTaskResult{Task: tasks[0].Ref(), ExecutionID: "fan"}
	for i := 1; i <= 5000; i++ {
		r.Tasks = append(r.Tasks, backend.NewTask{Kind: backend.TaskActivity, Seq: i, Payload: json.RawMessage(`{}`)})
	}
	if _, err := be.CompleteWorkflowTask(ctx, r); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprint("x", i)
		if _, err := be.CreateExecution(ctx, backend.NewExecution{ID: id, Entry: "main"}); err != nil {
			b.Fatal(err)
		}
		tasks, err := be.ClaimTasks(ctx, backend.ClaimRequest{WorkerID: "w", Kinds: []backend.TaskKind{backend.TaskWorkflow}, Limit: 1})
		if err != nil || len(tasks) != 1 || tasks[0].ExecutionID != id {
			b.Fatal(tasks, err)
		}
		if _, err := be.CompleteWorkflowTask(ctx, backend.WorkflowTaskResult{Task: tasks[0].Ref(), ExecutionID: id,
			Finish: &backend.Finish{Status: backend.StatusCompleted}}); err != nil {
			b.Fatal(err)
		}
	}
}
