package backendtest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

var continueAsNewTests = []test{
	{"FirstRunIsOne", testRunStartsAtOne},
	{"ResetsHistoryAndTasks", testContinueAsNew},
	{"LogsCarryTheRun", testContinueAsNewLogs},
	{"ChildOfAnEarlierRunDoesNotReport", testContinueAsNewOldChild},
}

func testRunStartsAtOne(t *testing.T, e *env) {
	e.startChild("parent", "child")
	for _, id := range []string{"parent", "child"} {
		if x := e.get(id); x.Run != 1 {
			t.Fatalf("Run of new execution %s = %d, want 1", id, x.Run)
		}
	}
}

func testContinueAsNew(t *testing.T, e *env) {
	deadline := Epoch.Add(10 * time.Hour)
	e.create("x", func(n *backend.NewExecution) {
		n.Deadline = &deadline
		n.Queue = "cq"
	})
	wf := e.claimOne(backend.TaskWorkflow, "x")
	v := e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0,
		Events: []backend.NewEvent{
			{Seq: 1, Kind: backend.EventActivityScheduled, Name: "a"},
			{Seq: 2, Kind: backend.EventActivityScheduled, Name: "b"},
			{Seq: 3, Kind: backend.EventTimerScheduled, Name: "sleep"},
		},
		Tasks: []backend.NewTask{
			{Kind: backend.TaskActivity, Seq: 1, Attempt: 1, Payload: activityPayload("a")},
			{Kind: backend.TaskActivity, Seq: 2, Attempt: 1, Payload: activityPayload("b")},
			{Kind: backend.TaskTimer, Seq: 3, RunAt: Epoch.Add(time.Hour)},
		}})
	acts := e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskActivity}})
	if len(acts) != 2 {
		t.Fatalf("claimed %s, want two activity tasks", describe(acts))
	}
	if err := e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: acts[0].Ref(), ExecutionID: "x",
		Seq: acts[0].Seq, Name: "a", Result: json.RawMessage(`1`)}); err != nil {
		t.Fatalf("CompleteActivityTask: %v", err)
	}
	e.signal("x", "keep", `"me"`) // not consumed by the first run
	old := e.history("x")
	e.clock.Advance(time.Second)
	wf = e.claimOne(backend.TaskWorkflow, "x")
	nv := e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: v,
		ContinueAsNew: json.RawMessage(`["next",2]`)})
	now := e.clock.Now()

	x := e.get("x")
	if x.Status != backend.StatusRunning || x.Run != 2 || x.Version != nv || x.CompletedAt != nil || x.Error != nil {
		t.Fatalf("after continue-as-new: status %s run %d version %d completed %v error %v, want running, run 2, version %d, not completed",
			x.Status, x.Run, x.Version, x.CompletedAt, x.Error, nv)
	}
	wantJSON(t, "Args after continue-as-new", x.Args, []byte(`["next",2]`))
	if x.Deadline == nil || !x.Deadline.Equal(deadline) {
		t.Fatalf("Deadline after continue-as-new = %v, want unchanged %v", x.Deadline, deadline)
	}
	h := e.wantKinds("x", backend.EventStarted)
	wantJSON(t, "new started event Data", h[0].Data, []byte(`["next",2]`))
	wantTime(t, "new started event At", h[0].At, now)
	if h[0].ID <= old[len(old)-1].ID {
		t.Fatalf("new started event ID %d, want above the old history's last ID %d", h[0].ID, old[len(old)-1].ID)
	}
	if p := e.pendingSignals("x"); len(p) != 1 || p[0].Name != "keep" {
		t.Fatalf("PendingSignals after continue-as-new = %+v, want the unconsumed signal kept", p)
	}

	// The old run's tasks are gone, claimed ones included; the old workflow task too.
	err := e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: acts[1].Ref(), ExecutionID: "x",
		Seq: acts[1].Seq, Name: "b", Result: json.RawMessage(`2`)})
	wantErrIs(t, "CompleteActivityTask of the old run's claimed activity", err, backend.ErrLeaseLost)
	_, err = e.b.CompleteWorkflowTask(e.ctx, backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: nv})
	wantErrIs(t, "CompleteWorkflowTask with the ref that continued as new", err, backend.ErrLeaseLost)

	// A new workflow task, runnable now, on the execution's queue.
	nw := e.claimOne(backend.TaskWorkflow, "x")
	if nw.RunAt.After(now) || nw.Queue != "cq" || nw.Seq != 0 {
		t.Fatalf("new workflow task: RunAt %v queue %q seq %d, want runnable at %v on cq, seq 0", nw.RunAt, nw.Queue, nw.Seq, now)
	}
	e.claimNone("only the new workflow task is runnable", backend.TaskWorkflow, backend.TaskActivity, backend.TaskTimer)
	e.clock.Advance(2 * time.Hour)
	e.claimNone("the old run's timer was deleted", backend.TaskTimer)

	// The deadline task survived.
	e.clock.Set(deadline)
	dl := e.claimOne(backend.TaskDeadline, "x")
	wantTime(t, "deadline task RunAt", dl.RunAt, deadline)

	e.completeWF(backend.WorkflowTaskResult{Task: nw.Ref(), ExecutionID: "x", ExpectedVersion: nv,
		Events: []backend.NewEvent{{Seq: 1, Kind: backend.EventSideEffect, Name: "now", Data: json.RawMessage(`1`)}}})
	h = e.wantKinds("x", backend.EventStarted, backend.EventSideEffect)
	if h[1].Seq != 1 {
		t.Fatalf("side_effect Seq = %d, want 1 (sequence numbers start over)", h[1].Seq)
	}
}

