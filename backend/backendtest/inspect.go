package backendtest

import (
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

var inspectTests = []test{
	{"ExecutionTasks", testExecutionTasks},
}

func testExecutionTasks(t *testing.T, e *env) {
	e.create("x")
	if got, err := e.b.ExecutionTasks(e.ctx, "x"); err != nil || len(got) != 1 || got[0].Kind != backend.TaskWorkflow || got[0].LeaseOwner != "" {
		t.Fatalf("ExecutionTasks of a new execution = (%+v, %v), want its pending workflow task", got, err)
	}
	e.scheduleActivities("x", 0, 1, "a", "b")
	act := e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskActivity}, Limit: 1})
	if len(act) != 1 {
		t.Fatalf("claimed %d activity tasks, want 1", len(act))
	}
	got, err := e.b.ExecutionTasks(e.ctx, "x")
	if err != nil {
		t.Fatalf("ExecutionTasks: %v", err)
	}
	if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 2 {
		t.Fatalf("ExecutionTasks = %s, want the two activity tasks at seq 1 and 2", describe(got))
	}
	for _, tk := range got {
		claimed := tk.ID == act[0].ID
		if claimed && (tk.LeaseOwner != "w1" || !tk.LeaseExpiresAt.After(e.clock.Now()) || tk.Attempt != 1) {
			t.Errorf("claimed task %+v: want lease owner w1, a lease in the future, attempt 1", tk)
		}
		if !claimed && tk.LeaseOwner != "" {
			t.Errorf("pending task %+v has lease owner %q, want none", tk, tk.LeaseOwner)
		}
	}
	next := e.clock.Now().Add(time.Hour)
	if err := e.b.RetryActivityTask(e.ctx, act[0].Ref(), next, 2, act[0].Payload, nil); err != nil {
		t.Fatalf("RetryActivityTask: %v", err)
	}
	got, err = e.b.ExecutionTasks(e.ctx, "x")
	if err != nil {
		t.Fatalf("ExecutionTasks: %v", err)
	}
	for _, tk := range got {
		if tk.ID == act[0].ID && (tk.Attempt != 2 || !tk.RunAt.Equal(next) || tk.LeaseOwner != "") {
			t.Errorf("retried task %+v: want attempt 2, pending, run at %v", tk, next)
		}
	}
	e.create("other")
	if got, err := e.b.ExecutionTasks(e.ctx, "x"); err != nil || len(got) != 2 {
		t.Fatalf("ExecutionTasks after another execution was created = (%s, %v), want only x's two tasks", describe(got), err)
	}
	if got, err := e.b.ExecutionTasks(e.ctx, "nobody"); err != nil || len(got) != 0 {
		t.Fatalf("ExecutionTasks of an unknown execution = (%v, %v), want none and no error", got, err)
	}
}
