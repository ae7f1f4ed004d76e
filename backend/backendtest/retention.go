package backendtest

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// retentionTests check the optional backend.Retention extension.
var retentionTests = []test{
	{"PruneEndedTrees", testPruneTrees},
}

// endWith claims id's workflow task (at version) and finishes it with status, creating
// children (left running) in the same commit.
func (e *env) endWith(id string, version int64, status backend.Status, children ...string) {
	e.t.Helper()
	wf := e.claimOne(backend.TaskWorkflow, id)
	r := backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: id, ExpectedVersion: version,
		Logs:   []string{"line of " + id},
		Finish: &backend.Finish{Status: status, Result: json.RawMessage(`1`)}}
	for i, c := range children {
		ne := newExec(c)
		ne.ParentID, ne.ParentSeq = id, i+1
		r.Children = append(r.Children, ne)
		r.Events = append(r.Events, backend.NewEvent{Seq: i + 1, Kind: backend.EventChildScheduled, Name: "main"})
	}
	if status != backend.StatusCompleted {
		r.Finish.Error = &backend.ErrorInfo{Message: "x", Type: "script"}
	}
	e.completeWF(r)
}

func testPruneTrees(t *testing.T, e *env) {
	r := required[backend.Retention](e)
	// old: completed with a completed child and a signal; busy: completed, its child
	// still runs; live: running; dl: failed with an open dead letter; resolved: failed,
	// its dead letter discarded; fresh: completed after the cutoff.
	e.create("old")
	if err := e.b.SignalExecution(e.ctx, "old", "s", json.RawMessage(`1`)); err != nil {
		t.Fatal(err)
	}
	e.endWith("old", 0, backend.StatusCompleted, "old/1")
	e.endWith("old/1", 0, backend.StatusCompleted)
	e.failWithDeadLetter("dl")
	e.failWithDeadLetter("resolved")
	e.create("busy")
	e.endWith("busy", 0, backend.StatusCompleted, "busy/1")
	e.create("live")
	for _, d := range e.deadLetters("", 0) {
		if d.ExecutionID == "resolved" {
			if err := e.b.DiscardDeadLetter(e.ctx, d.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.clock.Advance(time.Hour)
	cutoff := e.clock.Now()
	e.clock.Advance(time.Second)
	e.create("fresh", func(n *backend.NewExecution) { n.Queue = "fresh" })
	wf := e.claim(backend.ClaimRequest{Queues: []string{"fresh"}})
	e.completeWF(backend.WorkflowTaskResult{Task: wf[0].Ref(), ExecutionID: "fresh",
		Finish: &backend.Finish{Status: backend.StatusCompleted}})
	all := []string{"old", "old/1", "busy", "busy/1", "live", "dl", "resolved", "fresh"}

	prune := func(dry bool, status backend.Status) backend.PruneResult {
		var total backend.PruneResult
		after := backend.PruneCursor{}
		for range 20 {
			res, err := r.PruneExecutions(e.ctx, backend.PruneBatch{EndedBefore: cutoff, Status: status, Limit: 2, After: after,
				DryRun: dry, Exclusive: true})
			if err != nil {
				t.Fatalf("PruneExecutions: %v", err)
			}
			if res.Skipped {
				t.Fatalf("an exclusive batch was skipped with no other process pruning")
			}
			total.Roots += res.Roots
			total.Executions += res.Executions
			total.Events += res.Events
			total.Logs += res.Logs
			total.Signals += res.Signals
			total.DeadLetters += res.DeadLetters
			total.ScriptHashes = append(total.ScriptHashes, res.ScriptHashes...)
			if res.Candidates < 2 {
				return total
			}
			after = res.Next
		}
		t.Fatal("PruneExecutions never reached the end")
		return total
	}
	// A dry run counts and changes nothing.
	dry := prune(true, "")
	if dry.Roots != 2 || dry.Executions != 3 || dry.Signals != 1 || dry.DeadLetters != 1 || dry.Logs != 2 || dry.Events == 0 {
		t.Fatalf("dry run = %+v, want roots old and resolved (3 executions, 1 signal, 1 resolved dead letter, 2 log lines)", dry)
	}
	for _, id := range all {
		e.get(id)
	}
	// Only failed ones: resolved.
	if res := prune(false, backend.StatusFailed); res.Roots != 1 || res.Executions != 1 {
		t.Fatalf("prune of failed executions = %+v, want only resolved", res)
	}
	res := prune(false, "")
	if res.Roots != 1 || res.Executions != 2 || res.Signals != 1 || res.Events == 0 || res.Logs != 2 {
		t.Fatalf("prune = %+v, want old and old/1", res)
	}
	if len(res.ScriptHashes) != 1 || res.ScriptHashes[0] != mainHash {
		t.Fatalf("ScriptHashes = %v, want [%s]", res.ScriptHashes, mainHash)
	}
	for _, id := range []string{"old", "old/1", "resolved"} {
		if _, err := e.b.GetExecution(e.ctx, id); !errors.Is(err, backend.ErrNotFound) {
			t.Fatalf("GetExecution(%s) after pruning: %v, want ErrNotFound", id, err)
		}
		if h, _ := e.b.History(e.ctx, id, 0); len(h) != 0 {
			t.Fatalf("history of pruned %s: %v", id, kinds(h))
		}
		if l, _ := e.b.Logs(e.ctx, id); len(l) != 0 {
			t.Fatalf("logs of pruned %s: %v", id, l)
		}
	}
	for _, id := range []string{"busy", "busy/1", "live", "dl", "fresh"} {
		e.get(id)
	}
	if dls := e.deadLetters("", 0); len(dls) != 1 || dls[0].ExecutionID != "dl" {
		t.Fatalf("dead letters after pruning: %+v, want dl's open one", dls)
	}
	// The script is still referenced; once nothing does, it goes.
	if n, err := r.PruneScripts(e.ctx, []string{mainHash}); err != nil || n != 0 {
		t.Fatalf("PruneScripts of a referenced script = %d, %v; want 0", n, err)
	}
	if src, err := e.b.GetScript(e.ctx, mainHash); err != nil || len(src) == 0 {
		t.Fatalf("GetScript after PruneScripts: %v", err)
	}
}
