package backendtest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// testSignalTimedOut: the timer of a wait_signal's timeout fires as signal_timed_out,
// named by the signal, not as a timer_fired "sleep".
func testSignalTimedOut(t *testing.T, e *env) {
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0,
		Events: []backend.NewEvent{{Seq: 1, Kind: backend.EventSignalWait, Name: "approve",
			Data: json.RawMessage(`{"timeout_ms":3600000}`)}},
		Tasks: []backend.NewTask{{Kind: backend.TaskTimer, Seq: 1, RunAt: Epoch.Add(time.Hour)}}})
	e.clock.Advance(time.Hour)
	tk := e.claimOne(backend.TaskTimer, "x")
	if err := e.b.FireTimer(e.ctx, tk.Ref()); err != nil {
		t.Fatalf("FireTimer: %v", err)
	}
	h := e.wantKinds("x", backend.EventStarted, backend.EventSignalWait, backend.EventSignalTimedOut)
	if h[2].Seq != 1 || h[2].Name != "approve" {
		t.Fatalf("signal_timed_out: seq %d name %q, want 1 approve", h[2].Seq, h[2].Name)
	}
	e.claimOne(backend.TaskWorkflow, "x")
}
