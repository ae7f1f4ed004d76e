package backendtest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// attemptTests check that a retried activity attempt is recorded in the history, in
// the transaction that schedules the retry.
var attemptTests = []test{
	{"RetryRecordsTheFailedAttempt", testRetryRecordsAttempt},
	{"RetryWithALostLeaseRecordsNothing", testRetryLostLeaseRecordsNothing},
}

func attemptFailed(seq int) *backend.NewEvent {
	return backend.AttemptFailedEvent(seq, "flaky", backend.AttemptData{Attempt: 1, Worker: "w1",
		StartedAt: Epoch, EndedAt: Epoch.Add(2 * time.Second)},
		&backend.ErrorInfo{Message: "503 from upstream", Type: "activity", Activity: "flaky"})
}

func testRetryRecordsAttempt(t *testing.T, e *env) {
	e.create("x")
	e.scheduleActivities("x", 0, 1, "flaky")
	first := e.claimOne(backend.TaskActivity, "x")
	if err := e.b.RetryActivityTask(e.ctx, first.Ref(), Epoch.Add(5*time.Second), 2, nil, attemptFailed(1)); err != nil {
		t.Fatalf("RetryActivityTask: %v", err)
	}
	h := e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled, backend.EventActivityAttemptFailed)
	ev := h[2]
	if ev.Seq != 1 || ev.Name != "flaky" || ev.Error == nil || ev.Error.Message != "503 from upstream" {
		t.Fatalf("activity_attempt_failed: seq %d name %q error %+v, want seq 1, flaky, its error", ev.Seq, ev.Name, ev.Error)
	}
	var d backend.AttemptData
	if err := json.Unmarshal(ev.Data, &d); err != nil || d.Attempt != 1 || d.Worker != "w1" ||
		!d.StartedAt.Equal(Epoch) || !d.EndedAt.Equal(Epoch.Add(2*time.Second)) {
		t.Fatalf("activity_attempt_failed Data = %s (%v), want attempt 1 on w1 from Epoch to +2s", ev.Data, err)
	}
	e.clock.Advance(5 * time.Second)
	if again := e.claimOne(backend.TaskActivity, "x"); again.Attempt != 2 {
		t.Fatalf("retried task attempt %d, want 2", again.Attempt)
	}
}

func testRetryLostLeaseRecordsNothing(t *testing.T, e *env) {
	e.create("x")
	e.scheduleActivities("x", 0, 1, "flaky")
	first := e.claimOne(backend.TaskActivity, "x")
	stale := first.Ref()
	stale.Fence++
	err := e.b.RetryActivityTask(e.ctx, stale, Epoch.Add(5*time.Second), 2, nil, attemptFailed(1))
	wantErrIs(t, "RetryActivityTask with another fence", err, backend.ErrLeaseLost)
	e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled)
}
