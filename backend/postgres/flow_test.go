package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func claimOne(t *testing.T, b *Backend, kind backend.TaskKind) backend.Task {
	t.Helper()
	tasks, err := b.ClaimTasks(context.Background(), backend.ClaimRequest{
		WorkerID: "w1", Kinds: []backend.TaskKind{kind}, Limit: 1, Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 {
		t.Fatalf("claimed %d %s tasks, want 1", len(tasks), kind)
	}
	return tasks[0]
}

func kinds(evs []backend.Event) []backend.EventKind {
	var out []backend.EventKind
	for _, e := range evs {
		out = append(out, e.Kind)
	}
	return out
}

// A whole workflow through the backend: a child, an activity with a retry, a timer,
// the rerun of a workflow task, and the end of child and parent.
func TestWorkflowFlow(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := openTestBackend(t, clock)

	created, err := b.CreateExecution(ctx, newExec("p"))
	if err != nil || !created {
		t.Fatalf("CreateExecution = %v, %v", created, err)
	}
	if created, err := b.CreateExecution(ctx, newExec("p")); err != nil || created {
		t.Fatalf("second CreateExecution = %v, %v; want false, nil", created, err)
	}
	if src, err := b.GetScript(ctx, "h-p"); err != nil || string(src) != "def main(): return 1\n" {
		t.Fatalf("GetScript = %q, %v", src, err)
	}
	if _, err := b.GetScript(ctx, "nope"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("GetScript(nope) = %v, want ErrNotFound", err)
	}
	if _, err := b.GetExecution(ctx, "nope"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("GetExecution(nope) = %v, want ErrNotFound", err)
	}
	if _, err := b.History(ctx, "nope", 0); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("History(nope) = %v, want ErrNotFound", err)
	}

	wf := claimOne(t, b, backend.TaskWorkflow)
	child := newExec("p/1")
	child.Entry = "greet"
	v, err := b.CompleteWorkflowTask(ctx, backend.WorkflowTaskResult{
		Task: wf.Ref(), ExecutionID: "p", ExpectedVersion: 0,
		Events: []backend.NewEvent{
			{Seq: 1, Kind: backend.EventChildScheduled, Name: "greet", Data: []byte(`{"a":1}`)},
			{Seq: 2, Kind: backend.EventActivityScheduled, Name: "fetch", Data: []byte(`{"args": [1]}`)},
			{Seq: 3, Kind: backend.EventTimerScheduled, Name: "sleep", Data: []byte(`{}`)},
		},
		Tasks: []backend.NewTask{
			{Kind: backend.TaskActivity, Seq: 2, Payload: []byte(`{"name":"fetch","args":[1]}`)},
			{Kind: backend.TaskTimer, Seq: 3, RunAt: clock.Now().Add(time.Hour)},
		},
		Children: []backend.NewExecution{{ID: "p/1", ParentSeq: 1, Bundle: child.Bundle, Sources: child.Sources, Entry: "greet", Args: []byte(`["x"]`)}},
		Logs:     []string{"hello", "world"},
	})
	if err != nil || v != 1 {
		t.Fatalf("CompleteWorkflowTask = %d, %v", v, err)
	}
	// Stale and lost.
	if _, err := b.CompleteWorkflowTask(ctx, backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "p", ExpectedVersion: 1}); !errors.Is(err, backend.ErrLeaseLost) {
		t.Fatalf("completing a finished task: %v, want ErrLeaseLost", err)
	}
	logs, err := b.Logs(ctx, "p")
	if err != nil || len(logs) != 2 || logs[0].Message != "hello" || logs[1].Message != "world" {
		t.Fatalf("Logs = %v, %v", logs, err)
	}
	ce, err := b.GetExecution(ctx, "p/1")
	if err != nil || ce.ParentID != "p" || ce.ParentSeq != 1 || ce.Queue != backend.DefaultQueue || ce.Status != backend.StatusRunning {
		t.Fatalf("child = %+v, %v", ce, err)
	}

	// The activity fails once, is retried, then completes while the parent's next
	// workflow task is claimed: that task must run again.
	act := claimOne(t, b, backend.TaskActivity)
	if act.Attempt != 1 || string(act.Payload) != `{"name":"fetch","args":[1]}` {
		t.Fatalf("activity task = %+v", act)
	}
	if err := b.RetryActivityTask(ctx, act.Ref(), clock.Now().Add(time.Second), 2, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.CompleteActivityTask(ctx, backend.ActivityResult{Task: act.Ref(), ExecutionID: "p", Seq: 2, Name: "fetch", Result: []byte(`1`)}); !errors.Is(err, backend.ErrLeaseLost) {
		t.Fatalf("completing a retried task: %v, want ErrLeaseLost", err)
	}
	if tasks, _ := b.ClaimTasks(ctx, backend.ClaimRequest{WorkerID: "w1", Kinds: []backend.TaskKind{backend.TaskActivity}, Limit: 5}); len(tasks) != 0 {
		t.Fatalf("claimed a retry before its time: %+v", tasks)
	}
	clock.Advance(time.Second)
	act = claimOne(t, b, backend.TaskActivity)
	if act.Attempt != 2 {
		t.Fatalf("attempt = %d, want 2", act.Attempt)
	}

	// The child runs and completes: the parent gets child_completed and a workflow task.
	cwf := claimOne(t, b, backend.TaskWorkflow)
	if cwf.ExecutionID != "p/1" {
		t.Fatalf("claimed workflow task of %s, want p/1", cwf.ExecutionID)
	}
	if _, err := b.CompleteWorkflowTask(ctx, backend.WorkflowTaskResult{
		Task: cwf.Ref(), ExecutionID: "p/1",
		Finish: &backend.Finish{Status: backend.StatusCompleted, Result: []byte(`"hi x"`)},
	}); err != nil {
		t.Fatal(err)
	}
	pwf := claimOne(t, b, backend.TaskWorkflow)
	if pwf.ExecutionID != "p" {
		t.Fatalf("claimed workflow task of %s, want p", pwf.ExecutionID)
	}
	if err := b.CompleteActivityTask(ctx, backend.ActivityResult{Task: act.Ref(), ExecutionID: "p", Seq: 2, Name: "fetch", Result: []byte(`{"u": 1}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CompleteWorkflowTask(ctx, backend.WorkflowTaskResult{Task: pwf.Ref(), ExecutionID: "p", ExpectedVersion: 0}); !errors.Is(err, backend.ErrStaleExecution) {
		t.Fatalf("stale version: %v, want ErrStaleExecution", err)
	}
	if v, err := b.CompleteWorkflowTask(ctx, backend.WorkflowTaskResult{Task: pwf.Ref(), ExecutionID: "p", ExpectedVersion: 1}); err != nil || v != 2 {
		t.Fatalf("CompleteWorkflowTask = %d, %v", v, err)
	}
	// rerun: the workflow task is runnable again at once.
	pwf = claimOne(t, b, backend.TaskWorkflow)
	if v, err := b.CompleteWorkflowTask(ctx, backend.WorkflowTaskResult{Task: pwf.Ref(), ExecutionID: "p", ExpectedVersion: 2}); err != nil || v != 3 {
		t.Fatalf("CompleteWorkflowTask = %d, %v", v, err)
	}
	if tasks, _ := b.ClaimTasks(ctx, backend.ClaimRequest{WorkerID: "w1", Limit: 5}); len(tasks) != 0 {
		t.Fatalf("claimed %+v, want nothing before the timer", tasks)
	}

	// The timer fires.
	clock.Advance(time.Hour)
	timer := claimOne(t, b, backend.TaskTimer)
	if err := b.FireTimer(ctx, timer.Ref()); err != nil {
		t.Fatal(err)
	}
	pwf = claimOne(t, b, backend.TaskWorkflow)
	if _, err := b.CompleteWorkflowTask(ctx, backend.WorkflowTaskResult{
		Task: pwf.Ref(), ExecutionID: "p", ExpectedVersion: 3,
		Finish: &backend.Finish{Status: backend.StatusFailed, Error: &backend.ErrorInfo{Message: "boom", Type: "script"}},
	}); err != nil {
		t.Fatal(err)
	}
	e, err := b.GetExecution(ctx, "p")
	if err != nil || e.Status != backend.StatusFailed || e.Error == nil || e.Error.Message != "boom" || e.CompletedAt == nil || e.Version != 4 {
		t.Fatalf("execution = %+v, %v", e, err)
	}
	h, err := b.History(ctx, "p", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []backend.EventKind{backend.EventStarted, backend.EventChildScheduled, backend.EventActivityScheduled,
		backend.EventTimerScheduled, backend.EventChildCompleted, backend.EventActivityCompleted,
		backend.EventTimerFired, backend.EventFailed}
	if got := kinds(h); len(got) != len(want) {
		t.Fatalf("history = %v, want %v", got, want)
	} else {
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("history = %v, want %v", got, want)
			}
		}
	}
	if string(h[2].Data) != `{"args": [1]}` {
		t.Errorf("event data changed: %s", h[2].Data)
	}
	if h[4].Seq != 1 || h[4].Name != "greet" || string(h[4].Data) != `"hi x"` {
		t.Errorf("child_completed = %+v", h[4])
	}
	if h[6].Seq != 3 || h[6].Name != "sleep" {
		t.Errorf("timer_fired = %+v", h[6])
	}
	rest, err := b.History(ctx, "p", h[5].ID)
	if err != nil || len(rest) != 2 {
		t.Fatalf("History after %d = %v, %v", h[5].ID, rest, err)
	}
	list, err := b.ListExecutions(ctx, backend.ListFilter{RootOnly: true})
	if err != nil || len(list) != 1 || list[0].ID != "p" {
		t.Fatalf("ListExecutions(root) = %v, %v", list, err)
	}
	list, err = b.ListExecutions(ctx, backend.ListFilter{})
	if err != nil || len(list) != 2 || list[0].ID != "p/1" {
		t.Fatalf("ListExecutions = %v, %v", list, err)
	}
}

func TestLeases(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := openTestBackend(t, clock)
	for _, id := range []string{"a", "b"} {
		if _, err := b.CreateExecution(ctx, newExec(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Heartbeat(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	tasks, err := b.ClaimTasks(ctx, backend.ClaimRequest{WorkerID: "w1", Limit: 10, Lease: time.Minute})
	if err != nil || len(tasks) != 2 {
		t.Fatalf("ClaimTasks = %v, %v", tasks, err)
	}
	if n, err := b.ReclaimTasks(ctx, time.Minute); err != nil || n != 0 {
		t.Fatalf("ReclaimTasks = %d, %v; want 0", n, err)
	}
	clock.Advance(50 * time.Second)
	lost, err := b.ExtendLeases(ctx, "w1", []backend.TaskRef{tasks[0].Ref(), {ID: tasks[1].ID, Fence: 99}}, time.Minute)
	if err != nil || len(lost) != 1 || lost[0].Fence != 99 {
		t.Fatalf("ExtendLeases = %v, %v", lost, err)
	}
	if err := b.Heartbeat(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(20 * time.Second) // task 1's lease expired, task 0's not
	if n, err := b.ReclaimTasks(ctx, time.Minute); err != nil || n != 1 {
		t.Fatalf("ReclaimTasks = %d, %v; want 1", n, err)
	}
	if err := b.DeleteTask(ctx, tasks[1].Ref()); !errors.Is(err, backend.ErrLeaseLost) {
		t.Fatalf("DeleteTask of a reclaimed task: %v, want ErrLeaseLost", err)
	}
	again, err := b.ClaimTasks(ctx, backend.ClaimRequest{WorkerID: "w2", Limit: 10})
	if err != nil || len(again) != 1 || again[0].ID != tasks[1].ID || again[0].Fence <= tasks[1].Fence {
		t.Fatalf("reclaimed ClaimTasks = %+v, %v", again, err)
	}
	// w1 goes silent: its remaining task is reclaimed after the grace.
	clock.Advance(2 * time.Minute)
	if err := b.Heartbeat(ctx, "w2"); err != nil {
		t.Fatal(err)
	}
	if err := b.ReleaseTask(ctx, again[0].Ref(), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n, err := b.ReclaimTasks(ctx, time.Minute); err != nil || n != 1 {
		t.Fatalf("ReclaimTasks = %d, %v; want 1", n, err)
	}
}
