package backendtest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// handOffTests check the optional backend.HandOff extension; each is skipped when the
// backend does not implement it.
var handOffTests = []test{
	{"ActivityCompletionClaimsWorkflowTask", testHandOffActivityClaimsWorkflow},
	{"ActivityCompletionClaimsPendingWorkflowTask", testHandOffActivityClaimsPending},
	{"WorkflowTaskHeldByAnotherWorkerIsNotClaimed", testHandOffWorkflowHeld},
	{"ActivityCompletionQueuesFilter", testHandOffActivityQueues},
	{"ActivityCompletionStaleFence", testHandOffActivityStale},
	{"WorkflowCompletionClaimsNewActivities", testHandOffWorkflowClaimsActivities},
	{"WorkflowCompletionQueuesFilter", testHandOffWorkflowQueues},
	{"WorkflowCompletionFinishClaimsNothing", testHandOffWorkflowFinish},
	{"WorkflowCompletionStaleFence", testHandOffWorkflowStale},
	{"Chain", testHandOffChain},
}

// handOff returns the backend's HandOff extension, skipping the test without one.
func (e *env) handOff() backend.HandOff { return optional[backend.HandOff](e) }

// handOffReq is a hand-off claim of up to limit tasks for worker with the suite's lease.
func handOffReq(worker string, limit int, queues ...string) backend.ClaimRequest {
	return backend.ClaimRequest{WorkerID: worker, Queues: queues, Limit: limit, Lease: lease}
}

func activityDone(a backend.Task) backend.ActivityResult {
	return backend.ActivityResult{Task: a.Ref(), ExecutionID: a.ExecutionID, Seq: a.Seq, Name: "n",
		Result: json.RawMessage(`1`)}
}

// completeActivityAndClaim calls CompleteActivityTaskAndClaim, failing on error.
func (e *env) completeActivityAndClaim(h backend.HandOff, a backend.Task, claim backend.ClaimRequest) *backend.Task {
	e.t.Helper()
	tk, err := h.CompleteActivityTaskAndClaim(e.ctx, activityDone(a), claim)
	if err != nil {
		e.t.Fatalf("CompleteActivityTaskAndClaim(task %d of %s, seq %d): unexpected error %v", a.ID, a.ExecutionID, a.Seq, err)
	}
	return tk
}

// wantClaimed checks that tk is claimed by worker now, with a fence above after.
func (e *env) wantClaimed(what string, tk backend.Task, kind backend.TaskKind, execID, worker string, after int64) {
	e.t.Helper()
	if tk.Kind != kind || tk.ExecutionID != execID {
		e.t.Fatalf("%s: got %s, want a %s task of %s", what, describe([]backend.Task{tk}), kind, execID)
	}
	if tk.LeaseOwner != worker {
		e.t.Fatalf("%s: LeaseOwner = %q, want %q", what, tk.LeaseOwner, worker)
	}
	if tk.Fence <= after {
		e.t.Fatalf("%s: Fence = %d, want > %d (a claim bumps the fence)", what, tk.Fence, after)
	}
	wantTime(e.t, what+": LeaseExpiresAt", tk.LeaseExpiresAt, e.clock.Now().Add(lease))
}

// claimActivities claims n activity tasks of execID for w1.
func (e *env) claimActivities(execID string, n int) []backend.Task {
	e.t.Helper()
	acts := e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskActivity}})
	if len(acts) != n {
		e.t.Fatalf("claimed %s, want %d activity tasks of %s", describe(acts), n, execID)
	}
	return acts
}

func testHandOffActivityClaimsWorkflow(t *testing.T, e *env) {
	h := e.handOff()
	e.create("x")
	v := e.scheduleActivities("x", 0, 1, "a")
	act := e.claimActivities("x", 1)[0]
	e.clock.Advance(time.Second)
	tk := e.completeActivityAndClaim(h, act, handOffReq("w1", 1))
	if tk == nil {
		t.Fatal("CompleteActivityTaskAndClaim returned no task, want the execution's workflow task")
	}
	e.wantClaimed("handed-off workflow task", *tk, backend.TaskWorkflow, "x", "w1", 0)
	if tk.Queue != backend.DefaultQueue {
		t.Errorf("Queue = %q, want %q", tk.Queue, backend.DefaultQueue)
	}
	if tk.RunAt.After(e.clock.Now()) {
		t.Errorf("RunAt = %v, want due (now is %v)", tk.RunAt, e.clock.Now())
	}
	e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled, backend.EventActivityCompleted)
	e.claimNone("the handed-off workflow task is claimed")
	e.completeWF(backend.WorkflowTaskResult{Task: tk.Ref(), ExecutionID: "x", ExpectedVersion: v})
	e.claimNone("after the handed-off workflow task was completed")
}

