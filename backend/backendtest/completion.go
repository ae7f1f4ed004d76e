package backendtest

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

var completionTests = []test{
	{"StaleFenceCannotCompleteWorkflowTask", testStaleWorkflow},
	{"StaleFenceCannotCompleteActivityTask", testStaleActivity},
	{"StaleFenceCannotFireTimer", testStaleTimer},
	{"CompletedTaskCannotBeCompletedAgain", testDoubleComplete},
	{"VersionMismatchIsStale", testVersionMismatch},
	{"WorkflowTaskCreatesEventsTasksAndLogs", testWorkflowOutput},
	{"ActivityCompleted", testActivityCompleted},
	{"ActivityFailed", testActivityFailed},
	{"RetryActivityTask", testRetryActivity},
	{"ResultsWhilePendingKeepOneWorkflowTask", testEnqueueWhilePending},
	{"ResultWhileClaimedMakesWorkflowTaskRunnableAgain", testRerun},
	{"DeleteTask", testDeleteTask},
	{"FinishCompleted", testFinishCompleted},
	{"FinishFailed", testFinishFailed},
	{"FinishDeletesRemainingTasks", testFinishDeletesTasks},
	{"ChildCompletionNotifiesParent", testChildCompleted},
	{"ChildFailureNotifiesParent", testChildFailed},
}

// reclaimAndReclaim makes the task stale for w1: its lease expires, it is reclaimed
// and claimed again by w2. It returns w2's claim.
func (e *env) reclaimAndReclaim(old backend.Task) backend.Task {
	e.t.Helper()
	e.clock.Advance(lease + time.Second)
	e.heartbeat("w1", "w2")
	n, err := e.b.ReclaimTasks(e.ctx, time.Hour)
	if err != nil || n < 1 {
		e.t.Fatalf("ReclaimTasks after the lease expired: (%d, %v), want at least one task", n, err)
	}
	fresh := e.claimOneBy("w2", old.Kind, old.ExecutionID)
	if fresh.ID != old.ID || fresh.Fence == old.Fence {
		e.t.Fatalf("claim after reclaim: task %d fence %d, want task %d with a new fence (old %d)",
			fresh.ID, fresh.Fence, old.ID, old.Fence)
	}
	return fresh
}

// staleRefFails checks that every fenced method refuses ref with ErrLeaseLost and
// that the history of execID did not change.
func (e *env) staleRefFails(ref backend.TaskRef, execID string, version int64) {
	e.t.Helper()
	before := e.history(execID)
	e.clock.Advance(time.Millisecond)
	_, err := e.b.CompleteWorkflowTask(e.ctx, backend.WorkflowTaskResult{
		Task: ref, ExecutionID: execID, ExpectedVersion: version,
		Events: []backend.NewEvent{{Seq: 99, Kind: backend.EventSideEffect, Name: "now", Data: json.RawMessage(`1`)}},
		Tasks:  []backend.NewTask{{Kind: backend.TaskActivity, Seq: 99, Attempt: 1, Payload: activityPayload("evil")}},
		Logs:   []string{"stale"},
	})
	wantErrIs(e.t, "CompleteWorkflowTask with a stale fence", err, backend.ErrLeaseLost)
	err = e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: ref, ExecutionID: execID, Seq: 1, Name: "a",
		Result: json.RawMessage(`"stale"`)})
	wantErrIs(e.t, "CompleteActivityTask with a stale fence", err, backend.ErrLeaseLost)
	err = e.b.FireTimer(e.ctx, ref)
	wantErrIs(e.t, "FireTimer with a stale fence", err, backend.ErrLeaseLost)
	err = e.b.RetryActivityTask(e.ctx, ref, e.clock.Now(), 2, activityPayload("evil"), nil)
	wantErrIs(e.t, "RetryActivityTask with a stale fence", err, backend.ErrLeaseLost)
	err = e.b.ReleaseTask(e.ctx, ref, time.Time{})
	wantErrIs(e.t, "ReleaseTask with a stale fence", err, backend.ErrLeaseLost)
	err = e.b.DeleteTask(e.ctx, ref)
	wantErrIs(e.t, "DeleteTask with a stale fence", err, backend.ErrLeaseLost)

	after := e.history(execID)
	if !reflect.DeepEqual(kinds(after), kinds(before)) {
		e.t.Fatalf("history after stale calls: %v, want unchanged %v", kinds(after), kinds(before))
	}
	if v := e.get(execID).Version; v != version {
		e.t.Fatalf("version after stale calls = %d, want unchanged %d", v, version)
	}
	logs, err := e.b.Logs(e.ctx, execID)
	if err != nil {
		e.t.Fatalf("Logs: %v", err)
	}
	if len(logs) != 0 {
		e.t.Fatalf("logs after a stale CompleteWorkflowTask: %v, want none", logs)
	}
	e.claimNone("after stale calls (they must not create or release tasks)")
}

