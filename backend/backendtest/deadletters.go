package backendtest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

var deadLetterTests = []test{
	{"FailedFinishRecordsDeadLetter", testDeadLetterCreated},
	{"ListNewestFirstWithStatusAndLimit", testDeadLetterList},
	{"Replay", testDeadLetterReplay},
	{"Discard", testDeadLetterDiscard},
	{"Unknown", testDeadLetterUnknown},
}

// failWithDeadLetter runs execution id to a failure of activity "charge" at seq 2
// (after a side effect at seq 1) and records a dead letter. It returns the failure,
// the activity payload and the execution's version.
func (e *env) failWithDeadLetter(id string) (*backend.ErrorInfo, json.RawMessage, int64) {
	e.t.Helper()
	e.create(id, func(n *backend.NewExecution) { n.Queue = "dq" })
	payload := activityPayload("charge")
	wf := e.claimOne(backend.TaskWorkflow, id)
	v := e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: id, ExpectedVersion: 0,
		Events: []backend.NewEvent{
			{Seq: 1, Kind: backend.EventSideEffect, Name: "uuid", Data: json.RawMessage(`"u"`)},
			{Seq: 2, Kind: backend.EventActivityScheduled, Name: "charge", Data: json.RawMessage(`{"args":[1,"two"]}`)},
		},
		Tasks: []backend.NewTask{{Kind: backend.TaskActivity, Seq: 2, Attempt: 1, Payload: payload}}})
	act := e.claimOne(backend.TaskActivity, id)
	fail := &backend.ErrorInfo{Message: "card declined", Type: "activity", Activity: "charge", Attempts: 3, Seq: 2}
	if err := e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: act.Ref(), ExecutionID: id, Seq: 2,
		Name: "charge", Error: fail}); err != nil {
		e.t.Fatalf("CompleteActivityTask with an error: %v", err)
	}
	wf = e.claimOne(backend.TaskWorkflow, id)
	v = e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: id, ExpectedVersion: v,
		Finish:     &backend.Finish{Status: backend.StatusFailed, Error: fail},
		DeadLetter: &backend.DeadLetter{ExecutionID: id, Seq: 2, Activity: "charge", Payload: payload, Error: fail}})
	return fail, payload, v
}

func (e *env) deadLetters(status string, limit int) []backend.DeadLetter {
	e.t.Helper()
	dls, err := e.b.ListDeadLetters(e.ctx, status, limit)
	if err != nil {
		e.t.Fatalf("ListDeadLetters(%q, %d): unexpected error %v", status, limit, err)
	}
	return dls
}

func (e *env) onlyDeadLetter() backend.DeadLetter {
	e.t.Helper()
	dls := e.deadLetters("", 0)
	if len(dls) != 1 {
		e.t.Fatalf("ListDeadLetters = %+v, want exactly one", dls)
	}
	return dls[0]
}

func testDeadLetterCreated(t *testing.T, e *env) {
	if d := e.deadLetters("", 0); len(d) != 0 {
		t.Fatalf("ListDeadLetters on an empty store = %+v, want none", d)
	}
	e.clock.Advance(time.Second)
	fail, payload, _ := e.failWithDeadLetter("x")
	d := e.onlyDeadLetter()
	if d.ID == 0 || d.ExecutionID != "x" || d.Seq != 2 || d.Activity != "charge" || d.Status != "open" {
		t.Fatalf("dead letter = %+v, want a non-zero ID, execution x, seq 2, activity charge, status open", d)
	}
	if d.Error == nil || *d.Error != *fail {
		t.Fatalf("dead letter Error = %+v, want %+v (Seq included)", d.Error, fail)
	}
	wantJSON(t, "dead letter Payload", d.Payload, payload)
	wantTime(t, "dead letter CreatedAt", d.CreatedAt, Epoch.Add(time.Second))
	got, err := e.b.GetDeadLetter(e.ctx, d.ID)
	if err != nil {
		t.Fatalf("GetDeadLetter(%d): %v", d.ID, err)
	}
	if !reflect.DeepEqual(normDL(*got), normDL(d)) {
		t.Fatalf("GetDeadLetter = %+v, want %+v as listed", *got, d)
	}
	if x := e.get("x"); x.Status != backend.StatusFailed || x.Error == nil || x.Error.Seq != 2 {
		t.Fatalf("execution: status %s error %+v, want failed with Seq 2", x.Status, x.Error)
	}
	if open := e.deadLetters("open", 0); len(open) != 1 {
		t.Fatalf("ListDeadLetters(open) = %+v, want the dead letter", open)
	}
	for _, st := range []string{"replayed", "discarded"} {
		if l := e.deadLetters(st, 0); len(l) != 0 {
			t.Fatalf("ListDeadLetters(%s) = %+v, want none", st, l)
		}
	}
	// A failure without DeadLetter records none.
	e.create("y")
	wf := e.claimOne(backend.TaskWorkflow, "y")
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "y", ExpectedVersion: 0,
		Finish: &backend.Finish{Status: backend.StatusFailed, Error: &backend.ErrorInfo{Message: "script error", Type: "script"}}})
	e.onlyDeadLetter()
}