func testHandOffActivityClaimsPending(t *testing.T, e *env) {
	h := e.handOff()
	e.create("x")
	e.scheduleActivities("x", 0, 1, "a", "b")
	acts := e.claimActivities("x", 2)
	if err := e.b.CompleteActivityTask(e.ctx, activityDone(acts[0])); err != nil {
		t.Fatalf("CompleteActivityTask: %v", err)
	}
	// The workflow task is pending after a claim and a release, with a fence above 0.
	wf := e.claimOneBy("w2", backend.TaskWorkflow, "x")
	if err := e.b.ReleaseTask(e.ctx, wf.Ref(), e.clock.Now()); err != nil {
		t.Fatalf("ReleaseTask: %v", err)
	}
	e.clock.Advance(time.Second)
	tk := e.completeActivityAndClaim(h, acts[1], handOffReq("w1", 1))
	if tk == nil {
		t.Fatal("CompleteActivityTaskAndClaim returned no task, want the pending workflow task")
	}
	e.wantClaimed("handed-off workflow task", *tk, backend.TaskWorkflow, "x", "w1", wf.Fence)
	e.claimNone("one workflow task per execution, claimed by the hand-off")
	wantErrIs(t, "ReleaseTask with the fence of the earlier claim",
		e.b.ReleaseTask(e.ctx, wf.Ref(), e.clock.Now()), backend.ErrLeaseLost)
}

func testHandOffWorkflowHeld(t *testing.T, e *env) {
	h := e.handOff()
	e.create("x")
	v := e.scheduleActivities("x", 0, 1, "a", "b")
	acts := e.claimActivities("x", 2)
	if err := e.b.CompleteActivityTask(e.ctx, activityDone(acts[0])); err != nil {
		t.Fatalf("CompleteActivityTask: %v", err)
	}
	wf := e.claimOneBy("w2", backend.TaskWorkflow, "x")
	if tk := e.completeActivityAndClaim(h, acts[1], handOffReq("w1", 1)); tk != nil {
		t.Fatalf("CompleteActivityTaskAndClaim while w2 holds the workflow task returned %s, want nil",
			describe([]backend.Task{*tk}))
	}
	e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled, backend.EventActivityScheduled,
		backend.EventActivityCompleted, backend.EventActivityCompleted)
	e.claimNone("w2 holds the workflow task")
	e.clock.Advance(time.Second)
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: v})
	again := e.claimOne(backend.TaskWorkflow, "x")
	if again.Fence <= wf.Fence {
		t.Fatalf("rerun workflow task fence %d, want > %d", again.Fence, wf.Fence)
	}
}

func testHandOffActivityQueues(t *testing.T, e *env) {
	h := e.handOff()
	for _, id := range []string{"x", "y"} {
		e.create(id, func(n *backend.NewExecution) { n.Queue = "q1" })
		e.scheduleActivities(id, 0, 1, "a")
	}
	acts := e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskActivity}})
	if len(acts) != 2 {
		t.Fatalf("claimed %s, want two activity tasks", describe(acts))
	}
	byExec := map[string]backend.Task{acts[0].ExecutionID: acts[0], acts[1].ExecutionID: acts[1]}
	if tk := e.completeActivityAndClaim(h, byExec["x"], handOffReq("w1", 1, "other")); tk != nil {
		t.Fatalf("hand-off on queue other claimed %s, want nothing (the workflow task is on q1)", describe([]backend.Task{*tk}))
	}
	wf := e.claimOne(backend.TaskWorkflow, "x") // left pending and claimable
	if wf.Queue != "q1" {
		t.Fatalf("workflow task queue %q, want q1", wf.Queue)
	}
	tk := e.completeActivityAndClaim(h, byExec["y"], handOffReq("w1", 1, "other", "q1"))
	if tk == nil {
		t.Fatal("hand-off on queues other and q1 claimed nothing, want the workflow task of y")
	}
	e.wantClaimed("handed-off workflow task", *tk, backend.TaskWorkflow, "y", "w1", 0)
	e.claimNone("both workflow tasks are claimed")
}

func testHandOffActivityStale(t *testing.T, e *env) {
	h := e.handOff()
	e.create("x")
	e.scheduleActivities("x", 0, 1, "a")
	act := e.claimActivities("x", 1)[0]
	stale := act
	stale.Fence--
	_, err := h.CompleteActivityTaskAndClaim(e.ctx, activityDone(stale), handOffReq("w1", 1))
	wantErrIs(t, "CompleteActivityTaskAndClaim with a stale fence", err, backend.ErrLeaseLost)
	e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled)
	e.claimNone("after a stale hand-off")
	if tk := e.completeActivityAndClaim(h, act, handOffReq("w1", 1)); tk == nil {
		t.Fatal("CompleteActivityTaskAndClaim with the right fence claimed nothing")
	}
}

