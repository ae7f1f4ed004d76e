package backendtest

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// fusedTests check the optional backend.FusedStep extension; each is skipped when the
// backend does not implement it.
//
// Each test of a step that schedules one more activity runs with two shapes: a step that
// also writes a log line, and a bare sequential step (one event, one activity task),
// which a backend may commit by a shorter path of its own.
var fusedTests = []test{
	{"CompletionAndNextStepInOneCommit", fusedNextStep(nextActivity)},
	{"SequentialStep", fusedNextStep(sequentialActivity)},
	{"Finish", testFusedFinish},
	{"StaleVersionWritesNothing", fusedStale(nextActivity)},
	{"SequentialStaleVersionWritesNothing", fusedStale(sequentialActivity)},
	{"EndedExecution", fusedEnded(nextActivity)},
	{"SequentialEndedExecution", fusedEnded(sequentialActivity)},
	{"LostLeaseWritesNothing", fusedLeaseLost(nextActivity)},
	{"SequentialLostLeaseWritesNothing", fusedLeaseLost(sequentialActivity)},
	{"CachedResult", fusedCache(nextActivity)},
	{"SequentialCachedResult", fusedCache(sequentialActivity)},
	{"SequentialStepNextPriority", testFusedNextPriority},
	{"CheckSeenPasses", testFusedCheckSeenPasses},
	{"CheckSeenUnseenOutcomeWritesNothing", testFusedCheckSeenUnseen},
}

// stepShape builds a step of execution id at version that schedules activity "b" at seq.
type stepShape func(id string, version int64, seq int) backend.WorkflowTaskResult

func (e *env) fused() backend.FusedStep { return optional[backend.FusedStep](e) }

// fusedSetup creates execution id with one claimed activity task at seq 1 and returns
// the task and the execution's version.
func (e *env) fusedSetup(id string) (backend.Task, int64) {
	e.t.Helper()
	e.create(id)
	v := e.scheduleActivities(id, 0, 1, "a")
	return e.claimOne(backend.TaskActivity, id), v
}

// nextActivity is a step that schedules activity "b" at seq.
func nextActivity(id string, version int64, seq int) backend.WorkflowTaskResult {
	return backend.WorkflowTaskResult{ExecutionID: id, ExpectedVersion: version,
		Events: []backend.NewEvent{{Seq: seq, Kind: backend.EventActivityScheduled, Name: "b", Data: json.RawMessage(`{"args":[1,"two"]}`)}},
		Tasks:  []backend.NewTask{{Kind: backend.TaskActivity, Seq: seq, Attempt: 1, Payload: activityPayload("b")}},
		Logs:   []string{"step"},
	}
}

// sequentialActivity is nextActivity without the log line.
func sequentialActivity(id string, version int64, seq int) backend.WorkflowTaskResult {
	r := nextActivity(id, version, seq)
	r.Logs = nil
	return r
}

func fusedNextStep(shape stepShape) func(t *testing.T, e *env) {
	return func(t *testing.T, e *env) { testFusedNextStep(t, e, shape) }
}

func testFusedNextStep(t *testing.T, e *env, shape stepShape) {
	f := e.fused()
	a, v := e.fusedSetup("x")
	step := shape("x", v, 2)
	out, err := f.CompleteActivityAndStep(e.ctx, activityDone(a), step, handOffReq("w1", 1))
	if err != nil {
		t.Fatalf("CompleteActivityAndStep: %v", err)
	}
	if out.Version != v+1 {
		t.Errorf("version %d, want %d", out.Version, v+1)
	}
	if len(out.Claimed) != 1 {
		t.Fatalf("claimed %s, want the activity of seq 2", describe(out.Claimed))
	}
	e.wantClaimed("the new activity", out.Claimed[0], backend.TaskActivity, "x", "w1", 0)
	if _, ok := backend.SequentialStep(step, handOffReq("w1", 1), time.Now().UnixMilli()); ok && out.Claimed[0].ID != a.ID {
		// Both stores commit a sequential step on the finished activity's own row.
		t.Errorf("a sequential step claimed task %d, want the finished activity's row %d carrying it", out.Claimed[0].ID, a.ID)
	}
	h := e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled, backend.EventActivityCompleted, backend.EventActivityScheduled)
	if h[2].ID != out.EventID || h[2].Seq != 1 || string(h[2].Data) != "1" {
		t.Errorf("completion event = id %d seq %d data %s, want id %d seq 1 data 1", h[2].ID, h[2].Seq, h[2].Data, out.EventID)
	}
	if x := e.get("x"); x.Status != backend.StatusRunning || x.Version != v+1 {
		t.Errorf("execution %s at version %d, want running at %d", x.Status, x.Version, v+1)
	}
	if h[3].Seq != 2 || h[3].Name != "b" || h[3].ID <= h[2].ID {
		t.Errorf("scheduled event = id %d seq %d name %q, want seq 2 \"b\" after id %d", h[3].ID, h[3].Seq, h[3].Name, h[2].ID)
	}
	logs, err := e.b.Logs(e.ctx, "x")
	if err != nil || len(logs) != len(step.Logs) {
		t.Errorf("logs = %v, %v; want %q", logs, err, step.Logs)
	}
	// No workflow task: the step consumed the event.
	e.claimNone("after a fused step")
	// The completed task is gone for its holder: completing it again fails.
	if err := e.b.CompleteActivityTask(e.ctx, activityDone(a)); !errors.Is(err, backend.ErrLeaseLost) {
		t.Errorf("completing the first activity again: %v, want ErrLeaseLost", err)
	}
	// The claimed one completes as any claimed task does.
	next := out.Claimed[0]
	if next.Seq != 2 || next.Attempt != 1 {
		t.Errorf("claimed task seq %d attempt %d, want seq 2 attempt 1", next.Seq, next.Attempt)
	}
	var p backend.ActivityPayload
	if err := json.Unmarshal(next.Payload, &p); err != nil || p.Name != "b" {
		t.Errorf("claimed task payload %s (%v), want activity b", next.Payload, err)
	}
	if err := e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: next.Ref(), ExecutionID: "x", Seq: 2, Name: "b", Result: json.RawMessage(`2`)}); err != nil {
		t.Fatalf("completing the claimed activity: %v", err)
	}
	e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled, backend.EventActivityCompleted, backend.EventActivityScheduled, backend.EventActivityCompleted)
}

