package backendtest

import (
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

var cancelRequestTests = []test{
	{"RequestReachesTheScriptAndDescendants", testRequestCancel},
	{"RequestOfAnEndedExecution", testRequestCancelEnded},
}

func (e *env) canceller() backend.CancelRequester { return required[backend.CancelRequester](e) }

func testRequestCancel(t *testing.T, e *env) {
	c := e.canceller()
	e.create("p")
	e.scheduleActivities("p", 0, 1, "a")
	act := e.claimOne(backend.TaskActivity, "p")
	e.create("p/9", func(n *backend.NewExecution) { n.ParentID, n.ParentSeq = "p", 9 })
	e.scheduleTimer("p/9", 0, 1, Epoch.Add(time.Hour))

	grace := Epoch.Add(time.Minute)
	if ok, err := c.RequestCancel(e.ctx, "p", grace); err != nil || !ok {
		t.Fatalf("RequestCancel(p) = %v, %v; want true, nil", ok, err)
	}
	for _, id := range []string{"p", "p/9"} {
		if x := e.get(id); x.Status != backend.StatusRunning {
			t.Fatalf("%s is %s after a cancel request, want still running (the script decides)", id, x.Status)
		}
	}
	e.wantKinds("p", backend.EventStarted, backend.EventActivityScheduled, backend.EventCancelRequested)
	e.wantKinds("p/9", backend.EventStarted, backend.EventTimerScheduled, backend.EventCancelRequested)
	// The running activity lost its task; the timer is gone.
	if lost, err := e.b.ExtendLeases(e.ctx, "w1", []backend.TaskRef{act.Ref()}, time.Minute); err != nil || len(lost) != 1 {
		t.Fatalf("ExtendLeases of the cancelled activity = %v, %v; want it lost", lost, err)
	}
	e.clock.Advance(2 * time.Hour)
	tasks := e.claim(backend.ClaimRequest{WorkerID: "w2", Limit: 10})
	kinds := map[string][]backend.TaskKind{}
	for _, tk := range tasks {
		kinds[tk.ExecutionID] = append(kinds[tk.ExecutionID], tk.Kind)
		if tk.Kind == backend.TaskDeadline {
			wantJSON(t, "cancel grace task payload", tk.Payload, backend.CancelGracePayload)
			wantTime(t, "cancel grace task RunAt", tk.RunAt, grace)
		}
	}
	for _, id := range []string{"p", "p/9"} {
		if len(kinds[id]) != 2 {
			t.Fatalf("claimed %s; want a workflow task and a cancel grace task for each of p and p/9", describe(tasks))
		}
	}
	// A second request adds nothing.
	if ok, err := c.RequestCancel(e.ctx, "p", grace.Add(time.Hour)); err != nil || !ok {
		t.Fatalf("second RequestCancel(p) = %v, %v; want true, nil", ok, err)
	}
	e.wantKinds("p", backend.EventStarted, backend.EventActivityScheduled, backend.EventCancelRequested)
}

func testRequestCancelEnded(t *testing.T, e *env) {
	c := e.canceller()
	e.create("x")
	if _, err := e.b.EndExecution(e.ctx, "x", backend.StatusCancelled, nil); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.RequestCancel(e.ctx, "x", Epoch); err != nil || ok {
		t.Fatalf("RequestCancel of an ended execution = %v, %v; want false, nil", ok, err)
	}
	if _, err := c.RequestCancel(e.ctx, "nope", Epoch); err == nil {
		t.Fatal("RequestCancel of an unknown execution: no error")
	} else {
		wantErrIs(t, "RequestCancel(nope)", err, backend.ErrNotFound)
	}
}
