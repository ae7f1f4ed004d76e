package backendtest

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

var endExecutionTests = []test{
	{"CancelCascadesToDescendants", testEndCascade},
	{"TimedOutAppendsOnlyFailed", testEndTimedOut},
	{"EndedChildNotifiesRunningParent", testEndNotifiesParent},
	{"SecondEndReturnsFalse", testEndTwice},
	{"StaleWorkerCannotCommit", testEndStaleWorker},
	{"UnknownExecution", testEndUnknown},
}

func (e *env) end(id string, status backend.Status, info *backend.ErrorInfo) bool {
	e.t.Helper()
	ended, err := e.b.EndExecution(e.ctx, id, status, info)
	if err != nil {
		e.t.Fatalf("EndExecution(%q, %s): unexpected error %v", id, status, err)
	}
	return ended
}

// wantEnded checks an execution ended with status and info at time at, its history
// ending with cancel_requested (for cancelled) and failed (Error = info).
func (e *env) wantEnded(id string, status backend.Status, info *backend.ErrorInfo, at time.Time) {
	e.t.Helper()
	x := e.get(id)
	if x.Status != status {
		e.t.Fatalf("%s: status %s, want %s", id, x.Status, status)
	}
	if x.Error == nil || *x.Error != *info {
		e.t.Fatalf("%s: Error %+v, want %+v", id, x.Error, info)
	}
	if x.CompletedAt == nil {
		e.t.Fatalf("%s: CompletedAt nil, want %v", id, at)
	}
	wantTime(e.t, id+" CompletedAt", *x.CompletedAt, at)
	h := e.history(id)
	tail := []backend.EventKind{backend.EventFailed}
	if status == backend.StatusCancelled {
		tail = []backend.EventKind{backend.EventCancelRequested, backend.EventFailed}
	}
	if len(h) < len(tail) || !reflect.DeepEqual(kinds(h[len(h)-len(tail):]), tail) {
		e.t.Fatalf("%s: history %v, want it to end with %v", id, kinds(h), tail)
	}
	last := h[len(h)-1]
	if last.Error == nil || *last.Error != *info {
		e.t.Fatalf("%s: failed event Error %+v, want %+v", id, last.Error, info)
	}
	wantTime(e.t, id+" failed event At", last.At, at)
}

// family builds parent -> child -> grand (each child at its parent's seq 1), plus a
// completed child "done" of parent at seq 2. The child also has an activity at seq 2.
// It returns the claimed workflow task of grand and the claimed activity task of child.
func (e *env) family() (grandWF, childAct backend.Task) {
	e.t.Helper()
	e.startChild("parent", "child")
	cw := e.claimOne(backend.TaskWorkflow, "child")
	g := newExec("grand")
	g.ParentID, g.ParentSeq, g.Entry = "child", 1, "lib.star:grand"
	e.completeWF(backend.WorkflowTaskResult{Task: cw.Ref(), ExecutionID: "child", ExpectedVersion: 0,
		Events: []backend.NewEvent{
			{Seq: 1, Kind: backend.EventChildScheduled, Name: g.Entry},
			{Seq: 2, Kind: backend.EventActivityScheduled, Name: "a"},
		},
		Tasks:    []backend.NewTask{{Kind: backend.TaskActivity, Seq: 2, Attempt: 1, Payload: activityPayload("a")}},
		Children: []backend.NewExecution{g}})
	grandWF = e.claimOne(backend.TaskWorkflow, "grand")
	childAct = e.claimOne(backend.TaskActivity, "child")
	// A second child of parent that already completed.
	e.signal("parent", "more", `1`)
	pw := e.claimOne(backend.TaskWorkflow, "parent")
	d := newExec("done")
	d.ParentID, d.ParentSeq = "parent", 2
	e.completeWF(backend.WorkflowTaskResult{Task: pw.Ref(), ExecutionID: "parent", ExpectedVersion: 1,
		Events:   []backend.NewEvent{{Seq: 2, Kind: backend.EventChildScheduled, Name: "main"}},
		Children: []backend.NewExecution{d}})
	dw := e.claimOne(backend.TaskWorkflow, "done")
	e.completeWF(backend.WorkflowTaskResult{Task: dw.Ref(), ExecutionID: "done", ExpectedVersion: 0,
		Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`"ok"`)}})
	pw = e.claimOne(backend.TaskWorkflow, "parent")
	e.completeWF(backend.WorkflowTaskResult{Task: pw.Ref(), ExecutionID: "parent", ExpectedVersion: 2})
	return grandWF, childAct
}

