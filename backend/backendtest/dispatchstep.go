package backendtest

import (
	"encoding/json"
	"testing"

	"github.com/stent-go/stent/backend"
)

// dispatchStepTests check the optional backend.DispatchStep extension; each is skipped
// when the backend does not implement it.
var dispatchStepTests = []test{
	{"CreatesWithFirstStepAndClaims", testDispatchStepClaims},
	{"FirstStepFinishes", testDispatchStepFinishes},
	{"ExistingIDWritesNothing", testDispatchStepExisting},
	{"LeftPendingForOtherQueues", testDispatchStepOtherQueue},
}

func (e *env) dispatchStep() backend.DispatchStep { return optional[backend.DispatchStep](e) }

func testDispatchStepClaims(t *testing.T, e *env) {
	d := e.dispatchStep()
	step := sequentialActivity("", 0, 1)
	step.Logs = []string{"first"}
	created, out, err := d.CreateExecutionAndStep(e.ctx, newExec("x"), step, handOffReq("w1", 1))
	if err != nil || !created {
		t.Fatalf("CreateExecutionAndStep = %v, %v; want created", created, err)
	}
	if len(out.Claimed) != 1 {
		t.Fatalf("claimed %s, want the activity of seq 1", describe(out.Claimed))
	}
	e.wantClaimed("the first activity", out.Claimed[0], backend.TaskActivity, "x", "w1", 0)
	x := e.get("x")
	if x.Status != backend.StatusRunning || x.Version != out.Version || x.Entry != "main" || string(x.Args) != `["hello",42]` {
		t.Errorf("execution %s at version %d entry %q args %s, want running at %d, main, [\"hello\",42]", x.Status, x.Version, x.Entry, x.Args, out.Version)
	}
	h := e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled)
	if h[1].Seq != 1 || h[1].Name != "b" {
		t.Errorf("scheduled event seq %d name %q, want 1 \"b\"", h[1].Seq, h[1].Name)
	}
	if logs, err := e.b.Logs(e.ctx, "x"); err != nil || len(logs) != 1 || logs[0].Message != "first" {
		t.Errorf("logs = %v, %v; want the step's line", logs, err)
	}
	// No workflow task: the step took its place.
	e.claimNone("after the dispatch with its first step")
	if err := e.b.CompleteActivityTask(e.ctx, activityDone(out.Claimed[0])); err != nil {
		t.Fatalf("completing the claimed activity: %v", err)
	}
	wf := e.claimOne(backend.TaskWorkflow, "x")
	if wf.ExecutionID != "x" {
		t.Errorf("workflow task of %s after the activity, want x", wf.ExecutionID)
	}
}

func testDispatchStepFinishes(t *testing.T, e *env) {
	d := e.dispatchStep()
	step := backend.WorkflowTaskResult{Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`"done"`)}}
	created, out, err := d.CreateExecutionAndStep(e.ctx, newExec("x"), step, handOffReq("w1", 1))
	if err != nil || !created {
		t.Fatalf("CreateExecutionAndStep = %v, %v; want created", created, err)
	}
	if len(out.Claimed) != 0 {
		t.Errorf("claimed %s for a finished execution", describe(out.Claimed))
	}
	x := e.get("x")
	if x.Status != backend.StatusCompleted || string(x.Result) != `"done"` {
		t.Errorf("execution %s result %s, want completed \"done\"", x.Status, x.Result)
	}
	e.wantKinds("x", backend.EventStarted, backend.EventCompleted)
	e.claimNone("after the execution finished at once")
}

func testDispatchStepExisting(t *testing.T, e *env) {
	d := e.dispatchStep()
	ne := e.create("x")
	created, out, err := d.CreateExecutionAndStep(e.ctx, ne, sequentialActivity("", 0, 1), handOffReq("w1", 1))
	if err != nil || created || len(out.Claimed) != 0 {
		t.Fatalf("CreateExecutionAndStep on an existing ID = %v, %s, %v; want not created, nothing claimed, no error", created, describe(out.Claimed), err)
	}
	e.wantKinds("x", backend.EventStarted)
	// Its workflow task is still there, untouched.
	e.claimOne(backend.TaskWorkflow, "x")
}

func testDispatchStepOtherQueue(t *testing.T, e *env) {
	d := e.dispatchStep()
	created, out, err := d.CreateExecutionAndStep(e.ctx, newExec("x"), sequentialActivity("", 0, 1), handOffReq("w1", 1, "elsewhere"))
	if err != nil || !created {
		t.Fatalf("CreateExecutionAndStep = %v, %v; want created", created, err)
	}
	if len(out.Claimed) != 0 {
		t.Fatalf("claimed %s for a worker of another queue", describe(out.Claimed))
	}
	a := e.claimOne(backend.TaskActivity, "x")
	if a.Seq != 1 {
		t.Errorf("pending activity at seq %d, want 1", a.Seq)
	}
}
