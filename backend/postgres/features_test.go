package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// fx is a small fixture for the tests of signals, cancellation, continue-as-new, the
// result cache and dead letters (the shared suite covers the rest).
type fx struct {
	t     *testing.T
	ctx   context.Context
	b     *Backend
	clock *testClock
}

func newFx(t *testing.T) *fx {
	clock := &testClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	return &fx{t: t, ctx: context.Background(), b: openTestBackend(t, clock), clock: clock}
}

func (f *fx) create(e backend.NewExecution) {
	f.t.Helper()
	if created, err := f.b.CreateExecution(f.ctx, e); err != nil || !created {
		f.t.Fatalf("CreateExecution(%s) = %v, %v", e.ID, created, err)
	}
}

func (f *fx) claim(kind backend.TaskKind, execID string) backend.Task {
	f.t.Helper()
	tasks, err := f.b.ClaimTasks(f.ctx, backend.ClaimRequest{WorkerID: "w", Kinds: []backend.TaskKind{kind}, Limit: 1})
	if err != nil {
		f.t.Fatal(err)
	}
	if len(tasks) != 1 || tasks[0].ExecutionID != execID {
		f.t.Fatalf("claimed %+v, want one %s task of %s", tasks, kind, execID)
	}
	return tasks[0]
}

func (f *fx) claimNone(what string) {
	f.t.Helper()
	tasks, err := f.b.ClaimTasks(f.ctx, backend.ClaimRequest{WorkerID: "w", Limit: 10})
	if err != nil {
		f.t.Fatal(err)
	}
	if len(tasks) != 0 {
		f.t.Fatalf("%s: claimed %+v, want nothing", what, tasks)
	}
}

func (f *fx) complete(r backend.WorkflowTaskResult) int64 {
	f.t.Helper()
	v, err := f.b.CompleteWorkflowTask(f.ctx, r)
	if err != nil {
		f.t.Fatalf("CompleteWorkflowTask(%s): %v", r.ExecutionID, err)
	}
	return v
}

func (f *fx) kinds(id string) []backend.EventKind {
	f.t.Helper()
	h, err := f.b.History(f.ctx, id, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	return kinds(h)
}

func (f *fx) wantKinds(id string, want ...backend.EventKind) {
	f.t.Helper()
	got := f.kinds(id)
	if len(got) != len(want) {
		f.t.Fatalf("history of %s = %v, want %v", id, got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			f.t.Fatalf("history of %s = %v, want %v", id, got, want)
		}
	}
}

func (f *fx) get(id string) *backend.Execution {
	f.t.Helper()
	e, err := f.b.GetExecution(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

func TestSignals(t *testing.T) {
	f := newFx(t)
	if err := f.b.SignalExecution(f.ctx, "nope", "s", nil); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("signal to an unknown execution: %v, want ErrNotFound", err)
	}
	f.create(newExec("x"))
	wf := f.claim(backend.TaskWorkflow, "x")
	if err := f.b.SignalExecution(f.ctx, "x", "a", json.RawMessage(`1`)); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	if err := f.b.SignalExecution(f.ctx, "x", "b", nil); err != nil {
		t.Fatal(err)
	}
	sigs, err := f.b.PendingSignals(f.ctx, "x")
	if err != nil || len(sigs) != 2 || sigs[0].Name != "a" || sigs[1].Name != "b" || string(sigs[1].Payload) != "null" {
		t.Fatalf("PendingSignals = %+v, %v", sigs, err)
	}
	// Signals while the workflow task is claimed make it run again.
	v := f.complete(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x",
		Events:          []backend.NewEvent{{Seq: 1, Kind: backend.EventSignalReceived, Name: "a", Data: json.RawMessage(`1`)}},
		ConsumedSignals: []int64{sigs[0].ID}})
	wf = f.claim(backend.TaskWorkflow, "x")
	if sigs, _ := f.b.PendingSignals(f.ctx, "x"); len(sigs) != 1 || sigs[0].Name != "b" {
		t.Fatalf("PendingSignals after consuming a = %+v", sigs)
	}
	f.complete(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: v,
		Finish: &backend.Finish{Status: backend.StatusCompleted}})
	if err := f.b.SignalExecution(f.ctx, "x", "c", nil); !errors.Is(err, backend.ErrNotRunning) {
		t.Fatalf("signal to a completed execution: %v, want ErrNotRunning", err)
	}
	f.claimNone("after the end")
}

