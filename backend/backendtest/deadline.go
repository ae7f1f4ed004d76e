package backendtest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

var deadlineTests = []test{
	{"CreateWithDeadlineCreatesDeadlineTask", testDeadlineTask},
	{"NoDeadlineNoTask", testNoDeadlineTask},
	{"ChildWithDeadline", testChildDeadline},
	{"FinishDeletesDeadlineTask", testFinishDeletesDeadline},
	{"DeadlineTaskIsReclaimed", testDeadlineReclaimed},
	{"EndExecutionDeletesClaimedDeadlineTask", testDeadlineEnd},
	{"NextTaskAt", testNextTaskAt},
	{"NextTaskAtEmpty", testNextTaskAtEmpty},
}

func testDeadlineTask(t *testing.T, e *env) {
	deadline := Epoch.Add(time.Hour)
	e.create("x", func(n *backend.NewExecution) {
		n.Deadline = &deadline
		n.Queue = "dq"
	})
	e.idle("x", 0)
	e.clock.Set(deadline.Add(-time.Millisecond))
	e.claimNone("before the deadline")
	e.clock.Set(deadline)
	// An empty Kinds filter covers deadline tasks too.
	tasks := e.claim(backend.ClaimRequest{})
	if len(tasks) != 1 {
		t.Fatalf("claim at the deadline: %s, want the deadline task", describe(tasks))
	}
	dl := tasks[0]
	if dl.Kind != backend.TaskDeadline || dl.ExecutionID != "x" || dl.Seq != 0 || dl.Queue != "dq" {
		t.Fatalf("deadline task %s, want kind deadline of x, seq 0, on the execution's queue dq", describe(tasks))
	}
	wantTime(t, "deadline task RunAt", dl.RunAt, deadline)
	if len(dl.Payload) != 0 && string(dl.Payload) != "null" {
		t.Fatalf("deadline task Payload = %s, want empty", dl.Payload)
	}
	if dl.LeaseOwner != "w1" || dl.Fence == 0 {
		t.Fatalf("deadline task lease owner %q fence %d, want w1 and a fence", dl.LeaseOwner, dl.Fence)
	}
	if err := e.b.DeleteTask(e.ctx, dl.Ref()); err != nil {
		t.Fatalf("DeleteTask of the deadline task: %v", err)
	}
	e.clock.Advance(time.Hour)
	e.claimNone("after the deadline task was deleted")
}

func testNoDeadlineTask(t *testing.T, e *env) {
	e.create("x")
	e.idle("x", 0)
	e.clock.Advance(100 * 365 * 24 * time.Hour)
	e.claimNone("an execution without a deadline has no deadline task")
}

func testChildDeadline(t *testing.T, e *env) {
	e.create("parent")
	wf := e.claimOne(backend.TaskWorkflow, "parent")
	deadline := Epoch.Add(30 * time.Minute)
	ch := newExec("child")
	ch.ParentID, ch.ParentSeq, ch.Deadline = "parent", 1, &deadline
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "parent", ExpectedVersion: 0,
		Events:   []backend.NewEvent{{Seq: 1, Kind: backend.EventChildScheduled, Name: "main"}},
		Children: []backend.NewExecution{ch}})
	e.idle("child", 0)
	e.claimNone("before the child's deadline")
	e.clock.Set(deadline)
	dl := e.claimOne(backend.TaskDeadline, "child")
	wantTime(t, "child deadline task RunAt", dl.RunAt, deadline)
	if x := e.get("child"); x.Deadline == nil || !x.Deadline.Equal(deadline) {
		t.Fatalf("child Deadline = %v, want %v", x.Deadline, deadline)
	}
}

func testFinishDeletesDeadline(t *testing.T, e *env) {
	deadline := Epoch.Add(time.Hour)
	e.create("x", func(n *backend.NewExecution) { n.Deadline = &deadline })
	wf := e.claimOne(backend.TaskWorkflow, "x")
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0,
		Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`1`)}})
	e.clock.Set(deadline.Add(time.Hour))
	e.claimNone("a finished execution's deadline task is deleted with its other tasks")
}

func testDeadlineReclaimed(t *testing.T, e *env) {
	deadline := Epoch.Add(time.Minute)
	e.create("x", func(n *backend.NewExecution) { n.Deadline = &deadline })
	e.idle("x", 0)
	e.clock.Set(deadline)
	old := e.claimOne(backend.TaskDeadline, "x")
	fresh := e.reclaimAndReclaim(old)
	wantErrIs(t, "DeleteTask of the deadline task with a stale fence", e.b.DeleteTask(e.ctx, old.Ref()), backend.ErrLeaseLost)
	if err := e.b.DeleteTask(e.ctx, fresh.Ref()); err != nil {
		t.Fatalf("DeleteTask by the new holder: %v", err)
	}
}