func testHandOffWorkflowClaimsActivities(t *testing.T, e *env) {
	h := e.handOff()
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	now := e.clock.Now()
	act := func(seq int, runAt time.Time) backend.NewTask {
		return backend.NewTask{Kind: backend.TaskActivity, Seq: seq, Attempt: 1, RunAt: runAt, Payload: activityPayload("a")}
	}
	r := backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0}
	for seq := 1; seq <= 6; seq++ {
		kind := backend.EventActivityScheduled
		if seq == 2 {
			kind = backend.EventTimerScheduled
		}
		r.Events = append(r.Events, backend.NewEvent{Seq: seq, Kind: kind, Name: "a"})
	}
	// Listed out of sequence order: seq 2 is a due timer, seq 3 a later activity.
	r.Tasks = []backend.NewTask{
		act(6, time.Time{}), act(5, now), act(3, now.Add(time.Hour)),
		{Kind: backend.TaskTimer, Seq: 2, RunAt: now}, act(4, time.Time{}), act(1, now),
	}
	v, claimed, err := h.CompleteWorkflowTaskAndClaim(e.ctx, r, handOffReq("w1", 2))
	if err != nil {
		t.Fatalf("CompleteWorkflowTaskAndClaim: %v", err)
	}
	if v != 1 {
		t.Fatalf("CompleteWorkflowTaskAndClaim: new version %d, want 1", v)
	}
	if len(claimed) != 2 || claimed[0].Seq != 1 || claimed[1].Seq != 4 {
		t.Fatalf("claimed %s, want the due activity tasks of seqs 1 and 4 (Limit 2, sequence order)", describe(claimed))
	}
	for _, tk := range claimed {
		e.wantClaimed("handed-off activity task", tk, backend.TaskActivity, "x", "w1", 0)
		if tk.Attempt != 1 {
			t.Errorf("seq %d: Attempt = %d, want 1", tk.Seq, tk.Attempt)
		}
		wantJSON(t, "Payload", tk.Payload, activityPayload("a"))
	}
	// The others stay pending: activities 5 and 6 and the timer now, activity 3 later.
	rest := e.claim(backend.ClaimRequest{WorkerID: "w2", Kinds: []backend.TaskKind{backend.TaskActivity}})
	if len(rest) != 2 || rest[0].Seq+rest[1].Seq != 11 {
		t.Fatalf("claimed %s after the hand-off, want the activity tasks of seqs 5 and 6", describe(rest))
	}
	timer := e.claimOneBy("w2", backend.TaskTimer, "x")
	if timer.Seq != 2 {
		t.Fatalf("claimed timer of seq %d, want 2", timer.Seq)
	}
	e.claimNone("before the activity of seq 3 is due")
	e.clock.Advance(time.Hour)
	if later := e.claimOne(backend.TaskActivity, "x"); later.Seq != 3 {
		t.Fatalf("claimed activity of seq %d, want 3", later.Seq)
	}
	// The handed-off tasks complete with the refs they were returned with.
	for _, tk := range claimed {
		if err := e.b.CompleteActivityTask(e.ctx, activityDone(tk)); err != nil {
			t.Fatalf("CompleteActivityTask(seq %d) with the handed-off ref: %v", tk.Seq, err)
		}
	}
	wantErrIs(t, "CompleteActivityTask twice", e.b.CompleteActivityTask(e.ctx, activityDone(claimed[0])), backend.ErrLeaseLost)
	e.claimOne(backend.TaskWorkflow, "x")
}

func testHandOffWorkflowQueues(t *testing.T, e *env) {
	h := e.handOff()
	e.create("x", func(n *backend.NewExecution) { n.Queue = "q1" })
	wf := e.claimOne(backend.TaskWorkflow, "x")
	r := backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0,
		Events: []backend.NewEvent{
			{Seq: 1, Kind: backend.EventActivityScheduled, Name: "a"},
			{Seq: 2, Kind: backend.EventActivityScheduled, Name: "b"},
		},
		Tasks: []backend.NewTask{
			{Kind: backend.TaskActivity, Seq: 1, Queue: "q2", Payload: activityPayload("a")},
			{Kind: backend.TaskActivity, Seq: 2, Payload: activityPayload("b")}, // the execution's queue, q1
		},
	}
	_, claimed, err := h.CompleteWorkflowTaskAndClaim(e.ctx, r, handOffReq("w1", 5, "q1"))
	if err != nil {
		t.Fatalf("CompleteWorkflowTaskAndClaim: %v", err)
	}
	if len(claimed) != 1 || claimed[0].Seq != 2 || claimed[0].Queue != "q1" {
		t.Fatalf("claimed %s on queue q1, want only the activity task of seq 2", describe(claimed))
	}
	rest := e.claim(backend.ClaimRequest{WorkerID: "w2", Queues: []string{"q2"}})
	if len(rest) != 1 || rest[0].Seq != 1 {
		t.Fatalf("claimed %s on q2, want the activity task of seq 1", describe(rest))
	}
}