func TestCancelTimersAndNextTaskAt(t *testing.T) {
	f := newFx(t)
	f.create(newExec("x"))
	wf := f.claim(backend.TaskWorkflow, "x")
	if _, ok, err := f.b.NextTaskAt(f.ctx, nil); err != nil || ok {
		t.Fatalf("NextTaskAt with nothing pending = %v, %v", ok, err)
	}
	now := f.clock.Now()
	v := f.complete(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x",
		Tasks: []backend.NewTask{
			{Kind: backend.TaskTimer, Seq: 1, RunAt: now.Add(time.Hour)},
			{Kind: backend.TaskTimer, Seq: 2, RunAt: now.Add(2 * time.Hour)},
		}})
	at, ok, err := f.b.NextTaskAt(f.ctx, []string{backend.DefaultQueue})
	if err != nil || !ok || !at.Equal(now.Add(time.Hour)) {
		t.Fatalf("NextTaskAt = %v, %v, %v", at, ok, err)
	}
	if _, ok, _ := f.b.NextTaskAt(f.ctx, []string{"other"}); ok {
		t.Fatal("NextTaskAt of an empty queue found a task")
	}
	if err := f.b.SignalExecution(f.ctx, "x", "s", nil); err != nil {
		t.Fatal(err)
	}
	wf = f.claim(backend.TaskWorkflow, "x")
	f.complete(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: v, CancelTimers: []int{1, 7}})
	at, ok, err = f.b.NextTaskAt(f.ctx, nil)
	if err != nil || !ok || !at.Equal(now.Add(2*time.Hour)) {
		t.Fatalf("NextTaskAt after cancelling seq 1 = %v, %v, %v", at, ok, err)
	}
}

func TestContinueAsNew(t *testing.T) {
	f := newFx(t)
	e := newExec("x")
	deadline := f.clock.Now().Add(24 * time.Hour)
	e.Deadline = &deadline
	f.create(e)
	wf := f.claim(backend.TaskWorkflow, "x")
	v := f.complete(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", Logs: []string{"run one"},
		Children: []backend.NewExecution{{ID: "x/1", ParentSeq: 1, Bundle: e.Bundle, Entry: "child"}},
		Events:   []backend.NewEvent{{Seq: 1, Kind: backend.EventChildScheduled, Name: "child"}},
		Tasks:    []backend.NewTask{{Kind: backend.TaskTimer, Seq: 2, RunAt: f.clock.Now().Add(time.Hour)}}})
	if c := f.get("x/1"); c.Run != 1 {
		t.Fatalf("child run = %d", c.Run)
	}
	wf = f.claim(backend.TaskWorkflow, "x/1") // the child's own first task
	cv := int64(0)
	if err := f.b.SignalExecution(f.ctx, "x", "poke", nil); err != nil {
		t.Fatal(err)
	}
	pwf := f.claim(backend.TaskWorkflow, "x")
	nv := f.complete(backend.WorkflowTaskResult{Task: pwf.Ref(), ExecutionID: "x", ExpectedVersion: v,
		Logs: []string{"still run one"}, ContinueAsNew: json.RawMessage(`[2]`)})
	if nv != v+1 {
		t.Fatalf("version after continue-as-new = %d, want %d", nv, v+1)
	}
	x := f.get("x")
	if x.Run != 2 || string(x.Args) != `[2]` || x.Status != backend.StatusRunning {
		t.Fatalf("after continue-as-new: %+v", x)
	}
	f.wantKinds("x", backend.EventStarted)
	h, _ := f.b.History(f.ctx, "x", 0)
	if string(h[0].Data) != `[2]` {
		t.Fatalf("started Data = %s", h[0].Data)
	}
	logs, err := f.b.Logs(f.ctx, "x")
	if err != nil || len(logs) != 2 || logs[0].Run != 1 || logs[1].Run != 1 {
		t.Fatalf("logs = %+v, %v", logs, err)
	}
	// The child of run 1 finishes: run 2 does not hear of it.
	f.complete(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x/1", ExpectedVersion: cv,
		Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`"c"`)}})
	f.wantKinds("x", backend.EventStarted)
	// The new run's workflow task is runnable now; the timer is gone, the deadline kept.
	wf = f.claim(backend.TaskWorkflow, "x")
	f.complete(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: nv, Logs: []string{"run two"}})
	f.clock.Advance(2 * time.Hour)
	f.claimNone("the timer of run one was deleted")
	f.clock.Advance(24 * time.Hour)
	f.claim(backend.TaskDeadline, "x")
	if logs, _ := f.b.Logs(f.ctx, "x"); len(logs) != 3 || logs[2].Run != 2 {
		t.Fatalf("logs = %+v", logs)
	}
}

