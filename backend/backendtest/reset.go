package backendtest

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stent-go/stent/backend"
)

func testResetExecution(t *testing.T, e *env) {
	r := required[backend.Resetter](e)
	e.create("x")
	into := json.RawMessage(`{"id":"x-r1","step":3}`)
	fail := &backend.ErrorInfo{Message: "no", Type: "activity", Activity: "b"}
	prefix := []backend.NewEvent{
		{Kind: backend.EventResetFrom, Data: json.RawMessage(`{"id":"x","step":3}`)},
		{Seq: 1, Kind: backend.EventActivityScheduled, Name: "a", Data: json.RawMessage(`{"hash":"h1","pos":"main.star:2:5"}`)},
		{Seq: 1, Kind: backend.EventActivityCompleted, Name: "a", Data: json.RawMessage(`"A"`)},
		{Seq: 2, Kind: backend.EventActivityScheduled, Name: "b", Data: json.RawMessage(`{"hash":"h2","pos":"main.star:3:5"}`)},
		{Seq: 2, Kind: backend.EventActivityFailed, Name: "b", Error: fail},
	}
	created, err := r.ResetExecution(e.ctx, newExec("x-r1"), prefix, "x", into)
	if err != nil || !created {
		t.Fatalf("ResetExecution = %v, %v; want true, nil", created, err)
	}
	h := e.wantKinds("x-r1", backend.EventStarted, backend.EventResetFrom, backend.EventActivityScheduled,
		backend.EventActivityCompleted, backend.EventActivityScheduled, backend.EventActivityFailed)
	wantJSON(t, "started data", h[0].Data, json.RawMessage(`["hello",42]`))
	for i, ev := range h[1:] {
		if ev.Seq != prefix[i].Seq || ev.Name != prefix[i].Name {
			t.Fatalf("copied event %d = seq %d name %q, want seq %d name %q", i, ev.Seq, ev.Name, prefix[i].Seq, prefix[i].Name)
		}
	}
	wantJSON(t, "copied result", h[3].Data, json.RawMessage(`"A"`))
	if h[5].Error == nil || h[5].Error.Message != "no" || h[5].Error.Activity != "b" {
		t.Fatalf("copied failure = %+v, want %+v", h[5].Error, fail)
	}
	if x := e.get("x-r1"); x.Status != backend.StatusRunning {
		t.Fatalf("the new execution is %s, want running", x.Status)
	}
	old := e.wantKinds("x", backend.EventStarted, backend.EventResetInto)
	wantJSON(t, "reset_into data", old[1].Data, into)

	if created, err := r.ResetExecution(e.ctx, newExec("x-r1"), prefix, "x", into); err != nil || created {
		t.Fatalf("ResetExecution to an existing ID = %v, %v; want false, nil", created, err)
	}
	e.wantKinds("x", backend.EventStarted, backend.EventResetInto)

	_, err = r.ResetExecution(e.ctx, newExec("nope-r1"), prefix, "nope", into)
	if !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("ResetExecution of an unknown execution: %v, want ErrNotFound", err)
	}
	if _, err := e.b.GetExecution(e.ctx, "nope-r1"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("ResetExecution of an unknown execution created nope-r1 (%v)", err)
	}
}
