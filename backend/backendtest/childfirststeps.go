package backendtest

import (
	"encoding/json"
	"testing"

	"github.com/stent-go/stent/backend"
)

// childFirstStepTests check the optional backend.ChildFirstSteps extension; each is
// skipped when the backend does not implement it.
var childFirstStepTests = []test{
	{"TreeDescendsInOneCommit", testChildFirstStepsTree},
	{"EndingFirstStepRefused", testChildFirstStepEnding},
}

func (e *env) childFirstSteps() { optional[backend.ChildFirstSteps](e) }

// childWithStep is child seq of parent, created with a first step that schedules
// activity "b" at seq 1 (and children of its own, if any).
func childWithStep(parent string, seq int, grandchildren ...backend.NewExecution) backend.NewExecution {
	ne := newExec(parent + "/" + string(rune('0'+seq)))
	ne.ParentID, ne.ParentSeq, ne.Entry = parent, seq, "child"
	step := sequentialActivity("", 0, 1)
	step.Children = grandchildren
	for _, g := range grandchildren {
		step.Events = append(step.Events, backend.NewEvent{Seq: g.ParentSeq, Kind: backend.EventChildScheduled, Name: g.Entry})
	}
	ne.FirstStep = &step
	return ne
}

func testChildFirstStepsTree(t *testing.T, e *env) {
	e.childFirstSteps()
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	leaf := childWithStep("x/1", 2)
	mid := childWithStep("x", 1, leaf)
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0,
		Events:   []backend.NewEvent{{Seq: 1, Kind: backend.EventChildScheduled, Name: "child"}},
		Children: []backend.NewExecution{mid}})
	for _, id := range []string{"x/1", "x/1/2"} {
		x := e.get(id)
		if x.Status != backend.StatusRunning || x.Version != 1 || x.Run != 1 {
			t.Errorf("%s: %s at version %d run %d, want running at version 1 run 1", id, x.Status, x.Version, x.Run)
		}
	}
	e.wantKinds("x/1", backend.EventStarted, backend.EventActivityScheduled, backend.EventChildScheduled)
	e.wantKinds("x/1/2", backend.EventStarted, backend.EventActivityScheduled)
	// No workflow task for the children: their first steps took their place. Their
	// activities wait for any worker.
	tasks := e.claim(backend.ClaimRequest{WorkerID: "w1", Limit: 10})
	var acts []string
	for _, tk := range tasks {
		if tk.Kind != backend.TaskActivity {
			t.Errorf("claimed %s, want only the children's activities", describe(tasks))
		}
		acts = append(acts, tk.ExecutionID)
	}
	if len(acts) != 2 {
		t.Fatalf("claimed %s, want the activities of x/1 and x/1/2", describe(tasks))
	}
	// The leaf's activity completes the usual way and its workflow task runs.
	for _, tk := range tasks {
		if tk.ExecutionID == "x/1/2" {
			if err := e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: tk.Ref(), ExecutionID: tk.ExecutionID, Seq: 1, Name: "b", Result: json.RawMessage(`1`)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.claimOne(backend.TaskWorkflow, "x/1/2")
}

func testChildFirstStepEnding(t *testing.T, e *env) {
	e.childFirstSteps()
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	child := childWithStep("x", 1)
	child.FirstStep = &backend.WorkflowTaskResult{Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`1`)}}
	_, err := e.b.CompleteWorkflowTask(e.ctx, backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0,
		Events:   []backend.NewEvent{{Seq: 1, Kind: backend.EventChildScheduled, Name: "child"}},
		Children: []backend.NewExecution{child}})
	if err == nil {
		t.Fatal("CompleteWorkflowTask with a child's first step that ends it: no error")
	}
	e.wantKinds("x", backend.EventStarted)
}