func testStaleWorkflow(t *testing.T, e *env) {
	e.create("x")
	old := e.claimOne(backend.TaskWorkflow, "x")
	// Reclaimed but not yet claimed again: the old ref is already dead.
	e.clock.Advance(lease + time.Second)
	e.heartbeat("w1")
	if n, err := e.b.ReclaimTasks(e.ctx, time.Hour); err != nil || n != 1 {
		t.Fatalf("ReclaimTasks: (%d, %v), want (1, nil)", n, err)
	}
	_, err := e.b.CompleteWorkflowTask(e.ctx, backend.WorkflowTaskResult{Task: old.Ref(), ExecutionID: "x"})
	wantErrIs(t, "CompleteWorkflowTask of a reclaimed, unclaimed task", err, backend.ErrLeaseLost)
	fresh := e.claimOneBy("w2", backend.TaskWorkflow, "x")
	e.staleRefFails(old.Ref(), "x", 0)
	// The new holder is unaffected.
	e.completeWF(backend.WorkflowTaskResult{Task: fresh.Ref(), ExecutionID: "x", ExpectedVersion: 0})
}

func testStaleActivity(t *testing.T, e *env) {
	e.create("x")
	v := e.scheduleActivities("x", 0, 1, "a")
	old := e.claimOne(backend.TaskActivity, "x")
	fresh := e.reclaimAndReclaim(old)
	e.staleRefFails(old.Ref(), "x", v)
	if err := e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: fresh.Ref(), ExecutionID: "x", Seq: 1,
		Name: "a", Result: json.RawMessage(`"fresh"`)}); err != nil {
		t.Fatalf("CompleteActivityTask by the new holder: %v", err)
	}
	h := e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled, backend.EventActivityCompleted)
	wantJSON(t, "activity_completed Data", h[2].Data, []byte(`"fresh"`))
}

func testStaleTimer(t *testing.T, e *env) {
	e.create("x")
	v := e.scheduleTimer("x", 0, 1, Epoch)
	old := e.claimOne(backend.TaskTimer, "x")
	fresh := e.reclaimAndReclaim(old)
	e.staleRefFails(old.Ref(), "x", v)
	if err := e.b.FireTimer(e.ctx, fresh.Ref()); err != nil {
		t.Fatalf("FireTimer by the new holder: %v", err)
	}
	e.wantKinds("x", backend.EventStarted, backend.EventTimerScheduled, backend.EventTimerFired)
}

func testDoubleComplete(t *testing.T, e *env) {
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0,
		Events: []backend.NewEvent{{Seq: 1, Kind: backend.EventActivityScheduled, Name: "a"}},
		Tasks:  []backend.NewTask{{Kind: backend.TaskActivity, Seq: 1, Attempt: 1, Payload: activityPayload("a")}}})
	_, err := e.b.CompleteWorkflowTask(e.ctx, backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 1})
	wantErrIs(t, "completing a workflow task twice", err, backend.ErrLeaseLost)

	act := e.claimOne(backend.TaskActivity, "x")
	r := backend.ActivityResult{Task: act.Ref(), ExecutionID: "x", Seq: 1, Name: "a", Result: json.RawMessage(`1`)}
	if err := e.b.CompleteActivityTask(e.ctx, r); err != nil {
		t.Fatalf("CompleteActivityTask: %v", err)
	}
	wantErrIs(t, "completing an activity task twice", e.b.CompleteActivityTask(e.ctx, r), backend.ErrLeaseLost)
	e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled, backend.EventActivityCompleted)
}