// normDL makes dead letters comparable: JSON payloads compared as values, times by
// instant.
func normDL(d backend.DeadLetter) backend.DeadLetter {
	var v any
	if json.Unmarshal(d.Payload, &v) == nil {
		d.Payload, _ = json.Marshal(v)
	}
	d.CreatedAt = d.CreatedAt.UTC()
	return d
}

func testDeadLetterList(t *testing.T, e *env) {
	for _, id := range []string{"x1", "x2", "x3"} {
		e.failWithDeadLetter(id)
		e.clock.Advance(time.Second)
	}
	order := func(dls []backend.DeadLetter) []string {
		out := make([]string, len(dls))
		for i, d := range dls {
			out[i] = d.ExecutionID
		}
		return out
	}
	if got := order(e.deadLetters("", 0)); !reflect.DeepEqual(got, []string{"x3", "x2", "x1"}) {
		t.Fatalf("ListDeadLetters(\"\", 0) = %v, want newest first [x3 x2 x1]", got)
	}
	if got := order(e.deadLetters("", 2)); !reflect.DeepEqual(got, []string{"x3", "x2"}) {
		t.Fatalf("ListDeadLetters(\"\", 2) = %v, want [x3 x2]", got)
	}
	if got := order(e.deadLetters("open", -1)); len(got) != 3 {
		t.Fatalf("ListDeadLetters(open, -1) = %v, want all three (limit <= 0: default)", got)
	}
	x2 := e.deadLetters("", 0)[1]
	if err := e.b.DiscardDeadLetter(e.ctx, x2.ID); err != nil {
		t.Fatalf("DiscardDeadLetter: %v", err)
	}
	if got := order(e.deadLetters("open", 0)); !reflect.DeepEqual(got, []string{"x3", "x1"}) {
		t.Fatalf("ListDeadLetters(open) = %v, want [x3 x1]", got)
	}
	if got := order(e.deadLetters("discarded", 0)); !reflect.DeepEqual(got, []string{"x2"}) {
		t.Fatalf("ListDeadLetters(discarded) = %v, want [x2]", got)
	}
	if got := order(e.deadLetters("", 0)); len(got) != 3 {
		t.Fatalf("ListDeadLetters(\"\") = %v, want all three whatever their status", got)
	}
}

