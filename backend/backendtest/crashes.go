package backendtest

import (
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// crashTests check what ReclaimTasks records of a task whose worker died (poison-pill
// detection): crashes of an execution's current step, and activity attempts.
var crashTests = []test{
	{"ReclaimedWorkflowTaskCountsACrashOfTheStep", testWorkflowCrashes},
	{"ReclaimedActivityTaskCountsAnAttempt", testActivityCrashAttempt},
}

func testWorkflowCrashes(t *testing.T, e *env) {
	e.create("x")
	if got := e.get("x").Crashes; got != 0 {
		t.Fatalf("a new execution has %d crashes, want 0", got)
	}
	for crash := 1; crash <= 2; crash++ {
		e.claimOne(backend.TaskWorkflow, "x")
		e.clock.Advance(lease + time.Millisecond)
		if n, err := e.b.ReclaimTasks(e.ctx, 0); err != nil || n != 1 {
			t.Fatalf("ReclaimTasks after the lease: (%d, %v), want (1, nil)", n, err)
		}
		if got := e.get("x").Crashes; got != crash {
			t.Fatalf("after %d reclaims the step has %d crashes", crash, got)
		}
	}
	// A committed step starts the count again.
	e.scheduleActivities("x", 0, 1, "a")
	if got := e.get("x").Crashes; got != 0 {
		t.Fatalf("after a committed step: %d crashes, want 0", got)
	}
}

func testActivityCrashAttempt(t *testing.T, e *env) {
	e.create("x")
	e.scheduleActivities("x", 0, 1, "a")
	tk := e.claimOne(backend.TaskActivity, "x")
	if tk.Attempt != 1 {
		t.Fatalf("first claim: attempt %d, want 1", tk.Attempt)
	}
	e.clock.Advance(lease + time.Millisecond)
	if n, err := e.b.ReclaimTasks(e.ctx, 0); err != nil || n != 1 {
		t.Fatalf("ReclaimTasks after the lease: (%d, %v), want (1, nil)", n, err)
	}
	if tk = e.claimOne(backend.TaskActivity, "x"); tk.Attempt != 2 {
		t.Fatalf("claim after the reclaim: attempt %d, want 2 (the crash counts as an attempt)", tk.Attempt)
	}
	if got := e.get("x").Crashes; got != 0 {
		t.Fatalf("an activity crash counted %d crashes of the workflow step", got)
	}
}