func testVersionMismatch(t *testing.T, e *env) {
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	for _, v := range []int64{1, -1, 7} {
		_, err := e.b.CompleteWorkflowTask(e.ctx, backend.WorkflowTaskResult{
			Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: v,
			Events: []backend.NewEvent{{Seq: 1, Kind: backend.EventSideEffect, Name: "uuid", Data: json.RawMessage(`"u"`)}},
			Tasks:  []backend.NewTask{{Kind: backend.TaskTimer, Seq: 2, RunAt: Epoch}},
			Logs:   []string{"nope"},
			Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`1`)},
		})
		wantErrIs(t, "CompleteWorkflowTask with expected version "+itoa(v)+" (actual 0)", err, backend.ErrStaleExecution)
	}
	x := e.get("x")
	if x.Version != 0 || x.Status != backend.StatusRunning {
		t.Fatalf("after stale completions: version %d status %s, want 0 running", x.Version, x.Status)
	}
	e.wantKinds("x", backend.EventStarted)
	e.claimNone("after stale completions")
	// The task is still held: the right version goes through.
	v := e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0})
	if got := e.get("x").Version; got != v {
		t.Fatalf("GetExecution Version = %d, want %d as returned by CompleteWorkflowTask", got, v)
	}
}

func itoa(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func testWorkflowOutput(t *testing.T, e *env) {
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	e.clock.Advance(2 * time.Second)
	now := e.clock.Now()
	v := e.completeWF(backend.WorkflowTaskResult{
		Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0,
		Events: []backend.NewEvent{
			{Seq: 1, Kind: backend.EventSideEffect, Name: "now", Data: json.RawMessage(`1700000000`)},
			{Seq: 2, Kind: backend.EventActivityScheduled, Name: "a", Data: json.RawMessage(`{"args":[]}`)},
			{Seq: 3, Kind: backend.EventTimerScheduled, Name: "sleep", Data: json.RawMessage(`{}`)},
		},
		Tasks: []backend.NewTask{
			{Kind: backend.TaskActivity, Seq: 2, Attempt: 1, Payload: activityPayload("a"), Queue: "special"},
			{Kind: backend.TaskTimer, Seq: 3, RunAt: now.Add(time.Hour)},
		},
		Logs: []string{"first line", "second line"},
	})
	if v != 1 {
		t.Fatalf("new version = %d, want 1", v)
	}
	x := e.get("x")
	if x.Version != 1 || x.Status != backend.StatusRunning {
		t.Fatalf("execution after a workflow task: version %d status %s, want 1 running", x.Version, x.Status)
	}
	wantTime(t, "UpdatedAt", x.UpdatedAt, now)
	e.wantKinds("x", backend.EventStarted, backend.EventSideEffect, backend.EventActivityScheduled, backend.EventTimerScheduled)
	act := e.claim(backend.ClaimRequest{})
	if len(act) != 1 || act[0].Kind != backend.TaskActivity || act[0].Seq != 2 || act[0].Queue != "special" {
		t.Fatalf("claimable after the workflow task: %s, want only the activity task (seq 2, queue special)", describe(act))
	}
	e.clock.Advance(time.Hour)
	e.claimOne(backend.TaskTimer, "x")
	e.claimNone("the workflow task was removed by CompleteWorkflowTask", backend.TaskWorkflow)
	logs, err := e.b.Logs(e.ctx, "x")
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	if len(logs) != 2 || logs[0].Message != "first line" || logs[1].Message != "second line" {
		t.Fatalf("Logs = %+v, want the two lines in order", logs)
	}
	for _, l := range logs {
		if l.ExecutionID != "x" {
			t.Errorf("log ExecutionID = %q, want x", l.ExecutionID)
		}
		wantTime(t, "log At", l.At, now)
	}
	if other, err := e.b.Logs(e.ctx, "other"); err != nil || len(other) != 0 {
		t.Fatalf("Logs of an execution that printed nothing: (%v, %v), want none", other, err)
	}
}

func testActivityCompleted(t *testing.T, e *env) {
	e.create("x")
	v := e.scheduleActivities("x", 0, 1, "fetch")
	act := e.claimOne(backend.TaskActivity, "x")
	e.clock.Advance(3 * time.Second)
	if err := e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: act.Ref(), ExecutionID: "x", Seq: 1,
		Name: "fetch", Result: json.RawMessage(`{"user":"u1","n":[1,2]}`)}); err != nil {
		t.Fatalf("CompleteActivityTask: %v", err)
	}
	h := e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled, backend.EventActivityCompleted)
	ev := h[2]
	if ev.Seq != 1 || ev.Name != "fetch" || ev.Error != nil {
		t.Fatalf("activity_completed = seq %d name %q error %v, want seq 1 name fetch no error", ev.Seq, ev.Name, ev.Error)
	}
	wantJSON(t, "activity_completed Data", ev.Data, []byte(`{"user":"u1","n":[1,2]}`))
	wantTime(t, "activity_completed At", ev.At, Epoch.Add(3*time.Second))
	if x := e.get("x"); x.Version != v {
		t.Fatalf("version after an activity completed = %d, want unchanged %d", x.Version, v)
	}
	wf := e.claimOne(backend.TaskWorkflow, "x")
	wantTime(t, "RunAt of the enqueued workflow task", wf.RunAt, Epoch.Add(3*time.Second))
	e.claimNone("the activity task is gone")
}

