package backendtest

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

var signalTests = []test{
	{"BufferedInOrder", testSignalsInOrder},
	{"SignalEnqueuesWorkflowTask", testSignalEnqueues},
	{"SignalWhileClaimedMakesWorkflowTaskRunnableAgain", testSignalRerun},
	{"ConsumedSignalsAreNoLongerPending", testSignalsConsumed},
	{"SignalEndedOrUnknownExecution", testSignalNotRunning},
	{"CancelTimersDeletesPendingTimers", testCancelTimers},
	{"TimeoutIsSignalTimedOut", testSignalTimedOut},
}

// signal sends a signal, failing the test on error.
func (e *env) signal(id, name, payload string) {
	e.t.Helper()
	if err := e.b.SignalExecution(e.ctx, id, name, json.RawMessage(payload)); err != nil {
		e.t.Fatalf("SignalExecution(%q, %q, %s): unexpected error %v", id, name, payload, err)
	}
}

func (e *env) pendingSignals(id string) []backend.Signal {
	e.t.Helper()
	sigs, err := e.b.PendingSignals(e.ctx, id)
	if err != nil {
		e.t.Fatalf("PendingSignals(%q): unexpected error %v", id, err)
	}
	return sigs
}

// claimOneOn claims exactly one task of the kind on the queue and checks it belongs
// to execID.
func (e *env) claimOneOn(queue string, kind backend.TaskKind, execID string) backend.Task {
	e.t.Helper()
	tasks := e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{kind}, Queues: []string{queue}})
	if len(tasks) != 1 || tasks[0].Kind != kind || tasks[0].ExecutionID != execID {
		e.t.Fatalf("claiming %s tasks on %s: got %s, want exactly one of %s", kind, queue, describe(tasks), execID)
	}
	return tasks[0]
}

// idle runs the execution's pending workflow task to an empty commit, so that it has
// no workflow task left. It returns the new version.
func (e *env) idle(id string, version int64) int64 {
	e.t.Helper()
	wf := e.claimOne(backend.TaskWorkflow, id)
	return e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: id, ExpectedVersion: version})
}

func testSignalsInOrder(t *testing.T, e *env) {
	e.create("x")
	e.create("other")
	e.signal("x", "approve", `{"by":"ann"}`)
	e.clock.Advance(time.Second)
	e.signal("other", "approve", `"not for x"`)
	e.signal("x", "reject", `2`)
	e.clock.Advance(time.Second)
	e.signal("x", "approve", `[3]`)
	sigs := e.pendingSignals("x")
	type want struct {
		name, payload string
		at            time.Time
	}
	wants := []want{
		{"approve", `{"by":"ann"}`, Epoch},
		{"reject", `2`, Epoch.Add(time.Second)},
		{"approve", `[3]`, Epoch.Add(2 * time.Second)},
	}
	if len(sigs) != len(wants) {
		t.Fatalf("PendingSignals(x) = %+v, want %d signals", sigs, len(wants))
	}
	for i, w := range wants {
		s := sigs[i]
		if s.Name != w.name {
			t.Fatalf("signal %d Name = %q, want %q (oldest first)", i, s.Name, w.name)
		}
		wantJSON(t, "signal Payload", s.Payload, []byte(w.payload))
		wantTime(t, "signal At", s.At, w.at)
		if i > 0 && s.ID <= sigs[i-1].ID {
			t.Fatalf("signal IDs not increasing: %d then %d", sigs[i-1].ID, s.ID)
		}
	}
	if o := e.pendingSignals("other"); len(o) != 1 || o[0].Name != "approve" {
		t.Fatalf("PendingSignals(other) = %+v, want its one signal", o)
	}
	// A signal appends no event: the script records signal_received when it consumes it.
	e.wantKinds("x", backend.EventStarted)
	if x := e.get("x"); x.Version != 0 {
		t.Fatalf("version after signals = %d, want unchanged 0", x.Version)
	}
	// Three signals while the first workflow task was pending still make one task.
	wfs := e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskWorkflow}})
	if len(wfs) != 2 || wfs[0].ExecutionID == wfs[1].ExecutionID {
		t.Fatalf("workflow tasks after the signals: %s, want one for x and one for other", describe(wfs))
	}
	if s, err := e.b.PendingSignals(e.ctx, "unknown"); len(s) != 0 || err != nil && !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("PendingSignals of an unknown execution = (%+v, %v), want none (or ErrNotFound)", s, err)
	}
}

