package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stent-go/stent/backend"
)

// A child's end carrying its parent's step (backend.ParentSteps) commits both: the
// child_completed event lands in the parent's history with the parent's own step, no
// workflow task is left for the parent, and the parent's new activity is claimed. A
// parent that moved on (another version, or an event its step did not see, here a
// cancellation request) fails the whole commit with ErrStaleParent and writes nothing:
// the child is still running and ends the usual way afterwards.
func TestChildEndCarriesParentStep(t *testing.T) {
	f := newFx(t)
	start := func(parent string) (parentVersion int64, child backend.Task) {
		t.Helper()
		f.create(backend.NewExecution{ID: parent, Queue: "q1"})
		wt := f.claim(backend.TaskWorkflow, parent)
		v := f.complete(backend.WorkflowTaskResult{Task: wt.Ref(), ExecutionID: parent,
			Events:   []backend.NewEvent{{Seq: 1, Kind: backend.EventChildScheduled, Name: "kid"}},
			Children: []backend.NewExecution{{ID: parent + "/1", ParentID: parent, ParentSeq: 1, Entry: "kid"}}})
		return v, f.claim(backend.TaskWorkflow, parent+"/1")
	}
	parentStep := func(parent string, version, seen int64) *backend.ParentStep {
		payload, _ := json.Marshal(backend.ActivityPayload{Name: "work", Args: json.RawMessage(`[1]`)})
		return &backend.ParentStep{Step: backend.WorkflowTaskResult{ExecutionID: parent, ExpectedVersion: version, SeenThrough: seen,
			Events: []backend.NewEvent{{Seq: 2, Kind: backend.EventActivityScheduled, Name: "work", Data: json.RawMessage(`{"args":[1]}`)}},
			Tasks:  []backend.NewTask{{Kind: backend.TaskActivity, Seq: 2, Attempt: 1, Payload: payload}}}}
	}
	end := func(ct backend.Task, ps *backend.ParentStep) error {
		_, _, err := f.b.CompleteWorkflowTaskAndClaim(f.ctx, backend.WorkflowTaskResult{Task: ct.Ref(), ExecutionID: ct.ExecutionID,
			Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`"ok"`)}, ParentStep: ps},
			backend.ClaimRequest{WorkerID: "w9", Limit: 1})
		return err
	}

	// Fused: one commit ends the child and takes the parent's step.
	v, ct := start("p")
	ps := parentStep("p", v, 0)
	if err := end(ct, ps); err != nil {
		t.Fatalf("ending p/1 with p's step: %v", err)
	}
	if got := f.get("p/1").Status; got != backend.StatusCompleted {
		t.Fatalf("p/1 is %s, want completed", got)
	}
	f.wantKinds("p", backend.EventStarted, backend.EventChildScheduled, backend.EventChildCompleted, backend.EventActivityScheduled)
	hist, err := f.b.History(f.ctx, "p", 0)
	if err != nil {
		t.Fatal(err)
	}
	cc := hist[2]
	if cc.ID != ps.EventID || cc.Seq != 1 || cc.Name != "kid" || string(cc.Data) != `"ok"` || cc.Error != nil {
		t.Fatalf("child_completed = %+v, want ID %d, seq 1, name kid, data \"ok\"", cc, ps.EventID)
	}
	if p := f.get("p"); ps.Version != v+1 || p.Version != ps.Version {
		t.Fatalf("parent version %d, reported %d, want %d", p.Version, ps.Version, v+1)
	}
	if len(ps.Claimed) != 1 || ps.Claimed[0].ExecutionID != "p" || ps.Claimed[0].Seq != 2 || ps.Claimed[0].LeaseOwner != "w9" {
		t.Fatalf("claimed %+v, want p's activity at seq 2 leased to w9", ps.Claimed)
	}
	f.claimNone("the parent has no workflow task and its activity is claimed")

	// Stale version: nothing is written.
	v, ct = start("s")
	if err := end(ct, parentStep("s", v+1, 0)); !errors.Is(err, backend.ErrStaleParent) {
		t.Fatalf("ending s/1 with a step of s at the wrong version: err = %v, want ErrStaleParent", err)
	}
	if got := f.get("s/1").Status; got != backend.StatusRunning {
		t.Fatalf("s/1 is %s after the failed commit, want running", got)
	}
	f.wantKinds("s", backend.EventStarted, backend.EventChildScheduled)

	// An event the parent's step did not see: a cancellation request of the parent
	// alone (its child keeps its workflow task).
	v, ct = start("c")
	if _, err := f.b.pool.Exec(f.ctx, `INSERT INTO events (execution_id, seq, kind, name, at) VALUES ('c', 0, 'cancel_requested', '', 0)`); err != nil {
		t.Fatal(err)
	}
	if err := end(ct, parentStep("c", v, 0)); !errors.Is(err, backend.ErrStaleParent) {
		t.Fatalf("ending c/1 with a step of c that missed an event: err = %v, want ErrStaleParent", err)
	}
	// The usual way then works, with the same task.
	if err := end(ct, nil); err != nil {
		t.Fatalf("ending c/1 the usual way: %v", err)
	}
	f.wantKinds("c", backend.EventStarted, backend.EventChildScheduled, backend.EventCancelRequested, backend.EventChildCompleted)
}

