package backendtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// env is what one conformance test works with.
type env struct {
	t     *testing.T
	b     backend.Backend
	clock *FakeClock
	ctx   context.Context
}

const (
	mainHash   = "1111111111111111111111111111111111111111111111111111111111111111"
	mainSource = "def main(x):\n    return x\n"
	lease      = time.Minute
)

// newExec returns a NewExecution with a one-file bundle, ready to be modified.
func newExec(id string) backend.NewExecution {
	return backend.NewExecution{
		ID:      id,
		Bundle:  backend.Bundle{Main: "main.star", Files: map[string]string{"main.star": mainHash}},
		Sources: map[string][]byte{mainHash: []byte(mainSource)},
		Entry:   "main",
		Args:    json.RawMessage(`["hello",42]`),
	}
}

// create creates an execution, failing the test unless it was created.
func (e *env) create(id string, mods ...func(*backend.NewExecution)) backend.NewExecution {
	e.t.Helper()
	ne := newExec(id)
	for _, m := range mods {
		m(&ne)
	}
	created, err := e.b.CreateExecution(e.ctx, ne)
	if err != nil {
		e.t.Fatalf("CreateExecution(%q): unexpected error %v", id, err)
	}
	if !created {
		e.t.Fatalf("CreateExecution(%q): created = false for a new ID, want true", id)
	}
	return ne
}

func (e *env) get(id string) *backend.Execution {
	e.t.Helper()
	x, err := e.b.GetExecution(e.ctx, id)
	if err != nil {
		e.t.Fatalf("GetExecution(%q): unexpected error %v", id, err)
	}
	if x == nil {
		e.t.Fatalf("GetExecution(%q): nil execution and nil error", id)
	}
	return x
}

func (e *env) history(id string) []backend.Event {
	e.t.Helper()
	h, err := e.b.History(e.ctx, id, 0)
	if err != nil {
		e.t.Fatalf("History(%q, 0): unexpected error %v", id, err)
	}
	return h
}

func kinds(h []backend.Event) []backend.EventKind {
	out := make([]backend.EventKind, len(h))
	for i, ev := range h {
		out[i] = ev.Kind
	}
	return out
}

// wantKinds checks the kinds of an execution's whole history.
func (e *env) wantKinds(id string, want ...backend.EventKind) []backend.Event {
	e.t.Helper()
	h := e.history(id)
	if got := kinds(h); !reflect.DeepEqual(got, want) {
		e.t.Fatalf("history of %s: kinds %v, want %v", id, got, want)
	}
	return h
}

// claim claims with the given request, filling defaults (worker "w1", limit 10,
// lease one minute).
func (e *env) claim(req backend.ClaimRequest) []backend.Task {
	e.t.Helper()
	if req.WorkerID == "" {
		req.WorkerID = "w1"
	}
	if req.Limit == 0 {
		req.Limit = 10
	}
	if req.Lease == 0 {
		req.Lease = lease
	}
	tasks, err := e.b.ClaimTasks(e.ctx, req)
	if err != nil {
		e.t.Fatalf("ClaimTasks(%+v): unexpected error %v", req, err)
	}
	return tasks
}

// claimOne claims exactly one task of the kind for worker "w1" and checks it belongs
// to execID.
func (e *env) claimOne(kind backend.TaskKind, execID string) backend.Task {
	e.t.Helper()
	return e.claimOneBy("w1", kind, execID)
}

func (e *env) claimOneBy(worker string, kind backend.TaskKind, execID string) backend.Task {
	e.t.Helper()
	tasks := e.claim(backend.ClaimRequest{WorkerID: worker, Kinds: []backend.TaskKind{kind}})
	if len(tasks) != 1 {
		e.t.Fatalf("claiming %s tasks: got %d tasks %s, want exactly one for %s", kind, len(tasks), describe(tasks), execID)
	}
	tk := tasks[0]
	if tk.Kind != kind || tk.ExecutionID != execID {
		e.t.Fatalf("claimed task %s, want a %s task of %s", describe(tasks), kind, execID)
	}
	return tk
}

// claimNone checks that nothing of the kinds (all when none) can be claimed.
func (e *env) claimNone(what string, ks ...backend.TaskKind) {
	e.t.Helper()
	if tasks := e.claim(backend.ClaimRequest{WorkerID: "w-probe", Kinds: ks}); len(tasks) != 0 {
		e.t.Fatalf("%s: claimed %s, want no claimable task", what, describe(tasks))
	}
}

