package backendtest

import (
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

var timerTests = []test{
	{"NotClaimableBeforeRunAt", testTimerRunAt},
	{"FireTimerAppendsEventAndEnqueuesWorkflow", testFireTimer},
	{"FireTimerAfterFinishDoesNothing", testFireTimerFinished},
}

func testTimerRunAt(t *testing.T, e *env) {
	e.create("x")
	e.scheduleTimer("x", 0, 1, Epoch.Add(time.Hour))
	e.claimNone("right after the timer was scheduled")
	e.clock.Advance(59 * time.Minute)
	e.claimNone("a minute before the timer is due")
	e.clock.Advance(time.Minute)
	tk := e.claimOne(backend.TaskTimer, "x")
	if tk.Seq != 1 {
		t.Fatalf("timer task Seq = %d, want 1", tk.Seq)
	}
	wantTime(t, "timer task RunAt", tk.RunAt, Epoch.Add(time.Hour))
}

func testFireTimer(t *testing.T, e *env) {
	e.create("x")
	v := e.scheduleTimer("x", 0, 1, Epoch.Add(time.Hour))
	e.clock.Advance(time.Hour + time.Second)
	tk := e.claimOne(backend.TaskTimer, "x")
	if err := e.b.FireTimer(e.ctx, tk.Ref()); err != nil {
		t.Fatalf("FireTimer: %v", err)
	}
	h := e.wantKinds("x", backend.EventStarted, backend.EventTimerScheduled, backend.EventTimerFired)
	ev := h[2]
	if ev.Seq != 1 || ev.Error != nil {
		t.Fatalf("timer_fired: seq %d error %v, want seq 1 and no error", ev.Seq, ev.Error)
	}
	if len(ev.Data) != 0 && string(ev.Data) != "null" {
		t.Fatalf("timer_fired Data = %s, want null or empty", ev.Data)
	}
	wantTime(t, "timer_fired At", ev.At, Epoch.Add(time.Hour+time.Second))
	wantErrIs(t, "FireTimer twice", e.b.FireTimer(e.ctx, tk.Ref()), backend.ErrLeaseLost)
	wf := e.claimOne(backend.TaskWorkflow, "x")
	e.claimNone("the timer task is gone")
	if x := e.get("x"); x.Version != v {
		t.Fatalf("version after a timer fired = %d, want unchanged %d", x.Version, v)
	}
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: v})
}

func testFireTimerFinished(t *testing.T, e *env) {
	// Two timers; the execution finishes after the first fires, while the second is
	// claimed. Firing the second must not add to the finished history.
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	v := e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: 0,
		Events: []backend.NewEvent{
			{Seq: 1, Kind: backend.EventTimerScheduled, Name: "sleep"},
			{Seq: 2, Kind: backend.EventTimerScheduled, Name: "sleep"},
		},
		Tasks: []backend.NewTask{{Kind: backend.TaskTimer, Seq: 1, RunAt: Epoch}, {Kind: backend.TaskTimer, Seq: 2, RunAt: Epoch}},
	})
	timers := e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskTimer}})
	if len(timers) != 2 {
		t.Fatalf("claimed %s, want two timers", describe(timers))
	}
	if err := e.b.FireTimer(e.ctx, timers[0].Ref()); err != nil {
		t.Fatalf("FireTimer: %v", err)
	}
	wf = e.claimOne(backend.TaskWorkflow, "x")
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: v,
		Finish: &backend.Finish{Status: backend.StatusCompleted}})
	if err := e.b.FireTimer(e.ctx, timers[1].Ref()); err != nil {
		wantErrIs(t, "FireTimer after the execution finished", err, backend.ErrLeaseLost)
	}
	e.wantKinds("x", backend.EventStarted, backend.EventTimerScheduled, backend.EventTimerScheduled,
		backend.EventTimerFired, backend.EventCompleted)
	e.claimNone("after the execution finished")
}