func testActivityFailed(t *testing.T, e *env) {
	e.create("x")
	e.scheduleActivities("x", 0, 1, "charge")
	act := e.claimOne(backend.TaskActivity, "x")
	fail := &backend.ErrorInfo{Message: "card declined", Type: "activity", Activity: "charge", Attempts: 3}
	if err := e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: act.Ref(), ExecutionID: "x", Seq: 1,
		Name: "charge", Error: fail}); err != nil {
		t.Fatalf("CompleteActivityTask with an error: %v", err)
	}
	h := e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled, backend.EventActivityFailed)
	if h[2].Error == nil || *h[2].Error != *fail {
		t.Fatalf("activity_failed Error = %+v, want %+v", h[2].Error, fail)
	}
	if h[2].Seq != 1 || h[2].Name != "charge" {
		t.Fatalf("activity_failed seq %d name %q, want 1 charge", h[2].Seq, h[2].Name)
	}
	e.claimOne(backend.TaskWorkflow, "x")
}

func testRetryActivity(t *testing.T, e *env) {
	e.create("x")
	e.scheduleActivities("x", 0, 1, "flaky")
	first := e.claimOne(backend.TaskActivity, "x")
	next := activityPayload("flaky-2")
	if err := e.b.RetryActivityTask(e.ctx, first.Ref(), Epoch.Add(5*time.Second), 2, next, nil); err != nil {
		t.Fatalf("RetryActivityTask: %v", err)
	}
	e.claimNone("before the retry's RunAt")
	e.clock.Advance(5 * time.Second)
	second := e.claimOne(backend.TaskActivity, "x")
	if second.ID != first.ID || second.Attempt != 2 || second.Seq != 1 {
		t.Fatalf("retried task: id %d attempt %d seq %d, want id %d attempt 2 seq 1", second.ID, second.Attempt, second.Seq, first.ID)
	}
	if second.Fence <= first.Fence {
		t.Fatalf("retried task fence %d, want > %d", second.Fence, first.Fence)
	}
	wantJSON(t, "retried task Payload", second.Payload, next)
	e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled)
	e.claimNone("a retry does not enqueue the workflow task")
}

