package backendtest

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stent-go/stent/backend"
)

var repairTests = []test{
	{"CustomStatusIsTheLatestSetStatus", testCustomStatus},
	{"UpgradeRepinsAndAppends", testUpgradeExecution},
	{"RetryFailedStep", testRetryFailedStep},
	{"RetryScriptError", testRetryScriptError},
	{"ResetCopiesPrefixAndLinks", testResetExecution},
}

func (e *env) repairer() backend.Repairer { return required[backend.Repairer](e) }

func testCustomStatus(t *testing.T, e *env) {
	r := e.repairer()
	e.create("x")
	if s, err := r.CustomStatus(e.ctx, "x"); err != nil || s != nil {
		t.Fatalf("CustomStatus before any set_status = %s, %v; want nil, nil", s, err)
	}
	wf := e.claimOne(backend.TaskWorkflow, "x")
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", Events: []backend.NewEvent{
		{Seq: 1, Kind: backend.EventSideEffect, Name: backend.CustomStatusName, Data: json.RawMessage(`{"phase":"a"}`)},
		{Seq: 2, Kind: backend.EventSideEffect, Name: "uuid", Data: json.RawMessage(`"u"`)},
		{Seq: 3, Kind: backend.EventSideEffect, Name: backend.CustomStatusName, Data: json.RawMessage(`{"phase":"b"}`)},
	}})
	s, err := r.CustomStatus(e.ctx, "x")
	if err != nil {
		t.Fatalf("CustomStatus: %v", err)
	}
	wantJSON(t, "CustomStatus", s, json.RawMessage(`{"phase":"b"}`))
}

func testUpgradeExecution(t *testing.T, e *env) {
	r := e.repairer()
	e.create("x")
	nb := backend.Bundle{Main: "main.star", Files: map[string]string{"main.star": "newhash"}}
	data := json.RawMessage(`{"old":"a","new":"b"}`)
	if err := r.UpgradeExecution(e.ctx, "x", 7, nb, nil, data); !errors.Is(err, backend.ErrStaleExecution) {
		t.Fatalf("UpgradeExecution at a wrong version: %v, want ErrStaleExecution", err)
	}
	if err := r.UpgradeExecution(e.ctx, "x", 0, nb, map[string][]byte{"newhash": []byte("def main(): pass\n")}, data); err != nil {
		t.Fatalf("UpgradeExecution: %v", err)
	}
	x := e.get("x")
	if x.Version != 1 || x.Bundle.Files["main.star"] != "newhash" || x.Status != backend.StatusRunning {
		t.Fatalf("after upgrade: version %d bundle %+v status %s; want version 1, the new bundle, running", x.Version, x.Bundle, x.Status)
	}
	if src, err := e.b.GetScript(e.ctx, "newhash"); err != nil || string(src) != "def main(): pass\n" {
		t.Fatalf("GetScript(newhash) = %q, %v; want the stored source", src, err)
	}
	h := e.wantKinds("x", backend.EventStarted, backend.EventUpgraded)
	wantJSON(t, "upgraded event data", h[1].Data, data)
	if err := r.UpgradeExecution(e.ctx, "nope", 0, nb, nil, data); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("UpgradeExecution of an unknown execution: %v, want ErrNotFound", err)
	}
}

func testRetryFailedStep(t *testing.T, e *env) {
	r := e.repairer()
	fail, payload, v := e.failWithDeadLetter("x")
	if err := r.RetryExecution(e.ctx, "nope", 0, nil, nil); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("RetryExecution of an unknown execution: %v, want ErrNotFound", err)
	}
	data, _ := json.Marshal(map[string]any{"error": fail})
	if err := r.RetryExecution(e.ctx, "x", 2, data, &backend.NewTask{Kind: backend.TaskActivity, Seq: 2, Attempt: 1, Payload: payload}); err != nil {
		t.Fatalf("RetryExecution: %v", err)
	}
	x := e.get("x")
	if x.Status != backend.StatusRunning || x.Error != nil || x.CompletedAt != nil || x.Version != v+1 {
		t.Fatalf("after retry: %+v; want running, no error, not completed, version %d", x, v+1)
	}
	h := e.wantKinds("x", backend.EventStarted, backend.EventSideEffect, backend.EventActivityScheduled,
		backend.EventActivityFailed, backend.EventFailed, backend.EventRetried)
	if h[5].Seq != 2 {
		t.Fatalf("retried event seq %d, want 2", h[5].Seq)
	}
	act := e.claimOne(backend.TaskActivity, "x")
	if act.Seq != 2 || act.Attempt != 1 {
		t.Fatalf("retried activity task: seq %d attempt %d, want seq 2 attempt 1", act.Seq, act.Attempt)
	}
	wantJSON(t, "retried activity payload", act.Payload, payload)
	if dls := e.deadLetters("", 10); len(dls) != 1 || dls[0].Status != backend.DeadLetterRetried {
		t.Fatalf("dead letters after the retry of their step: %+v; want the one marked %s", dls, backend.DeadLetterRetried)
	}
	if err := r.RetryExecution(e.ctx, "x", 2, data, nil); !errors.Is(err, backend.ErrNotRunning) {
		t.Fatalf("RetryExecution of a running execution: %v, want ErrNotRunning", err)
	}
}

func testRetryScriptError(t *testing.T, e *env) {
	r := e.repairer()
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x",
		Finish: &backend.Finish{Status: backend.StatusFailed, Error: &backend.ErrorInfo{Message: "bug", Type: "script"}}})
	if err := r.RetryExecution(e.ctx, "x", 0, json.RawMessage(`{}`), nil); err != nil {
		t.Fatalf("RetryExecution: %v", err)
	}
	e.wantKinds("x", backend.EventStarted, backend.EventFailed, backend.EventRetried)
	if wf := e.claimOne(backend.TaskWorkflow, "x"); wf.ExecutionID != "x" {
		t.Fatalf("claimed %+v, want the workflow task of x", wf)
	}
}