func describe(tasks []backend.Task) string {
	parts := make([]string, len(tasks))
	for i, tk := range tasks {
		parts[i] = fmt.Sprintf("{id=%d %s exec=%s seq=%d queue=%s fence=%d}", tk.ID, tk.Kind, tk.ExecutionID, tk.Seq, tk.Queue, tk.Fence)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// completeWF commits a workflow task, failing the test on error.
func (e *env) completeWF(r backend.WorkflowTaskResult) int64 {
	e.t.Helper()
	v, err := e.b.CompleteWorkflowTask(e.ctx, r)
	if err != nil {
		e.t.Fatalf("CompleteWorkflowTask(task %d of %s, expected version %d): unexpected error %v",
			r.Task.ID, r.ExecutionID, r.ExpectedVersion, err)
	}
	if v != r.ExpectedVersion+1 {
		e.t.Fatalf("CompleteWorkflowTask of %s: new version %d, want %d", r.ExecutionID, v, r.ExpectedVersion+1)
	}
	return v
}

func activityPayload(name string) json.RawMessage {
	buf, _ := json.Marshal(backend.ActivityPayload{Name: name, Args: json.RawMessage(`[1,"two"]`)})
	return buf
}

// scheduleActivities claims the execution's workflow task (expected at version
// `version`) and commits it with one activity per name, seqs from firstSeq on.
func (e *env) scheduleActivities(execID string, version int64, firstSeq int, names ...string) int64 {
	e.t.Helper()
	wf := e.claimOne(backend.TaskWorkflow, execID)
	r := backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: execID, ExpectedVersion: version}
	for i, n := range names {
		seq := firstSeq + i
		r.Events = append(r.Events, backend.NewEvent{Seq: seq, Kind: backend.EventActivityScheduled, Name: n,
			Data: json.RawMessage(`{"args":[1,"two"]}`)})
		r.Tasks = append(r.Tasks, backend.NewTask{Kind: backend.TaskActivity, Seq: seq, Attempt: 1, Payload: activityPayload(n)})
	}
	return e.completeWF(r)
}

// scheduleTimer claims the workflow task and commits it with a timer at runAt.
func (e *env) scheduleTimer(execID string, version int64, seq int, runAt time.Time) int64 {
	e.t.Helper()
	wf := e.claimOne(backend.TaskWorkflow, execID)
	return e.completeWF(backend.WorkflowTaskResult{
		Task: wf.Ref(), ExecutionID: execID, ExpectedVersion: version,
		Events: []backend.NewEvent{{Seq: seq, Kind: backend.EventTimerScheduled, Name: "sleep",
			Data: json.RawMessage(`{"duration_ms":3600000}`)}},
		Tasks: []backend.NewTask{{Kind: backend.TaskTimer, Seq: seq, RunAt: runAt}},
	})
}

func wantErrIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want one matching %q", what, err, target)
	}
}

// jsonEqual reports whether two JSON texts hold the same value.
func jsonEqual(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(x, y)
}

func wantJSON(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !jsonEqual(got, want) {
		t.Fatalf("%s: JSON %s, want %s", what, got, want)
	}
}

func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s: %v, want %v", what, got, want)
	}
}

// heartbeat records a heartbeat for each worker.
func (e *env) heartbeat(workers ...string) {
	e.t.Helper()
	for _, w := range workers {
		if err := e.b.Heartbeat(e.ctx, w); err != nil {
			e.t.Fatalf("Heartbeat(%q): %v", w, err)
		}
	}
}

// required returns the backend as the extension X, failing the test when it does not
// implement X.
func required[X any](e *env) X {
	e.t.Helper()
	return extension[X](e, e.t.Fatalf)
}

// optional returns the backend as the extension X, skipping the test when it does not
// implement X.
func optional[X any](e *env) X {
	e.t.Helper()
	return extension[X](e, e.t.Skipf)
}

func extension[X any](e *env, missing func(format string, args ...any)) X {
	e.t.Helper()
	x, ok := e.b.(X)
	if !ok {
		missing("%T does not implement %v", e.b, reflect.TypeFor[X]())
	}
	return x
}