func testFusedFinish(t *testing.T, e *env) {
	f := e.fused()
	a, v := e.fusedSetup("x")
	step := backend.WorkflowTaskResult{ExecutionID: "x", ExpectedVersion: v,
		Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`"done"`)}}
	out, err := f.CompleteActivityAndStep(e.ctx, activityDone(a), step, handOffReq("w1", 1))
	if err != nil {
		t.Fatalf("CompleteActivityAndStep: %v", err)
	}
	if len(out.Claimed) != 0 {
		t.Errorf("claimed %s when finishing", describe(out.Claimed))
	}
	x := e.get("x")
	if x.Status != backend.StatusCompleted || string(x.Result) != `"done"` || x.Version != out.Version {
		t.Errorf("execution %s result %s version %d, want completed \"done\" at %d", x.Status, x.Result, x.Version, out.Version)
	}
	e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled, backend.EventActivityCompleted, backend.EventCompleted)
	e.claimNone("after the execution finished")
}

func fusedStale(shape stepShape) func(t *testing.T, e *env) {
	return func(t *testing.T, e *env) {
		f := e.fused()
		a, v := e.fusedSetup("x")
		_, err := f.CompleteActivityAndStep(e.ctx, activityDone(a), shape("x", v-1, 2), handOffReq("w1", 1))
		testFusedStale(t, e, a, err)
	}
}

func testFusedStale(t *testing.T, e *env, a backend.Task, err error) {
	wantErrIs(t, "CompleteActivityAndStep at an old version", err, backend.ErrStaleExecution)
	e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled)
	// The activity task is still held: the usual completion goes through.
	if err := e.b.CompleteActivityTask(e.ctx, activityDone(a)); err != nil {
		t.Fatalf("CompleteActivityTask after the stale fused step: %v", err)
	}
	e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled, backend.EventActivityCompleted)
}

// testFusedEnded: an execution that ended meanwhile takes no step.
func fusedEnded(shape stepShape) func(t *testing.T, e *env) {
	return func(t *testing.T, e *env) {
		f := e.fused()
		b, v2 := e.fusedSetup("y")
		e.end("y", backend.StatusCancelled, nil)
		_, err := f.CompleteActivityAndStep(e.ctx, activityDone(b), shape("y", v2, 2), handOffReq("w1", 1))
		if !errors.Is(err, backend.ErrStaleExecution) && !errors.Is(err, backend.ErrLeaseLost) {
			t.Fatalf("CompleteActivityAndStep on a cancelled execution: %v, want ErrStaleExecution or ErrLeaseLost", err)
		}
		e.wantKinds("y", backend.EventStarted, backend.EventActivityScheduled, backend.EventCancelRequested, backend.EventFailed)
	}
}

func fusedLeaseLost(shape stepShape) func(t *testing.T, e *env) {
	return func(t *testing.T, e *env) { testFusedLeaseLost(t, e, shape) }
}

func testFusedLeaseLost(t *testing.T, e *env, shape stepShape) {
	f := e.fused()
	a, v := e.fusedSetup("x")
	old := a
	old.Fence--
	_, err := f.CompleteActivityAndStep(e.ctx, activityDone(old), shape("x", v, 2), handOffReq("w1", 1))
	wantErrIs(t, "CompleteActivityAndStep with an old fence", err, backend.ErrLeaseLost)
	e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled)
	if x := e.get("x"); x.Version != v {
		t.Errorf("version %d after a failed fused step, want %d", x.Version, v)
	}
}

