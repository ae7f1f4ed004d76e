package backendtest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// delayedStartTests check that what enqueues an execution's workflow task (a signal
// here) never makes an execution dispatched with a future StartAt runnable early, and
// that a dead-letter replay keeps the failed step's priority.
var delayedStartTests = []test{
	{"SignalDoesNotStartEarly", testSignalDelayedStart},
	{"SignalAfterStartStillWakes", testSignalAfterStart},
	{"ReplayKeepsPriority", testDeadLetterReplayPriority},
}

func testSignalDelayedStart(t *testing.T, e *env) {
	start := Epoch.Add(time.Hour)
	e.create("delayed", func(n *backend.NewExecution) { n.StartAt = start })
	if err := e.b.SignalExecution(e.ctx, "delayed", "go", json.RawMessage(`1`)); err != nil {
		t.Fatalf("SignalExecution: %v", err)
	}
	e.claimNone("after a signal to an execution that starts in an hour", backend.TaskWorkflow)
	at, ok, err := e.b.NextTaskAt(e.ctx, nil)
	if err != nil || !ok {
		t.Fatalf("NextTaskAt = %v, %v, %v; want the delayed start", at, ok, err)
	}
	wantTime(t, "NextTaskAt after the signal", at, start)
	e.clock.Advance(59 * time.Minute)
	e.claimNone("a minute before the start", backend.TaskWorkflow)
	e.clock.Advance(time.Minute)
	e.claimOne(backend.TaskWorkflow, "delayed")
	if sigs, err := e.b.PendingSignals(e.ctx, "delayed"); err != nil || len(sigs) != 1 {
		t.Fatalf("PendingSignals = %+v, %v; want the signal kept for the script", sigs, err)
	}
}

func testSignalAfterStart(t *testing.T, e *env) {
	// Once started, a signal makes the workflow task runnable at once, even when the
	// execution waits on a timer far ahead.
	e.create("x", func(n *backend.NewExecution) { n.StartAt = Epoch.Add(time.Minute) })
	e.clock.Advance(time.Minute)
	e.scheduleTimer("x", 0, 1, e.clock.Now().Add(time.Hour))
	e.claimNone("while the timer waits", backend.TaskWorkflow)
	if err := e.b.SignalExecution(e.ctx, "x", "go", nil); err != nil {
		t.Fatalf("SignalExecution: %v", err)
	}
	e.claimOne(backend.TaskWorkflow, "x")
}

func testDeadLetterReplayPriority(t *testing.T, e *env) {
	// The failed step was scheduled with priority 5 (in its payload's options, as the
	// engine writes them); after the replay it is claimed before an older task of
	// priority 0.
	e.create("x")
	payload, _ := json.Marshal(backend.ActivityPayload{Name: "charge", Args: json.RawMessage(`[1]`),
		Options: json.RawMessage(`{"priority":5}`)})
	hi := backend.NewTask{Kind: backend.TaskActivity, Seq: 1, Attempt: 1, Priority: 5, Payload: payload}
	v := e.scheduleTasks("x", 0, hi)
	tk := e.claimOne(backend.TaskActivity, "x")
	fail := &backend.ErrorInfo{Message: "declined", Type: "activity", Activity: "charge", Attempts: 1, Seq: 1}
	if err := e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: tk.Ref(), ExecutionID: "x", Seq: 1,
		Name: "charge", Error: fail}); err != nil {
		t.Fatalf("CompleteActivityTask: %v", err)
	}
	wf := e.claimOne(backend.TaskWorkflow, "x")
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: v,
		Finish:     &backend.Finish{Status: backend.StatusFailed, Error: fail},
		DeadLetter: &backend.DeadLetter{ExecutionID: "x", Seq: 1, Activity: "charge", Payload: payload, Error: fail}})

	e.create("other")
	e.scheduleTasks("other", 0, act(1, "low", 0))
	e.clock.Advance(time.Second)
	d := e.onlyDeadLetter()
	if err := e.b.ReplayDeadLetter(e.ctx, d.ID); err != nil {
		t.Fatalf("ReplayDeadLetter: %v", err)
	}
	tasks := e.claim(backend.ClaimRequest{Kinds: activities(), Limit: 1})
	if got := seqs(tasks); got != "[x/1]" {
		t.Fatalf("claimed %s after the replay, want [x/1] first: the replayed step keeps priority 5", got)
	}
}