func testEndCascade(t *testing.T, e *env) {
	grandWF, childAct := e.family()
	doneHistory := kinds(e.history("done"))
	e.clock.Advance(time.Minute)
	info := &backend.ErrorInfo{Message: "cancelled by ann", Type: "cancelled"}
	if !e.end("parent", backend.StatusCancelled, info) {
		t.Fatalf("EndExecution(parent) = false for a running execution, want true")
	}
	now := e.clock.Now()
	for _, id := range []string{"parent", "child", "grand"} {
		e.wantEnded(id, backend.StatusCancelled, info, now)
	}
	// A completed descendant is left as it was.
	if x := e.get("done"); x.Status != backend.StatusCompleted {
		t.Fatalf("completed child: status %s after the cascade, want completed", x.Status)
	}
	if got := kinds(e.history("done")); !reflect.DeepEqual(got, doneHistory) {
		t.Fatalf("completed child: history %v after the cascade, want unchanged %v", got, doneHistory)
	}
	// Claimed tasks were deleted too: their holders cannot record anything.
	err := e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: childAct.Ref(), ExecutionID: "child", Seq: 2,
		Name: "a", Result: json.RawMessage(`1`)})
	wantErrIs(t, "CompleteActivityTask of a claimed task of an ended descendant", err, backend.ErrLeaseLost)
	_, err = e.b.CompleteWorkflowTask(e.ctx, backend.WorkflowTaskResult{Task: grandWF.Ref(), ExecutionID: "grand",
		ExpectedVersion: 0, Finish: &backend.Finish{Status: backend.StatusCompleted}})
	wantErrIs(t, "CompleteWorkflowTask of a claimed task of an ended descendant", err, backend.ErrLeaseLost)
	wantErrIs(t, "ExtendLeases/DeleteTask of a deleted task", e.b.DeleteTask(e.ctx, grandWF.Ref()), backend.ErrLeaseLost)
	e.clock.Advance(24 * time.Hour)
	e.claimNone("every task of the tree was deleted")
	e.wantEnded("grand", backend.StatusCancelled, info, now)
	e.wantEnded("child", backend.StatusCancelled, info, now)
	// The children's endings are not reported to their (ended) parents.
	for _, id := range []string{"parent", "child"} {
		for _, ev := range e.history(id) {
			if ev.Kind == backend.EventChildCompleted && ev.Seq == 1 {
				t.Fatalf("%s: history %v holds a child_completed for its cancelled child", id, kinds(e.history(id)))
			}
		}
	}
}

func testEndTimedOut(t *testing.T, e *env) {
	e.create("x")
	e.scheduleActivities("x", 0, 1, "a")
	e.clock.Advance(time.Second)
	info := &backend.ErrorInfo{Message: "execution timed out after 1s", Type: "timeout"}
	if !e.end("x", backend.StatusTimedOut, info) {
		t.Fatalf("EndExecution = false, want true")
	}
	e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled, backend.EventFailed)
	e.wantEnded("x", backend.StatusTimedOut, info, Epoch.Add(time.Second))
	if x := e.get("x"); len(x.Result) != 0 && string(x.Result) != "null" {
		t.Fatalf("after EndExecution: Result %s, want none", x.Result)
	}
	e.claimNone("the pending activity task was deleted")
}

func testEndNotifiesParent(t *testing.T, e *env) {
	e.startChild("parent", "child")
	e.claimOne(backend.TaskWorkflow, "child") // claimed by a worker when it is cancelled
	e.clock.Advance(time.Second)
	info := &backend.ErrorInfo{Message: "cancelled", Type: "cancelled"}
	if !e.end("child", backend.StatusCancelled, info) {
		t.Fatalf("EndExecution(child) = false, want true")
	}
	e.wantEnded("child", backend.StatusCancelled, info, Epoch.Add(time.Second+time.Millisecond))
	if x := e.get("parent"); x.Status != backend.StatusRunning {
		t.Fatalf("parent: status %s, want running (EndExecution ends descendants, not ancestors)", x.Status)
	}
	h := e.wantKinds("parent", backend.EventStarted, backend.EventChildScheduled, backend.EventChildCompleted)
	ev := h[2]
	if ev.Seq != 1 || ev.Name != "lib.star:greet" {
		t.Fatalf("child_completed: seq %d name %q, want seq 1 (ParentSeq) name lib.star:greet (the child's entry)", ev.Seq, ev.Name)
	}
	if ev.Error == nil || *ev.Error != *info {
		t.Fatalf("child_completed Error = %+v, want %+v", ev.Error, info)
	}
	pw := e.claimOne(backend.TaskWorkflow, "parent")
	if pw.Queue != "pq" {
		t.Fatalf("parent's workflow task Queue = %q, want pq", pw.Queue)
	}
	e.claimNone("only the parent's workflow task")
}

