package backendtest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

var historyTests = []test{
	{"OrderAndPaging", testHistoryPaging},
	{"EventFieldsRoundTrip", testEventFields},
	{"ExecutionsAreSeparate", testHistorySeparate},
	{"UnknownExecution", testHistoryUnknown},
}

func testHistoryPaging(t *testing.T, e *env) {
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	var evs []backend.NewEvent
	for i := 1; i <= 5; i++ {
		evs = append(evs, backend.NewEvent{Seq: i, Kind: backend.EventSideEffect, Name: "random", Data: json.RawMessage(itoa(int64(i * 10)))})
	}
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0, Events: evs})
	h := e.history("x")
	if len(h) != 6 {
		t.Fatalf("history has %d events, want 6 (started + 5)", len(h))
	}
	for i := 1; i < len(h); i++ {
		if h[i].ID <= h[i-1].ID {
			t.Fatalf("event IDs not increasing: %d then %d", h[i-1].ID, h[i].ID)
		}
		if h[i].Seq != i {
			t.Fatalf("event %d has Seq %d, want %d (append order)", i, h[i].Seq, i)
		}
	}
	page, err := e.b.History(e.ctx, "x", h[2].ID)
	if err != nil {
		t.Fatalf("History(after %d): %v", h[2].ID, err)
	}
	if len(page) != 3 || page[0].ID != h[3].ID || page[2].ID != h[5].ID {
		t.Fatalf("History(after event %d) returned %d events, want the last 3 (IDs %d..%d)", h[2].ID, len(page), h[3].ID, h[5].ID)
	}
	rest, err := e.b.History(e.ctx, "x", h[5].ID)
	if err != nil || len(rest) != 0 {
		t.Fatalf("History(after the last event) = (%d events, %v), want none", len(rest), err)
	}
}

func testEventFields(t *testing.T, e *env) {
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	e.clock.Advance(1500 * time.Millisecond)
	fail := &backend.ErrorInfo{Message: "it broke\nbadly", Type: "nondeterminism", Activity: "act", Attempts: 2,
		Stack: "main.star:1:1 in main\nlib.star:2:2 in f"}
	data := json.RawMessage(`{"args":[1,2.5,"três",null,true,{"k":[]}],"hash":"abc","pos":"main.star:7:9"}`)
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0,
		Events: []backend.NewEvent{
			{Seq: 7, Kind: backend.EventActivityScheduled, Name: "fetch_user_data", Data: data},
			{Seq: 8, Kind: backend.EventSignalReceived, Name: "approved", Data: json.RawMessage(`"yes"`)},
			{Seq: 9, Kind: backend.EventActivityFailed, Name: "act", Error: fail},
			{Seq: 10, Kind: backend.EventTimerFired, Name: "sleep"},
		}})
	h := e.history("x")
	if len(h) != 5 {
		t.Fatalf("history has %d events, want 5", len(h))
	}
	a := h[1]
	if a.Seq != 7 || a.Kind != backend.EventActivityScheduled || a.Name != "fetch_user_data" || a.Error != nil {
		t.Fatalf("event 1 = %+v, want seq 7 activity_scheduled fetch_user_data", a)
	}
	wantJSON(t, "activity_scheduled Data", a.Data, data)
	wantTime(t, "event At", a.At, Epoch.Add(1500*time.Millisecond))
	if s := h[2]; s.Kind != backend.EventSignalReceived || s.Name != "approved" || string(s.Data) != `"yes"` {
		t.Fatalf("event 2 = kind %s name %q data %s, want signal_received approved \"yes\"", s.Kind, s.Name, s.Data)
	}
	f := h[3]
	if f.Error == nil || *f.Error != *fail {
		t.Fatalf("event 3 Error = %+v, want %+v", f.Error, fail)
	}
	if len(f.Data) != 0 && string(f.Data) != "null" {
		t.Fatalf("event 3 Data = %s, want none", f.Data)
	}
	if tf := h[4]; tf.Seq != 10 || (len(tf.Data) != 0 && string(tf.Data) != "null") || tf.Error != nil {
		t.Fatalf("event 4 = %+v, want seq 10 with no data and no error", tf)
	}
}

func testHistorySeparate(t *testing.T, e *env) {
	e.create("a")
	e.create("b")
	for _, id := range []string{"a", "b"} {
		e.wantKinds(id, backend.EventStarted)
	}
	ha, hb := e.history("a"), e.history("b")
	if ha[0].ID == hb[0].ID {
		t.Fatalf("two executions' started events share ID %d", ha[0].ID)
	}
}

func testHistoryUnknown(t *testing.T, e *env) {
	h, err := e.b.History(e.ctx, "missing", 0)
	if err != nil {
		wantErrIs(t, "History of an unknown execution", err, backend.ErrNotFound)
	}
	if len(h) != 0 {
		t.Fatalf("History of an unknown execution returned %d events, want none", len(h))
	}
}
