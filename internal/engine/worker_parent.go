package engine

import (
	"context"
	"encoding/json"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/telemetry"
	"github.com/stent-go/stent/interpreter"
)

// parentFusion is the step a parent's parked script took with the outcome of its child,
// committed with the child's end (backend.ParentSteps): no child_completed event
// appended apart, no workflow task for the parent, no history read back. up is the
// grandparent's, when the parent's step ends the parent too.
type parentFusion struct {
	ex   *backend.Execution
	lr   *liveRun
	step *interpreter.Step
	ps   *backend.ParentStep
	wake []time.Time
	kids []*childStart
	span *telemetry.WorkflowTaskSpan
	up   *parentFusion
}

// fuseParent gives res, a step that ends the child execution child, its parent's next
// step (res.ParentStep) when the parent's script is parked here, waits for this child
// alone, and the child completed (a failed or cancelled child takes the usual way).
// The caller commits res, then hands the fusion to parentsCommitted, or to
// parentsDropped when the commit failed. nil: nothing to fuse.
func (w *worker) fuseParent(ctx context.Context, child *backend.Execution, res *backend.WorkflowTaskResult, now time.Time, depth int) *parentFusion {
	e := w.e
	f := res.Finish
	if f == nil || f.Status != backend.StatusCompleted || res.NoParent || child.ParentID == "" ||
		depth >= maxChildDepth || e.cfg.noHandOff || e.cfg.virtual != nil {
		return nil
	}
	if _, ok := e.b.(backend.ParentSteps); !ok {
		return nil
	}
	lr := e.cache.take(child.ParentID)
	if lr == nil {
		return nil
	}
	if !lr.run.AwaitsOnlyChild(child.ParentSeq) {
		e.cache.put(lr)
		return nil
	}
	// The event exactly as the parent's history will hold it (stent_begin_parent_step
	// writes the same), so that the live run and a replay agree.
	data := f.Result
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	ev := backend.Event{Seq: child.ParentSeq, Kind: backend.EventChildCompleted, Name: child.Entry, Data: data}
	span := e.tel.StartWorkflowTask(ctx, backend.Task{Kind: backend.TaskWorkflow, ExecutionID: lr.id, Queue: lr.ex.Queue, RunAt: now},
		lr.ex, false, w.opts.ID)
	step := lr.run.Advance([]backend.Event{ev})
	span.Step([]backend.Event{ev}, step)
	if e.checkStepPayloads(step) != step {
		// Too large a value: the usual path records the failure from a replay.
		lr.run.Close()
		e.cache.release(lr, lr.out)
		span.End(nil)
		return nil
	}
	pres, wake := e.stepResult(backend.TaskRef{}, lr.ex, lr.version, lr, step, now)
	pres.SeenThrough = lr.lastEventID
	pf := &parentFusion{ex: lr.ex, lr: lr, step: step, wake: wake, span: span}
	pf.kids = w.startChildren(ctx, lr.ex, &pres, now, 0)
	pf.up = w.fuseParent(ctx, lr.ex, &pres, now, depth+1)
	pf.ps = &backend.ParentStep{Step: pres}
	res.ParentStep = pf.ps
	return pf
}

// parentsCommitted does for each fused parent's step what follows its commit, and
// returns the task one of them claimed for this worker, if any.
func (w *worker) parentsCommitted(pf *parentFusion) *backend.Task {
	var next *backend.Task
	for ; pf != nil; pf = pf.up {
		pf.lr.lastEventID = pf.ps.EventID
		if n := w.committed(pf.ex, pf.lr, pf.step, &pf.ps.Step, pf.ps.Version, pf.ps.Claimed, pf.wake); next == nil {
			next = n
		}
		w.childrenCommitted(pf.kids, pf.ps.Claimed)
		pf.span.End(nil)
	}
	return next
}

// claimed lists the tasks the fused parents' steps claimed, in the order
// parentsCommitted hands them out.
func (pf *parentFusion) claimed() []backend.Task {
	var out []backend.Task
	for ; pf != nil; pf = pf.up {
		out = append(out, pf.ps.Claimed...)
	}
	return out
}

// parentsDropped lets the fused parents' runs go when the commit failed: they took a
// step that was not committed, and cannot be used again.
func (w *worker) parentsDropped(pf *parentFusion, err error) {
	for ; pf != nil; pf = pf.up {
		pf.lr.run.Close()
		w.e.cache.release(pf.lr, pf.lr.out)
		childrenDropped(pf.kids)
		pf.span.End(err)
	}
}