func testHandOffWorkflowFinish(t *testing.T, e *env) {
	h := e.handOff()
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	v, claimed, err := h.CompleteWorkflowTaskAndClaim(e.ctx, backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x",
		Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`7`)}}, handOffReq("w1", 1))
	if err != nil || v != 1 || len(claimed) != 0 {
		t.Fatalf("CompleteWorkflowTaskAndClaim finishing: (%d, %s, %v), want (1, [], nil)", v, describe(claimed), err)
	}
	if x := e.get("x"); x.Status != backend.StatusCompleted {
		t.Fatalf("status %s, want completed", x.Status)
	}
	e.claimNone("after the execution finished")
}

func testHandOffWorkflowStale(t *testing.T, e *env) {
	h := e.handOff()
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	r := backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0,
		Events: []backend.NewEvent{{Seq: 1, Kind: backend.EventActivityScheduled, Name: "a"}},
		Tasks:  []backend.NewTask{{Kind: backend.TaskActivity, Seq: 1, Payload: activityPayload("a")}},
	}
	stale := r
	stale.Task.Fence--
	_, claimed, err := h.CompleteWorkflowTaskAndClaim(e.ctx, stale, handOffReq("w1", 1))
	wantErrIs(t, "CompleteWorkflowTaskAndClaim with a stale fence", err, backend.ErrLeaseLost)
	if len(claimed) != 0 {
		t.Fatalf("CompleteWorkflowTaskAndClaim with a stale fence claimed %s", describe(claimed))
	}
	stale = r
	stale.ExpectedVersion = 5
	_, _, err = h.CompleteWorkflowTaskAndClaim(e.ctx, stale, handOffReq("w1", 1))
	wantErrIs(t, "CompleteWorkflowTaskAndClaim with a wrong version", err, backend.ErrStaleExecution)
	e.wantKinds("x", backend.EventStarted)
	e.claimNone("after stale hand-offs")
	if _, claimed, err = h.CompleteWorkflowTaskAndClaim(e.ctx, r, handOffReq("w1", 1)); err != nil || len(claimed) != 1 {
		t.Fatalf("CompleteWorkflowTaskAndClaim with the right fence: (%s, %v), want one task", describe(claimed), err)
	}
}

// testHandOffChain runs a sequential workflow through hand-offs only.
func testHandOffChain(t *testing.T, e *env) {
	h := e.handOff()
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	var version int64
	const steps = 5
	for seq := 1; seq <= steps+1; seq++ {
		r := backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: version}
		if seq <= steps {
			r.Events = []backend.NewEvent{{Seq: seq, Kind: backend.EventActivityScheduled, Name: "a"}}
			r.Tasks = []backend.NewTask{{Kind: backend.TaskActivity, Seq: seq, Payload: activityPayload("a")}}
		} else {
			r.Finish = &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`"done"`)}
		}
		v, claimed, err := h.CompleteWorkflowTaskAndClaim(e.ctx, r, handOffReq("w1", 1))
		if err != nil {
			t.Fatalf("step %d: CompleteWorkflowTaskAndClaim: %v", seq, err)
		}
		version = v
		if seq > steps {
			break
		}
		if len(claimed) != 1 || claimed[0].Seq != seq {
			t.Fatalf("step %d: claimed %s, want the activity of seq %d", seq, describe(claimed), seq)
		}
		e.clock.Advance(time.Millisecond)
		next := e.completeActivityAndClaim(h, claimed[0], handOffReq("w1", 1))
		if next == nil {
			t.Fatalf("step %d: the activity's completion handed off no workflow task", seq)
		}
		wf = *next
	}
	if x := e.get("x"); x.Status != backend.StatusCompleted || x.Version != steps+1 {
		t.Fatalf("execution %s at version %d, want completed at version %d", x.Status, x.Version, steps+1)
	}
	if h := e.history("x"); len(h) != 2+2*steps {
		t.Fatalf("history has %d events, want %d", len(h), 2+2*steps)
	}
	e.claimNone("after the chain")
}