func testEnqueueWhilePending(t *testing.T, e *env) {
	e.create("x")
	e.scheduleActivities("x", 0, 1, "a", "b", "c")
	acts := e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskActivity}})
	if len(acts) != 3 {
		t.Fatalf("claimed %s, want three activity tasks", describe(acts))
	}
	for _, a := range acts {
		e.clock.Advance(time.Second)
		if err := e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: a.Ref(), ExecutionID: "x", Seq: a.Seq,
			Name: "n", Result: json.RawMessage(`true`)}); err != nil {
			t.Fatalf("CompleteActivityTask(seq %d): %v", a.Seq, err)
		}
	}
	e.claimOne(backend.TaskWorkflow, "x")
	e.claimNone("three results while the workflow task was pending make one workflow task")
}

func testRerun(t *testing.T, e *env) {
	e.create("x")
	v := e.scheduleActivities("x", 0, 1, "a", "b")
	acts := e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskActivity}})
	if len(acts) != 2 {
		t.Fatalf("claimed %s, want two activity tasks", describe(acts))
	}
	complete := func(a backend.Task) {
		t.Helper()
		if err := e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: a.Ref(), ExecutionID: "x", Seq: a.Seq,
			Name: "n", Result: json.RawMessage(`1`)}); err != nil {
			t.Fatalf("CompleteActivityTask(seq %d): %v", a.Seq, err)
		}
	}
	complete(acts[0])
	wf := e.claimOne(backend.TaskWorkflow, "x")
	complete(acts[1]) // arrives while the workflow task runs
	e.claimNone("the workflow task is claimed; the new result must not create a second one")
	e.clock.Advance(time.Second)
	v = e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: v})
	again := e.claimOne(backend.TaskWorkflow, "x")
	if again.Fence <= wf.Fence {
		t.Fatalf("rerun workflow task fence %d, want > %d", again.Fence, wf.Fence)
	}
	if again.RunAt.After(e.clock.Now()) {
		t.Fatalf("rerun workflow task RunAt %v, want at once (now is %v)", again.RunAt, e.clock.Now())
	}
	// Without new results the task is removed.
	e.completeWF(backend.WorkflowTaskResult{Task: again.Ref(), ExecutionID: "x", ExpectedVersion: v})
	e.claimNone("after a workflow task with no concurrent results")
}

func testDeleteTask(t *testing.T, e *env) {
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	if err := e.b.DeleteTask(e.ctx, wf.Ref()); err != nil {
		t.Fatalf("DeleteTask: %v", err)
	}
	wantErrIs(t, "DeleteTask twice", e.b.DeleteTask(e.ctx, wf.Ref()), backend.ErrLeaseLost)
	e.clock.Advance(time.Hour)
	e.claimNone("after DeleteTask")
	e.wantKinds("x", backend.EventStarted)
	if x := e.get("x"); x.Status != backend.StatusRunning || x.Version != 0 {
		t.Fatalf("after DeleteTask: status %s version %d, want running 0 (nothing recorded)", x.Status, x.Version)
	}
}