func testSignalEnqueues(t *testing.T, e *env) {
	e.create("x", func(n *backend.NewExecution) { n.Queue = "sq" })
	v := e.idle("x", 0)
	e.clock.Advance(time.Hour)
	e.claimNone("an idle execution has no task")
	e.signal("x", "go", `null`)
	wf := e.claimOne(backend.TaskWorkflow, "x")
	wantTime(t, "RunAt of the workflow task a signal enqueued", wf.RunAt, Epoch.Add(time.Hour))
	if wf.Queue != "sq" {
		t.Fatalf("workflow task Queue = %q, want the execution's queue sq", wf.Queue)
	}
	sigs := e.pendingSignals("x")
	if len(sigs) != 1 || sigs[0].Name != "go" {
		t.Fatalf("PendingSignals = %+v, want the go signal", sigs)
	}
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: v,
		Events:          []backend.NewEvent{{Seq: 1, Kind: backend.EventSignalReceived, Name: "go", Data: json.RawMessage(`null`)}},
		ConsumedSignals: []int64{sigs[0].ID}})
	e.claimNone("after the signal was consumed")
}

func testSignalRerun(t *testing.T, e *env) {
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	e.clock.Advance(time.Second)
	e.signal("x", "late", `1`)
	e.claimNone("the workflow task is claimed; a signal must not create a second one", backend.TaskWorkflow)
	e.clock.Advance(time.Second)
	v := e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0})
	again := e.claimOne(backend.TaskWorkflow, "x")
	if again.Fence <= wf.Fence {
		t.Fatalf("rerun workflow task fence %d, want > %d", again.Fence, wf.Fence)
	}
	if again.RunAt.After(e.clock.Now()) {
		t.Fatalf("rerun workflow task RunAt %v, want at once (now is %v)", again.RunAt, e.clock.Now())
	}
	if s := e.pendingSignals("x"); len(s) != 1 || s[0].Name != "late" {
		t.Fatalf("PendingSignals = %+v, want the late signal", s)
	}
	e.completeWF(backend.WorkflowTaskResult{Task: again.Ref(), ExecutionID: "x", ExpectedVersion: v})
	e.claimNone("after a workflow task with no concurrent signal")
}

func testSignalsConsumed(t *testing.T, e *env) {
	e.create("x")
	e.create("y", func(n *backend.NewExecution) { n.Queue = "yq" })
	e.signal("x", "a", `1`)
	e.signal("x", "b", `2`)
	e.signal("x", "c", `3`)
	e.signal("y", "a", `4`)
	sigs := e.pendingSignals("x")
	if len(sigs) != 3 {
		t.Fatalf("PendingSignals = %+v, want three", sigs)
	}
	wf := e.claimOneOn("default", backend.TaskWorkflow, "x")
	v := e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0,
		Events: []backend.NewEvent{
			{Seq: 1, Kind: backend.EventSignalReceived, Name: "a", Data: json.RawMessage(`1`)},
			{Seq: 2, Kind: backend.EventSignalReceived, Name: "c", Data: json.RawMessage(`3`)},
		},
		ConsumedSignals: []int64{sigs[0].ID, sigs[2].ID}})
	left := e.pendingSignals("x")
	if len(left) != 1 || left[0].ID != sigs[1].ID || left[0].Name != "b" {
		t.Fatalf("PendingSignals after consuming a and c = %+v, want only b (id %d)", left, sigs[1].ID)
	}
	if y := e.pendingSignals("y"); len(y) != 1 {
		t.Fatalf("PendingSignals(y) = %+v, want its signal untouched", y)
	}
	// A workflow task that consumes nothing leaves the pending signal alone; a stale
	// one consumes nothing.
	e.signal("x", "d", `5`)
	wf = e.claimOneOn("default", backend.TaskWorkflow, "x")
	_, err := e.b.CompleteWorkflowTask(e.ctx, backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x",
		ExpectedVersion: v + 1, ConsumedSignals: []int64{sigs[1].ID}})
	wantErrIs(t, "CompleteWorkflowTask with a wrong version", err, backend.ErrStaleExecution)
	if got := e.pendingSignals("x"); len(got) != 2 {
		t.Fatalf("PendingSignals after a stale completion = %+v, want b and d", got)
	}
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: v})
	if got := e.pendingSignals("x"); len(got) != 2 || got[0].Name != "b" || got[1].Name != "d" {
		t.Fatalf("PendingSignals = %+v, want b then d", got)
	}
}