func testContinueAsNewLogs(t *testing.T, e *env) {
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	v := e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0,
		Logs: []string{"one"}, ContinueAsNew: json.RawMessage(`[1]`)})
	wf = e.claimOne(backend.TaskWorkflow, "x")
	v = e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: v,
		Logs: []string{"two", "three"}, ContinueAsNew: json.RawMessage(`[2]`)})
	wf = e.claimOne(backend.TaskWorkflow, "x")
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: v,
		Logs: []string{"four"}, Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`"done"`)}})
	x := e.get("x")
	if x.Run != 3 || x.Status != backend.StatusCompleted {
		t.Fatalf("after two continue-as-new and a finish: run %d status %s, want 3 completed", x.Run, x.Status)
	}
	logs, err := e.b.Logs(e.ctx, "x")
	if err != nil {
		t.Fatalf("Logs: %v", err)
	}
	want := []struct {
		msg string
		run int
	}{{"one", 1}, {"two", 2}, {"three", 2}, {"four", 3}}
	if len(logs) != len(want) {
		t.Fatalf("Logs = %+v, want %d lines kept across runs", logs, len(want))
	}
	for i, w := range want {
		if logs[i].Message != w.msg || logs[i].Run != w.run {
			t.Fatalf("log line %d = %q run %d, want %q run %d (a line carries the run that printed it)",
				i, logs[i].Message, logs[i].Run, w.msg, w.run)
		}
	}
	e.wantKinds("x", backend.EventStarted, backend.EventCompleted)
}

// A child started by an earlier run reports to nobody: the parent's new run never
// scheduled it, and a child_completed at its seq would corrupt the new history.
func testContinueAsNewOldChild(t *testing.T, e *env) {
	e.startChild("parent", "child")
	cw := e.claimOne(backend.TaskWorkflow, "child")
	e.signal("parent", "restart", `1`)
	pw := e.claimOne(backend.TaskWorkflow, "parent")
	nv := e.completeWF(backend.WorkflowTaskResult{Task: pw.Ref(), ExecutionID: "parent", ExpectedVersion: 1,
		ContinueAsNew: json.RawMessage(`[]`)})
	pw = e.claimOne(backend.TaskWorkflow, "parent")
	e.completeWF(backend.WorkflowTaskResult{Task: pw.Ref(), ExecutionID: "parent", ExpectedVersion: nv})
	e.completeWF(backend.WorkflowTaskResult{Task: cw.Ref(), ExecutionID: "child", ExpectedVersion: 0,
		Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`"hi"`)}})
	e.wantKinds("parent", backend.EventStarted)
	e.claimNone("the old child's completion does not wake the new run")
	if x := e.get("child"); x.Status != backend.StatusCompleted || x.ParentID != "parent" {
		t.Fatalf("old child: status %s parent %q, want completed, parent kept", x.Status, x.ParentID)
	}
}