func testFinishCompleted(t *testing.T, e *env) {
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	e.clock.Advance(time.Second)
	// A root, said so (NoParent): a backend may skip telling a parent.
	v := e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0, NoParent: true,
		Events: []backend.NewEvent{{Seq: 1, Kind: backend.EventSideEffect, Name: "uuid", Data: json.RawMessage(`"id"`)}},
		Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`{"greetings":["hi"],"sent":1}`)}})
	x := e.get("x")
	if x.Status != backend.StatusCompleted || x.Version != v || x.Error != nil {
		t.Fatalf("finished execution: status %s version %d error %v, want completed %d no error", x.Status, x.Version, x.Error, v)
	}
	wantJSON(t, "Result", x.Result, []byte(`{"greetings":["hi"],"sent":1}`))
	if x.CompletedAt == nil {
		t.Fatalf("CompletedAt = nil, want %v", Epoch.Add(time.Second))
	}
	wantTime(t, "CompletedAt", *x.CompletedAt, Epoch.Add(time.Second))
	h := e.wantKinds("x", backend.EventStarted, backend.EventSideEffect, backend.EventCompleted)
	wantJSON(t, "completed event Data", h[2].Data, []byte(`{"greetings":["hi"],"sent":1}`))
	e.claimNone("after the execution completed")
	_, err := e.b.CompleteWorkflowTask(e.ctx, backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: v})
	if err == nil {
		t.Fatalf("CompleteWorkflowTask after finishing: nil error, want ErrLeaseLost or ErrStaleExecution")
	}
}

func testFinishFailed(t *testing.T, e *env) {
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	fail := &backend.ErrorInfo{Message: "boom", Type: "script", Stack: "main.star:3:5 in main"}
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0,
		Finish: &backend.Finish{Status: backend.StatusFailed, Error: fail}})
	x := e.get("x")
	if x.Status != backend.StatusFailed || x.Error == nil || *x.Error != *fail {
		t.Fatalf("failed execution: status %s error %+v, want failed %+v", x.Status, x.Error, fail)
	}
	if x.CompletedAt == nil {
		t.Fatalf("CompletedAt = nil for a failed execution, want the failure time")
	}
	h := e.wantKinds("x", backend.EventStarted, backend.EventFailed)
	if h[1].Error == nil || *h[1].Error != *fail {
		t.Fatalf("failed event Error = %+v, want %+v", h[1].Error, fail)
	}
	if !x.Status.Terminal() {
		t.Fatalf("status %s is not terminal", x.Status)
	}
}

func testFinishDeletesTasks(t *testing.T, e *env) {
	e.create("x")
	v := e.scheduleActivities("x", 0, 1, "a", "b", "c")
	acts := e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskActivity}, Limit: 2})
	if len(acts) != 2 {
		t.Fatalf("claimed %s, want two activity tasks", describe(acts))
	}
	if err := e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: acts[0].Ref(), ExecutionID: "x",
		Seq: acts[0].Seq, Name: "a", Result: json.RawMessage(`1`)}); err != nil {
		t.Fatalf("CompleteActivityTask: %v", err)
	}
	wf := e.claimOne(backend.TaskWorkflow, "x")
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: v,
		Events: []backend.NewEvent{{Seq: 4, Kind: backend.EventTimerScheduled, Name: "sleep"}},
		Tasks:  []backend.NewTask{{Kind: backend.TaskTimer, Seq: 4, RunAt: Epoch.Add(time.Hour)}},
		Finish: &backend.Finish{Status: backend.StatusCancelled, Error: &backend.ErrorInfo{Message: "cancelled", Type: "cancelled"}}})
	if s := e.get("x").Status; s != backend.StatusCancelled {
		t.Fatalf("status = %s, want cancelled", s)
	}
	e.clock.Advance(2 * time.Hour)
	e.claimNone("finish deletes the pending activity task and the timer")
	// The still-running activity cannot record a result any more.
	err := e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: acts[1].Ref(), ExecutionID: "x",
		Seq: acts[1].Seq, Name: "b", Result: json.RawMessage(`2`)})
	if err != nil {
		wantErrIs(t, "CompleteActivityTask after the execution ended", err, backend.ErrLeaseLost)
	}
	h := e.history("x")
	if last := h[len(h)-1].Kind; last != backend.EventFailed && last != backend.EventCompleted {
		t.Fatalf("last event after a late activity result: %s, want the execution's final event (history %v)", last, kinds(h))
	}
	for _, ev := range h {
		if ev.Kind == backend.EventActivityCompleted && ev.Seq == acts[1].Seq {
			t.Fatalf("history %v holds the late result of seq %d", kinds(h), acts[1].Seq)
		}
	}
}