func TestEndExecution(t *testing.T) {
	f := newFx(t)
	if _, err := f.b.EndExecution(f.ctx, "nope", backend.StatusCancelled, nil); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("EndExecution(nope) = %v, want ErrNotFound", err)
	}
	// root -> mid -> leaf, and a finished sibling of mid.
	f.create(newExec("root"))
	wf := f.claim(backend.TaskWorkflow, "root")
	bundle := newExec("root").Bundle
	f.complete(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "root", Children: []backend.NewExecution{
		{ID: "mid", ParentSeq: 1, Bundle: bundle, Entry: "m"}, {ID: "done", ParentSeq: 2, Bundle: bundle, Entry: "d"}}})
	tasks, err := f.b.ClaimTasks(f.ctx, backend.ClaimRequest{WorkerID: "w", Limit: 10})
	if err != nil || len(tasks) != 2 {
		t.Fatalf("claim = %+v, %v", tasks, err)
	}
	for _, tk := range tasks {
		r := backend.WorkflowTaskResult{Task: tk.Ref(), ExecutionID: tk.ExecutionID}
		if tk.ExecutionID == "done" {
			r.Finish = &backend.Finish{Status: backend.StatusCompleted}
		} else {
			r.Children = []backend.NewExecution{{ID: "leaf", ParentSeq: 1, Bundle: bundle, Entry: "l"}}
			r.Tasks = []backend.NewTask{{Kind: backend.TaskActivity, Seq: 2, Payload: json.RawMessage(`{}`)}}
		}
		f.complete(r)
	}
	f.claim(backend.TaskWorkflow, "leaf") // claimed tasks are deleted too
	f.claim(backend.TaskWorkflow, "root") // done's completion woke root; hold it claimed
	ended, err := f.b.EndExecution(f.ctx, "mid", backend.StatusCancelled, &backend.ErrorInfo{Message: "stop", Type: "cancelled"})
	if err != nil || !ended {
		t.Fatalf("EndExecution(mid) = %v, %v", ended, err)
	}
	for _, id := range []string{"mid", "leaf"} {
		x := f.get(id)
		if x.Status != backend.StatusCancelled || x.Error == nil || x.Error.Message != "stop" || x.CompletedAt == nil {
			t.Fatalf("%s after cancel: %+v", id, x)
		}
		f.wantKinds(id, backend.EventStarted, backend.EventCancelRequested, backend.EventFailed)
	}
	if x := f.get("done"); x.Status != backend.StatusCompleted {
		t.Fatalf("done = %s", x.Status)
	}
	f.wantKinds("root", backend.EventStarted, backend.EventChildCompleted, backend.EventChildCompleted)
	h, _ := f.b.History(f.ctx, "root", 0)
	if h[2].Seq != 1 || h[2].Error == nil || h[2].Error.Message != "stop" {
		t.Fatalf("child_completed for mid = %+v", h[2])
	}
	if ended, err := f.b.EndExecution(f.ctx, "mid", backend.StatusCancelled, nil); err != nil || ended {
		t.Fatalf("second EndExecution = %v, %v; want false, nil", ended, err)
	}
	f.claimNone("no task of mid or leaf is left; root's is claimed")
	if _, err := f.b.EndExecution(f.ctx, "root", backend.StatusCompleted, nil); err == nil {
		t.Fatal("EndExecution with status completed succeeded")
	}
}