// A step that creates no task of its own hands its claim down to the first child it
// creates with its first step, and so on down: the activity a tree dispatched at once
// ends in is created claimed for the worker that took the steps. A step with a task of
// its own keeps the claim, and only one step of a commit claims.
func TestTreeFirstStepsClaimTheLeafActivity(t *testing.T) {
	f := newFx(t)
	payload, _ := json.Marshal(backend.ActivityPayload{Name: "work", Args: json.RawMessage(`[1]`)})
	activity := func(seq int) backend.WorkflowTaskResult {
		return backend.WorkflowTaskResult{
			Events: []backend.NewEvent{{Seq: seq, Kind: backend.EventActivityScheduled, Name: "work", Data: json.RawMessage(`{"args":[1]}`)}},
			Tasks:  []backend.NewTask{{Kind: backend.TaskActivity, Seq: seq, Attempt: 1, Payload: payload}}}
	}
	child := func(parent string, seq int, first backend.WorkflowTaskResult) (backend.NewEvent, backend.NewExecution) {
		id := fmt.Sprintf("%s/%d", parent, seq)
		return backend.NewEvent{Seq: seq, Kind: backend.EventChildScheduled, Name: "kid"},
			backend.NewExecution{ID: id, ParentID: parent, ParentSeq: seq, Entry: "kid", FirstStep: &first}
	}
	claim := backend.ClaimRequest{WorkerID: "w7", Limit: 1}

	// root → mid → leaf, the leaf's first step schedules an activity.
	leafEv, leaf := child("t/1", 1, activity(1))
	midStep := backend.WorkflowTaskResult{Events: []backend.NewEvent{leafEv}, Children: []backend.NewExecution{leaf}}
	midEv, mid := child("t", 1, midStep)
	created, out, err := f.b.CreateExecutionAndStep(f.ctx, backend.NewExecution{ID: "t", Entry: "main"},
		backend.WorkflowTaskResult{ExecutionID: "t", Events: []backend.NewEvent{midEv}, Children: []backend.NewExecution{mid}}, claim)
	if err != nil || !created {
		t.Fatalf("creating the tree: created %v, %v", created, err)
	}
	if len(out.Claimed) != 1 || out.Claimed[0].ExecutionID != "t/1/1" || out.Claimed[0].Seq != 1 || out.Claimed[0].LeaseOwner != "w7" ||
		out.Claimed[0].Kind != backend.TaskActivity {
		t.Fatalf("claimed %+v, want the leaf t/1/1's activity leased to w7", out.Claimed)
	}
	f.claimNone("the tree's one task is claimed by its creation")

	// A root with an activity of its own and a child with one: the root's is claimed,
	// the child's goes pending.
	kidEv, kid := child("u", 2, activity(1))
	own := activity(1)
	own.ExecutionID = "u"
	own.Events = append(own.Events, kidEv)
	own.Children = []backend.NewExecution{kid}
	created, out, err = f.b.CreateExecutionAndStep(f.ctx, backend.NewExecution{ID: "u", Entry: "main"}, own, claim)
	if err != nil || !created {
		t.Fatalf("creating u: created %v, %v", created, err)
	}
	if len(out.Claimed) != 1 || out.Claimed[0].ExecutionID != "u" {
		t.Fatalf("claimed %+v, want u's own activity only", out.Claimed)
	}
	if tk := f.claim(backend.TaskActivity, "u/2"); tk.Seq != 1 {
		t.Fatalf("the child's activity: %+v", tk)
	}
}