func fusedCache(shape stepShape) func(t *testing.T, e *env) {
	return func(t *testing.T, e *env) {
		f := e.fused()
		a, v := e.fusedSetup("x")
		r := activityDone(a)
		r.Cache = &backend.CacheEntry{Key: "a:k1", Activity: "a", Result: r.Result}
		if _, err := f.CompleteActivityAndStep(e.ctx, r, shape("x", v, 2), handOffReq("w1", 1)); err != nil {
			t.Fatalf("CompleteActivityAndStep: %v", err)
		}
		e.wantCached("a:k1", "1")
	}
}

// gatherSetup creates execution x waiting for two activities (seqs 1 and 2), both
// claimed, and returns them, the version and the ID of the last event (the second
// activity_scheduled).
func (e *env) gatherSetup() (a1, a2 backend.Task, version, lastEvent int64) {
	e.t.Helper()
	e.create("x")
	version = e.scheduleActivities("x", 0, 1, "a", "b")
	tasks := e.claim(backend.ClaimRequest{WorkerID: "w1", Kinds: []backend.TaskKind{backend.TaskActivity}, Limit: 2})
	if len(tasks) != 2 {
		e.t.Fatalf("claimed %s, want the two activities", describe(tasks))
	}
	a1, a2 = tasks[0], tasks[1]
	if a1.Seq != 1 {
		a1, a2 = a2, a1
	}
	h := e.history("x")
	return a1, a2, version, h[len(h)-1].ID
}

// An outcome fed to a script waiting for several commits when nothing else arrived.
func testFusedCheckSeenPasses(t *testing.T, e *env) {
	f := e.fused()
	a1, _, v, last := e.gatherSetup()
	step := backend.WorkflowTaskResult{ExecutionID: "x", ExpectedVersion: v, CheckSeen: true, SeenThrough: last}
	out, err := f.CompleteActivityAndStep(e.ctx, activityDone(a1), step, handOffReq("w1", 1))
	if err != nil {
		t.Fatalf("CompleteActivityAndStep with nothing unseen: %v", err)
	}
	if out.Version != v+1 {
		t.Errorf("version %d, want %d", out.Version, v+1)
	}
	e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled, backend.EventActivityScheduled, backend.EventActivityCompleted)
	e.claimNone("after a fused step that consumed its outcome")
}

// Another worker recorded the other outcome since the script last read its history:
// the step was taken without it, so nothing is written and the usual path takes over.
func testFusedCheckSeenUnseen(t *testing.T, e *env) {
	f := e.fused()
	a1, a2, v, last := e.gatherSetup()
	if err := e.b.CompleteActivityTask(e.ctx, activityDone(a2)); err != nil {
		t.Fatal(err)
	}
	step := backend.WorkflowTaskResult{ExecutionID: "x", ExpectedVersion: v, CheckSeen: true, SeenThrough: last}
	_, err := f.CompleteActivityAndStep(e.ctx, activityDone(a1), step, handOffReq("w1", 1))
	wantErrIs(t, "CompleteActivityAndStep with an unseen outcome", err, backend.ErrStaleExecution)
	e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled, backend.EventActivityScheduled, backend.EventActivityCompleted)
	if x := e.get("x"); x.Version != v {
		t.Errorf("version %d after a refused step, want %d", x.Version, v)
	}
	// Seen through the other outcome, the same step goes through.
	h := e.history("x")
	step.SeenThrough = h[len(h)-1].ID
	if _, err := f.CompleteActivityAndStep(e.ctx, activityDone(a1), step, handOffReq("w1", 1)); err != nil {
		t.Fatalf("CompleteActivityAndStep having seen the other outcome: %v", err)
	}
}

// testFusedNextPriority: a sequential step whose next activity has another priority
// than the one it completes stores that priority (a shorter path that reuses the
// finished task's row must not keep the old one).
func testFusedNextPriority(t *testing.T, e *env) {
	f := e.fused()
	a, v := e.fusedSetup("x")
	step := sequentialActivity("x", v, 2)
	step.Tasks[0].Priority = 7
	out, err := f.CompleteActivityAndStep(e.ctx, activityDone(a), step, handOffReq("w1", 1))
	if err != nil {
		t.Fatalf("CompleteActivityAndStep: %v", err)
	}
	if len(out.Claimed) != 1 {
		t.Fatalf("claimed %s, want the activity of seq 2", describe(out.Claimed))
	}
	// Give it back, due in a second, and put a task of priority 0 due now beside it.
	if err := e.b.ReleaseTask(e.ctx, out.Claimed[0].Ref(), e.clock.Now().Add(time.Second)); err != nil {
		t.Fatalf("ReleaseTask: %v", err)
	}
	e.create("y")
	e.scheduleActivities("y", 0, 1, "a")
	e.clock.Advance(2 * time.Second)
	got, err := e.b.ClaimTasks(e.ctx, backend.ClaimRequest{WorkerID: "w2", Kinds: []backend.TaskKind{backend.TaskActivity}, Limit: 1})
	if err != nil {
		t.Fatalf("ClaimTasks: %v", err)
	}
	if len(got) != 1 || got[0].ExecutionID != "x" || got[0].Seq != 2 {
		t.Fatalf("claimed %s first, want x's activity of priority 7 before y's of priority 0", describe(got))
	}
}