func TestResultCache(t *testing.T) {
	f := newFx(t)
	f.create(newExec("x"))
	wf := f.claim(backend.TaskWorkflow, "x")
	f.complete(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", Tasks: []backend.NewTask{
		{Kind: backend.TaskActivity, Seq: 1, Payload: json.RawMessage(`{}`)},
		{Kind: backend.TaskActivity, Seq: 2, Payload: json.RawMessage(`{}`)}}})
	expires := f.clock.Now().Add(time.Minute)
	a1 := f.claim(backend.TaskActivity, "x")
	if err := f.b.CompleteActivityTask(f.ctx, backend.ActivityResult{Task: a1.Ref(), ExecutionID: "x", Seq: a1.Seq, Name: "fetch",
		Result: json.RawMessage(`{"v":1}`), Cache: &backend.CacheEntry{Key: "k1", ExpiresAt: &expires}}); err != nil {
		t.Fatal(err)
	}
	a2 := f.claim(backend.TaskActivity, "x")
	if err := f.b.CompleteActivityTask(f.ctx, backend.ActivityResult{Task: a2.Ref(), ExecutionID: "x", Seq: a2.Seq, Name: "fetch",
		Result: json.RawMessage(`{"v":1}`), CacheHit: true}); err != nil {
		t.Fatal(err)
	}
	h, _ := f.b.History(f.ctx, "x", 0)
	if len(h) != 3 || h[1].CacheHit || !h[2].CacheHit {
		t.Fatalf("history = %+v, want the second completion marked as a cache hit", h)
	}
	if res, ok, err := f.b.CachedResult(f.ctx, "k1"); err != nil || !ok || string(res) != `{"v":1}` {
		t.Fatalf("CachedResult = %s, %v, %v", res, ok, err)
	}
	if _, ok, _ := f.b.CachedResult(f.ctx, "k2"); ok {
		t.Fatal("CachedResult of an unknown key found something")
	}
	f.clock.Advance(time.Minute)
	if _, ok, _ := f.b.CachedResult(f.ctx, "k1"); ok {
		t.Fatal("CachedResult returned an expired entry")
	}
	if n, err := f.b.ClearCache(f.ctx, "other"); err != nil || n != 0 {
		t.Fatalf("ClearCache(other) = %d, %v", n, err)
	}
	if n, err := f.b.ClearCache(f.ctx, "fetch"); err != nil || n != 1 {
		t.Fatalf("ClearCache(fetch) = %d, %v", n, err)
	}
}

func TestDeadLetters(t *testing.T) {
	f := newFx(t)
	f.create(newExec("x"))
	wf := f.claim(backend.TaskWorkflow, "x")
	payload := json.RawMessage(`{"name":"charge","args":[1]}`)
	v := f.complete(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x",
		Events: []backend.NewEvent{{Seq: 1, Kind: backend.EventActivityScheduled, Name: "charge"}},
		Tasks:  []backend.NewTask{{Kind: backend.TaskActivity, Seq: 1, Payload: payload}}})
	act := f.claim(backend.TaskActivity, "x")
	boom := &backend.ErrorInfo{Message: "declined", Type: "activity", Activity: "charge", Attempts: 3}
	if err := f.b.CompleteActivityTask(f.ctx, backend.ActivityResult{Task: act.Ref(), ExecutionID: "x", Seq: 1, Name: "charge", Error: boom}); err != nil {
		t.Fatal(err)
	}
	wf = f.claim(backend.TaskWorkflow, "x")
	v = f.complete(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: v,
		Finish:     &backend.Finish{Status: backend.StatusFailed, Error: boom},
		DeadLetter: &backend.DeadLetter{Seq: 1, Activity: "charge", Payload: payload}})
	dls, err := f.b.ListDeadLetters(f.ctx, "open", 0)
	if err != nil || len(dls) != 1 || dls[0].ExecutionID != "x" || dls[0].Seq != 1 || dls[0].Error == nil ||
		dls[0].Error.Message != "declined" || string(dls[0].Payload) != string(payload) || dls[0].Status != "open" {
		t.Fatalf("ListDeadLetters = %+v, %v", dls, err)
	}
	if _, err := f.b.GetDeadLetter(f.ctx, dls[0].ID+100); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("GetDeadLetter(unknown) = %v, want ErrNotFound", err)
	}
	if err := f.b.ReplayDeadLetter(f.ctx, dls[0].ID); err != nil {
		t.Fatal(err)
	}
	x := f.get("x")
	if x.Status != backend.StatusRunning || x.Error != nil || x.CompletedAt != nil || x.Version != v+1 {
		t.Fatalf("after replay: %+v", x)
	}
	f.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled, backend.EventActivityFailed,
		backend.EventFailed, backend.EventDeadLetterReplayed)
	act = f.claim(backend.TaskActivity, "x")
	if act.Attempt != 1 || act.Seq != 1 || string(act.Payload) != string(payload) {
		t.Fatalf("replayed activity task = %+v", act)
	}
	if d, err := f.b.GetDeadLetter(f.ctx, dls[0].ID); err != nil || d.Status != "replayed" {
		t.Fatalf("GetDeadLetter = %+v, %v", d, err)
	}
	if err := f.b.DiscardDeadLetter(f.ctx, dls[0].ID); err == nil {
		t.Fatal("discarding a replayed dead letter succeeded")
	}
	if err := f.b.ReplayDeadLetter(f.ctx, dls[0].ID); err == nil {
		t.Fatal("replaying a dead letter twice succeeded")
	}
}