func testDeadlineEnd(t *testing.T, e *env) {
	// The worker flow: claim the deadline task, end the execution as timed_out.
	deadline := Epoch.Add(time.Minute)
	e.create("x", func(n *backend.NewExecution) { n.Deadline = &deadline })
	e.scheduleActivities("x", 0, 1, "slow")
	e.clock.Set(deadline)
	dl := e.claimOne(backend.TaskDeadline, "x")
	info := &backend.ErrorInfo{Message: "execution timed out", Type: "timeout"}
	if !e.end("x", backend.StatusTimedOut, info) {
		t.Fatalf("EndExecution = false, want true")
	}
	e.wantEnded("x", backend.StatusTimedOut, info, deadline)
	wantErrIs(t, "DeleteTask of the deadline task after EndExecution deleted it", e.b.DeleteTask(e.ctx, dl.Ref()), backend.ErrLeaseLost)
	e.claimNone("every task was deleted")
}

func (e *env) nextTaskAt(queues []string) (time.Time, bool) {
	e.t.Helper()
	at, ok, err := e.b.NextTaskAt(e.ctx, queues)
	if err != nil {
		e.t.Fatalf("NextTaskAt(%v): unexpected error %v", queues, err)
	}
	return at, ok
}

func (e *env) wantNextTaskAt(queues []string, want time.Time) {
	e.t.Helper()
	at, ok := e.nextTaskAt(queues)
	if !ok {
		e.t.Fatalf("NextTaskAt(%v): ok = false, want %v", queues, want)
	}
	wantTime(e.t, "NextTaskAt", at, want)
}

func (e *env) wantNoNextTask(queues []string, why string) {
	e.t.Helper()
	if at, ok := e.nextTaskAt(queues); ok {
		e.t.Fatalf("NextTaskAt(%v) = %v, want ok = false (%s)", queues, at, why)
	}
}

func testNextTaskAtEmpty(t *testing.T, e *env) {
	e.wantNoNextTask(nil, "no tasks at all")
	e.wantNoNextTask([]string{"default"}, "no tasks at all")
}

func testNextTaskAt(t *testing.T, e *env) {
	e.create("a", func(n *backend.NewExecution) {
		n.Queue = "q1"
		n.StartAt = Epoch.Add(10 * time.Minute)
	})
	e.create("b", func(n *backend.NewExecution) {
		n.Queue = "q2"
		n.StartAt = Epoch.Add(5 * time.Minute)
	})
	e.wantNextTaskAt(nil, Epoch.Add(5*time.Minute))
	e.wantNextTaskAt([]string{}, Epoch.Add(5*time.Minute))
	e.wantNextTaskAt([]string{"q1"}, Epoch.Add(10*time.Minute))
	e.wantNextTaskAt([]string{"q2"}, Epoch.Add(5*time.Minute))
	e.wantNextTaskAt([]string{"q1", "q2"}, Epoch.Add(5*time.Minute))
	e.wantNextTaskAt([]string{"nope", "q1"}, Epoch.Add(10*time.Minute))
	e.wantNoNextTask([]string{"nope"}, "no task on that queue")

	// Deadline tasks count; claimed tasks do not; due tasks report their RunAt.
	deadline := Epoch.Add(3 * time.Minute)
	e.create("c", func(n *backend.NewExecution) {
		n.Queue = "q1"
		n.StartAt = Epoch.Add(20 * time.Minute)
		n.Deadline = &deadline
	})
	e.wantNextTaskAt([]string{"q1"}, deadline)
	e.wantNextTaskAt(nil, deadline)
	e.clock.Set(Epoch.Add(7 * time.Minute))
	e.wantNextTaskAt(nil, deadline)
	e.claimOne(backend.TaskDeadline, "c")
	e.wantNextTaskAt(nil, Epoch.Add(5*time.Minute))
	e.claimOne(backend.TaskWorkflow, "b")
	e.wantNoNextTask([]string{"q2"}, "b's only task is claimed")
	e.wantNextTaskAt(nil, Epoch.Add(10*time.Minute))

	// Timers count, on the execution's queue.
	e.clock.Set(Epoch.Add(10 * time.Minute))
	e.scheduleTimer("a", 0, 1, Epoch.Add(15*time.Minute))
	e.wantNextTaskAt([]string{"q1"}, Epoch.Add(15*time.Minute))
	e.wantNextTaskAt(nil, Epoch.Add(15*time.Minute))
	e.wantNoNextTask([]string{"q2"}, "b's only task is still claimed")
}