func testSignalNotRunning(t *testing.T, e *env) {
	err := e.b.SignalExecution(e.ctx, "nope", "s", json.RawMessage(`1`))
	wantErrIs(t, "SignalExecution of an unknown execution", err, backend.ErrNotFound)

	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0,
		Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`1`)}})
	err = e.b.SignalExecution(e.ctx, "x", "s", json.RawMessage(`1`))
	wantErrIs(t, "SignalExecution of a completed execution", err, backend.ErrNotRunning)
	if errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("SignalExecution of a completed execution: %v, want ErrNotRunning, not ErrNotFound", err)
	}
	if s := e.pendingSignals("x"); len(s) != 0 {
		t.Fatalf("PendingSignals after a refused signal = %+v, want none", s)
	}
	e.claimNone("a refused signal enqueues nothing")
	e.wantKinds("x", backend.EventStarted, backend.EventCompleted)
}

func testCancelTimers(t *testing.T, e *env) {
	// y has a timer at the same seq as x's: cancelling x's must not touch it.
	e.create("y")
	e.scheduleTimer("y", 0, 1, Epoch.Add(time.Hour))
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	v := e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0,
		Events: []backend.NewEvent{
			{Seq: 1, Kind: backend.EventSignalWait, Name: "approve", Data: json.RawMessage(`{"timeout_ms":3600000}`)},
			{Seq: 2, Kind: backend.EventTimerScheduled, Name: "sleep"},
			{Seq: 3, Kind: backend.EventTimerScheduled, Name: "sleep"},
		},
		Tasks: []backend.NewTask{
			{Kind: backend.TaskTimer, Seq: 1, RunAt: Epoch.Add(time.Hour)},
			{Kind: backend.TaskTimer, Seq: 2, RunAt: Epoch.Add(2 * time.Hour)},
			{Kind: backend.TaskTimer, Seq: 3, RunAt: Epoch},
		}})
	// The timer at seq 3 is due and claimed: CancelTimers leaves claimed timers alone.
	claimed := e.claimOne(backend.TaskTimer, "x")
	if claimed.Seq != 3 {
		t.Fatalf("claimed the timer at seq %d, want 3", claimed.Seq)
	}
	e.signal("x", "approve", `true`)
	sigs := e.pendingSignals("x")
	wf = e.claimOne(backend.TaskWorkflow, "x")
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: v,
		Events:          []backend.NewEvent{{Seq: 1, Kind: backend.EventSignalReceived, Name: "approve", Data: json.RawMessage(`true`)}},
		ConsumedSignals: []int64{sigs[0].ID},
		CancelTimers:    []int{1, 3, 42}, // 42 does not exist: ignored
	})
	if err := e.b.FireTimer(e.ctx, claimed.Ref()); err != nil {
		t.Fatalf("FireTimer of the claimed timer after CancelTimers named its seq: %v (only pending timers are deleted)", err)
	}
	e.claimOne(backend.TaskWorkflow, "x")
	e.clock.Advance(90 * time.Minute)
	ts := e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskTimer}})
	if len(ts) != 1 || ts[0].ExecutionID != "y" || ts[0].Seq != 1 {
		t.Fatalf("due timers after cancelling x's seq 1: %s, want only y's timer", describe(ts))
	}
	e.clock.Advance(time.Hour)
	tk := e.claimOne(backend.TaskTimer, "x")
	if tk.Seq != 2 {
		t.Fatalf("x's remaining timer has seq %d, want 2 (not cancelled)", tk.Seq)
	}
}
