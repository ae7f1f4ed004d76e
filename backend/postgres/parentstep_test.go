package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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

// The children a commit creates with their first steps share its claim: the steps take
// what the steps built before them left of its limit, the commit's own step first, then
// each child followed by its own children. The activities a tree dispatched at once
// ends in are created claimed for the worker that took the steps; those beyond the
// limit go pending.
func TestTreeFirstStepsShareTheClaim(t *testing.T) {
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
	claim := func(limit int) backend.ClaimRequest { return backend.ClaimRequest{WorkerID: "w7", Limit: limit} }
	ids := func(ts []backend.Task) []string {
		var out []string
		for _, tk := range ts {
			if tk.LeaseOwner != "w7" || tk.Kind != backend.TaskActivity {
				t.Fatalf("claimed %+v, want activities leased to w7", tk)
			}
			out = append(out, tk.ExecutionID)
		}
		return out
	}

	// root → mid → leaf, the leaf's first step schedules an activity: claimed.
	leafEv, leaf := child("t/1", 1, activity(1))
	midEv, mid := child("t", 1, backend.WorkflowTaskResult{Events: []backend.NewEvent{leafEv}, Children: []backend.NewExecution{leaf}})
	created, out, err := f.b.CreateExecutionAndStep(f.ctx, backend.NewExecution{ID: "t", Entry: "main"},
		backend.WorkflowTaskResult{ExecutionID: "t", Events: []backend.NewEvent{midEv}, Children: []backend.NewExecution{mid}}, claim(1))
	if err != nil || !created {
		t.Fatalf("creating the tree: created %v, %v", created, err)
	}
	if got := ids(out.Claimed); !slices.Equal(got, []string{"t/1/1"}) {
		t.Fatalf("claimed the activities of %v, want the leaf t/1/1's", got)
	}
	f.claimNone("the tree's one task is claimed by its creation")

	// A root with an activity of its own and two children with one each, limit 2: the
	// root's and the first child's are claimed, the second child's goes pending.
	ev2, kid2 := child("u", 2, activity(1))
	ev3, kid3 := child("u", 3, activity(1))
	own := activity(1)
	own.ExecutionID = "u"
	own.Events = append(own.Events, ev2, ev3)
	own.Children = []backend.NewExecution{kid2, kid3}
	created, out, err = f.b.CreateExecutionAndStep(f.ctx, backend.NewExecution{ID: "u", Entry: "main"}, own, claim(2))
	if err != nil || !created {
		t.Fatalf("creating u: created %v, %v", created, err)
	}
	if got := ids(out.Claimed); !slices.Equal(got, []string{"u", "u/2"}) {
		t.Fatalf("claimed the activities of %v, want u's and u/2's", got)
	}
	if tk := f.claim(backend.TaskActivity, "u/3"); tk.Seq != 1 {
		t.Fatalf("the second child's activity: %+v", tk)
	}
	f.claimNone("u's other activities are claimed")
}