// startChild runs the parent's first workflow task, which starts a child at seq 1.
func (e *env) startChild(parent, child string) {
	e.t.Helper()
	e.create(parent, func(n *backend.NewExecution) { n.Queue = "pq" })
	wf := e.claimOne(backend.TaskWorkflow, parent)
	ch := newExec(child)
	ch.ParentID = parent
	ch.ParentSeq = 1
	ch.Entry = "lib.star:greet"
	ch.Args = json.RawMessage(`["bob"]`)
	ch.Queue = "pq"
	e.clock.Advance(time.Millisecond) // the child is newer than its parent
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: parent, ExpectedVersion: 0,
		Events:   []backend.NewEvent{{Seq: 1, Kind: backend.EventChildScheduled, Name: ch.Entry, Data: json.RawMessage(`{}`)}},
		Children: []backend.NewExecution{ch}})
	x := e.get(child)
	if x.ParentID != parent || x.ParentSeq != 1 || x.Entry != "lib.star:greet" || x.Status != backend.StatusRunning {
		e.t.Fatalf("child: parent %q seq %d entry %q status %s, want %s 1 lib.star:greet running",
			x.ParentID, x.ParentSeq, x.Entry, x.Status, parent)
	}
	h := e.wantKinds(child, backend.EventStarted)
	wantJSON(e.t, "child started Data", h[0].Data, []byte(`["bob"]`))
	e.claimNone("the parent's workflow task waits for the child", backend.TaskActivity, backend.TaskTimer)
}

func testChildCompleted(t *testing.T, e *env) {
	e.startChild("parent", "child")
	cw := e.claimOne(backend.TaskWorkflow, "child")
	e.claimNone("only the child had a workflow task")
	e.completeWF(backend.WorkflowTaskResult{Task: cw.Ref(), ExecutionID: "child", ExpectedVersion: 0,
		Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`"Hello, bob!"`)}})
	h := e.wantKinds("parent", backend.EventStarted, backend.EventChildScheduled, backend.EventChildCompleted)
	ev := h[2]
	if ev.Seq != 1 || ev.Name != "lib.star:greet" || ev.Error != nil {
		t.Fatalf("child_completed: seq %d name %q error %v, want seq 1 name lib.star:greet no error", ev.Seq, ev.Name, ev.Error)
	}
	wantJSON(t, "child_completed Data", ev.Data, []byte(`"Hello, bob!"`))
	pw := e.claimOne(backend.TaskWorkflow, "parent")
	if pw.Queue != "pq" {
		t.Fatalf("parent's workflow task Queue = %q, want pq", pw.Queue)
	}
	kids, err := e.b.ListExecutions(e.ctx, backend.ListFilter{ParentID: "parent"})
	if err != nil || len(kids) != 1 || kids[0].ID != "child" || kids[0].Status != backend.StatusCompleted {
		t.Fatalf("ListExecutions(ParentID parent) = (%v, %v), want the completed child", kids, err)
	}
}

func testChildFailed(t *testing.T, e *env) {
	e.startChild("parent", "child")
	cw := e.claimOne(backend.TaskWorkflow, "child")
	fail := &backend.ErrorInfo{Message: "no such user", Type: "activity", Activity: "fetch", Attempts: 3}
	e.completeWF(backend.WorkflowTaskResult{Task: cw.Ref(), ExecutionID: "child", ExpectedVersion: 0,
		Finish: &backend.Finish{Status: backend.StatusFailed, Error: fail}})
	h := e.wantKinds("parent", backend.EventStarted, backend.EventChildScheduled, backend.EventChildCompleted)
	if h[2].Error == nil || *h[2].Error != *fail {
		t.Fatalf("child_completed Error = %+v, want %+v", h[2].Error, fail)
	}
	if h[2].Seq != 1 {
		t.Fatalf("child_completed Seq = %d, want 1", h[2].Seq)
	}
	e.claimOne(backend.TaskWorkflow, "parent")
}