func testDeadLetterReplay(t *testing.T, e *env) {
	_, payload, v := e.failWithDeadLetter("x")
	d := e.onlyDeadLetter()
	e.clock.Advance(time.Minute)
	if err := e.b.ReplayDeadLetter(e.ctx, d.ID); err != nil {
		t.Fatalf("ReplayDeadLetter: %v", err)
	}
	x := e.get("x")
	if x.Status != backend.StatusRunning || x.Error != nil || x.CompletedAt != nil {
		t.Fatalf("after replay: status %s error %v completed %v, want running, no error, not completed", x.Status, x.Error, x.CompletedAt)
	}
	if x.Version <= v {
		t.Fatalf("after replay: version %d, want above %d (live runs are stale)", x.Version, v)
	}
	h := e.wantKinds("x", backend.EventStarted, backend.EventSideEffect, backend.EventActivityScheduled,
		backend.EventActivityFailed, backend.EventFailed, backend.EventDeadLetterReplayed)
	if r := h[len(h)-1]; r.Seq != 2 || r.Name != d.Activity {
		t.Fatalf("dead_letter_replayed event: seq %d name %q, want seq 2 name %q", r.Seq, r.Name, d.Activity)
	}
	wantJSON(t, "dead_letter_replayed Data", h[len(h)-1].Data, []byte(fmt.Sprintf(`{"dead_letter_id":%d}`, d.ID)))
	act := e.claimOne(backend.TaskActivity, "x")
	if act.Seq != 2 || act.Attempt != 1 {
		t.Fatalf("replayed activity task: seq %d attempt %d, want seq 2 attempt 1", act.Seq, act.Attempt)
	}
	wantJSON(t, "replayed activity Payload", act.Payload, payload)
	if act.RunAt.After(e.clock.Now()) {
		t.Fatalf("replayed activity RunAt %v, want runnable now (%v)", act.RunAt, e.clock.Now())
	}
	e.claimNone("replay creates only the activity task")
	if got, err := e.b.GetDeadLetter(e.ctx, d.ID); err != nil || got.Status != "replayed" {
		t.Fatalf("GetDeadLetter after replay = (%+v, %v), want status replayed", got, err)
	}
	if open := e.deadLetters("open", 0); len(open) != 0 {
		t.Fatalf("ListDeadLetters(open) after replay = %+v, want none", open)
	}
	if err := e.b.ReplayDeadLetter(e.ctx, d.ID); err == nil {
		t.Fatalf("ReplayDeadLetter twice: nil error, want one (the dead letter is no longer open)")
	}
	if err := e.b.DiscardDeadLetter(e.ctx, d.ID); err == nil {
		t.Fatalf("DiscardDeadLetter of a replayed dead letter: nil error, want one")
	}
	// The step now succeeds and the execution goes on.
	if err := e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: act.Ref(), ExecutionID: "x", Seq: 2,
		Name: "charge", Result: json.RawMessage(`"paid"`)}); err != nil {
		t.Fatalf("CompleteActivityTask of the replayed step: %v", err)
	}
	wf := e.claimOne(backend.TaskWorkflow, "x")
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: x.Version,
		Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`"ok"`)}})
	e.wantKinds("x", backend.EventStarted, backend.EventSideEffect, backend.EventActivityScheduled,
		backend.EventActivityFailed, backend.EventFailed, backend.EventDeadLetterReplayed,
		backend.EventActivityCompleted, backend.EventCompleted)
}

func testDeadLetterDiscard(t *testing.T, e *env) {
	e.failWithDeadLetter("x")
	d := e.onlyDeadLetter()
	if err := e.b.DiscardDeadLetter(e.ctx, d.ID); err != nil {
		t.Fatalf("DiscardDeadLetter: %v", err)
	}
	if got, err := e.b.GetDeadLetter(e.ctx, d.ID); err != nil || got.Status != "discarded" {
		t.Fatalf("GetDeadLetter after discard = (%+v, %v), want status discarded", got, err)
	}
	if x := e.get("x"); x.Status != backend.StatusFailed {
		t.Fatalf("execution after discarding its dead letter: %s, want still failed", x.Status)
	}
	e.claimNone("discard creates no task")
	if err := e.b.DiscardDeadLetter(e.ctx, d.ID); err == nil {
		t.Fatalf("DiscardDeadLetter twice: nil error, want one")
	}
	if err := e.b.ReplayDeadLetter(e.ctx, d.ID); err == nil {
		t.Fatalf("ReplayDeadLetter of a discarded dead letter: nil error, want one")
	}
	if x := e.get("x"); x.Status != backend.StatusFailed {
		t.Fatalf("execution after a refused replay: %s, want still failed", x.Status)
	}
}

func testDeadLetterUnknown(t *testing.T, e *env) {
	_, err := e.b.GetDeadLetter(e.ctx, 424242)
	wantErrIs(t, "GetDeadLetter of an unknown id", err, backend.ErrNotFound)
	wantErrIs(t, "ReplayDeadLetter of an unknown id", e.b.ReplayDeadLetter(e.ctx, 424242), backend.ErrNotFound)
	wantErrIs(t, "DiscardDeadLetter of an unknown id", e.b.DiscardDeadLetter(e.ctx, 424242), backend.ErrNotFound)
}