func testEndTwice(t *testing.T, e *env) {
	e.startChild("parent", "child")
	info := &backend.ErrorInfo{Message: "stop", Type: "cancelled"}
	if !e.end("child", backend.StatusCancelled, info) {
		t.Fatalf("first EndExecution = false, want true")
	}
	pw := e.claimOne(backend.TaskWorkflow, "parent")
	childBefore, parentBefore := e.get("child"), kinds(e.history("parent"))
	e.clock.Advance(time.Minute)
	for _, st := range []backend.Status{backend.StatusCancelled, backend.StatusTimedOut} {
		if e.end("child", st, &backend.ErrorInfo{Message: "again"}) {
			t.Fatalf("EndExecution(%s) of an ended execution = true, want false", st)
		}
	}
	after := e.get("child")
	if after.Status != childBefore.Status || *after.Error != *childBefore.Error || after.Version != childBefore.Version ||
		!after.CompletedAt.Equal(*childBefore.CompletedAt) {
		t.Fatalf("ended child changed by a second EndExecution: %+v, was %+v", after, childBefore)
	}
	e.wantKinds("child", backend.EventStarted, backend.EventCancelRequested, backend.EventFailed)
	if got := kinds(e.history("parent")); !reflect.DeepEqual(got, parentBefore) {
		t.Fatalf("parent history after a second EndExecution of its child: %v, want unchanged %v", got, parentBefore)
	}
	// The parent's workflow task is still held, not re-flagged.
	v := e.get("parent").Version
	e.completeWF(backend.WorkflowTaskResult{Task: pw.Ref(), ExecutionID: "parent", ExpectedVersion: v})
	e.claimNone("a second EndExecution enqueues nothing")

	// A completed execution is not ended either.
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0,
		Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`1`)}})
	if e.end("x", backend.StatusCancelled, &backend.ErrorInfo{Message: "late"}) {
		t.Fatalf("EndExecution of a completed execution = true, want false")
	}
	if x := e.get("x"); x.Status != backend.StatusCompleted || x.Error != nil {
		t.Fatalf("completed execution after EndExecution: status %s error %v, want completed, no error", x.Status, x.Error)
	}
	e.wantKinds("x", backend.EventStarted, backend.EventCompleted)
}

func testEndStaleWorker(t *testing.T, e *env) {
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	info := &backend.ErrorInfo{Message: "cancelled", Type: "cancelled"}
	if !e.end("x", backend.StatusCancelled, info) {
		t.Fatalf("EndExecution = false, want true")
	}
	_, err := e.b.CompleteWorkflowTask(e.ctx, backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0,
		Events: []backend.NewEvent{{Seq: 1, Kind: backend.EventActivityScheduled, Name: "a"}},
		Tasks:  []backend.NewTask{{Kind: backend.TaskActivity, Seq: 1, Attempt: 1, Payload: activityPayload("a")}},
		Logs:   []string{"stale"},
		Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`1`)}})
	if err == nil {
		t.Fatalf("CompleteWorkflowTask by a worker that held the task of an ended execution: nil error")
	}
	wantStaleOrLost(t, "CompleteWorkflowTask of an ended execution", err)
	e.wantEnded("x", backend.StatusCancelled, info, Epoch)
	e.wantKinds("x", backend.EventStarted, backend.EventCancelRequested, backend.EventFailed)
	if logs, err := e.b.Logs(e.ctx, "x"); err != nil || len(logs) != 0 {
		t.Fatalf("Logs after a refused commit: (%v, %v), want none", logs, err)
	}
	e.claimNone("a refused commit creates no task")
}

func wantStaleOrLost(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, backend.ErrStaleExecution) && !errors.Is(err, backend.ErrLeaseLost) {
		t.Fatalf("%s: error %v, want ErrStaleExecution or ErrLeaseLost", what, err)
	}
}

func testEndUnknown(t *testing.T, e *env) {
	ended, err := e.b.EndExecution(e.ctx, "nope", backend.StatusCancelled, &backend.ErrorInfo{Message: "x"})
	wantErrIs(t, "EndExecution of an unknown execution", err, backend.ErrNotFound)
	if ended {
		t.Fatalf("EndExecution of an unknown execution: ended = true")
	}
}
