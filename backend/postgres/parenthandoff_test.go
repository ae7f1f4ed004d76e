package postgres

import (
	"encoding/json"
	"testing"

	"github.com/stent-go/stent/backend"
)

// A child's finishing commit with a claim claims its parent's workflow task for the
// claiming worker (backend.ParentHandOff), unless the parent's queue is not served or
// its workflow task is held: then it is enqueued (or flagged) as usual.
func TestFinishingChildClaimsParentWorkflowTask(t *testing.T) {
	f := newFx(t)
	f.create(backend.NewExecution{ID: "p", Queue: "q1"})
	wt := f.claim(backend.TaskWorkflow, "p")
	f.complete(backend.WorkflowTaskResult{Task: wt.Ref(), ExecutionID: "p",
		Events: []backend.NewEvent{{Seq: 1, Kind: backend.EventChildScheduled, Name: "main"}},
		Children: []backend.NewExecution{{ID: "p/1", ParentID: "p", ParentSeq: 1, Entry: "main"},
			{ID: "p/2", ParentID: "p", ParentSeq: 2, Entry: "main"}}})
	c1 := f.claim(backend.TaskWorkflow, "p/1")
	c2 := f.claim(backend.TaskWorkflow, "p/2")

	finish := func(ct backend.Task, claim backend.ClaimRequest) []backend.Task {
		t.Helper()
		child := ct.ExecutionID
		_, claimed, err := f.b.CompleteWorkflowTaskAndClaim(f.ctx, backend.WorkflowTaskResult{Task: ct.Ref(), ExecutionID: child,
			Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`7`)}}, claim)
		if err != nil {
			t.Fatalf("finishing %s: %v", child, err)
		}
		return claimed
	}

	// Not served: queue q2 only. The parent's task is enqueued, not claimed.
	if got := finish(c1, backend.ClaimRequest{WorkerID: "w2", Queues: []string{"q2"}, Limit: 1}); len(got) != 0 {
		t.Fatalf("claimed %+v for a worker of queue q2, want nothing (the parent is on q1)", got)
	}
	pt := f.claim(backend.TaskWorkflow, "p")
	if pt.LeaseOwner != "w" {
		t.Fatalf("parent's workflow task leased to %q, want the claim's w", pt.LeaseOwner)
	}
	// Held by a worker: the second child's commit flags it to run again, claims nothing.
	if got := finish(c2, backend.ClaimRequest{WorkerID: "w2", Limit: 1}); len(got) != 0 {
		t.Fatalf("claimed %+v while the parent's workflow task is held, want nothing", got)
	}
	f.wantKinds("p", backend.EventStarted, backend.EventChildScheduled, backend.EventChildCompleted, backend.EventChildCompleted)

	// A fresh parent on a served queue: the child's commit claims its workflow task.
	f.create(backend.NewExecution{ID: "r", Queue: "q1"})
	rt := f.claim(backend.TaskWorkflow, "r")
	f.complete(backend.WorkflowTaskResult{Task: rt.Ref(), ExecutionID: "r",
		Events:   []backend.NewEvent{{Seq: 1, Kind: backend.EventChildScheduled, Name: "main"}},
		Children: []backend.NewExecution{{ID: "r/1", ParentID: "r", ParentSeq: 1, Entry: "main"}}})
	got := finish(f.claim(backend.TaskWorkflow, "r/1"), backend.ClaimRequest{WorkerID: "w3", Queues: []string{"q1"}, Limit: 1})
	if len(got) != 1 || got[0].Kind != backend.TaskWorkflow || got[0].ExecutionID != "r" || got[0].LeaseOwner != "w3" || got[0].Queue != "q1" {
		t.Fatalf("claimed %+v, want the parent r's workflow task leased to w3 on q1", got)
	}
	f.claimNone("the parent's workflow task is claimed by the child's commit")
	f.wantKinds("r", backend.EventStarted, backend.EventChildScheduled, backend.EventChildCompleted)
	// The claim is a real one: the parent's step commits with it.
	f.complete(backend.WorkflowTaskResult{Task: got[0].Ref(), ExecutionID: "r", ExpectedVersion: 1,
		Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`1`)}})
}
