package engine

import (
	"context"
	"slices"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/interpreter"
)

// childStart is a child execution whose first step this worker took before the
// commit of its parent's step, which creates the child with that step
// (backend.ChildFirstSteps): a tree descends in one commit, with no workflow task, claim
// or read per child.
type childStart struct {
	ex   *backend.Execution
	lr   *liveRun
	step *interpreter.Step
	res  backend.WorkflowTaskResult
	wake []time.Time
	kids []*childStart
}

// maxChildDepth bounds how many generations one commit creates with their first steps.
const maxChildDepth = 4

// startChildren takes the first step of each child res creates that this worker
// serves and attaches it to the child (NewExecution.FirstStep), down to maxChildDepth
// generations. A child whose first step would end it, or whose script is not at hand,
// is created the usual way. The caller hands the result to childrenCommitted after the
// commit, or to childrenDropped when it failed.
func (w *worker) startChildren(ctx context.Context, parent *backend.Execution, res *backend.WorkflowTaskResult, now time.Time, depth int) []*childStart {
	e := w.e
	if len(res.Children) == 0 || depth >= maxChildDepth || e.cfg.noHandOff || e.cfg.virtual != nil {
		return nil
	}
	// A parent that continued as new reuses its children's IDs: keep to the usual path,
	// where the creation of an existing ID is a no-op.
	if _, ok := e.b.(backend.ChildFirstSteps); !ok || parent.Run > 1 {
		return nil
	}
	var out []*childStart
	for i := range res.Children {
		c := &res.Children[i]
		if c.StartAt.After(now) || (len(w.opts.Queues) > 0 && !slices.Contains(w.opts.Queues, c.Queue)) {
			continue
		}
		ex := &backend.Execution{
			ID: c.ID, ParentID: c.ParentID, ParentSeq: c.ParentSeq, Bundle: c.Bundle, Entry: c.Entry, Args: c.Args,
			Queue: c.Queue, Status: backend.StatusRunning, Run: 1, StartAt: c.StartAt, Deadline: c.Deadline,
			CreatedAt: now, UpdatedAt: now,
		}
		if len(c.Sources) > 0 && e.programs.get(bundleKey(c.Bundle)) == nil {
			continue // its script may be stored by this very commit: the child starts the usual way
		}
		lr, err := w.coldRun(ctx, ex)
		if err != nil {
			continue
		}
		span := e.tel.StartWorkflowTask(ctx, backend.Task{Kind: backend.TaskWorkflow, ExecutionID: c.ID, Queue: c.Queue, RunAt: now}, ex, false, w.opts.ID)
		step := lr.run.Advance(nil)
		span.Step(nil, step)
		if step.Done || e.checkStepPayloads(step) != step {
			// Its first step ends it (or fails a payload check): the usual path records
			// that from its first workflow task.
			lr.run.Close()
			span.End(nil)
			continue
		}
		cs := &childStart{ex: ex, lr: lr, step: step}
		cs.res, cs.wake = e.stepResult(backend.TaskRef{}, ex, 0, lr, step, now)
		cs.kids = w.startChildren(ctx, ex, &cs.res, now, depth+1)
		span.End(nil)
		c.FirstStep = &cs.res
		out = append(out, cs)
	}
	return out
}

// childrenCommitted parks the children's runs after the commit that created them
// with their first steps (each is then at version 1). claimed are the tasks that
// commit claimed for this worker (the caller runs them): no other worker need be woken
// for those.
func (w *worker) childrenCommitted(kids []*childStart, claimed []backend.Task) {
	for _, cs := range kids {
		w.committed(cs.ex, cs.lr, cs.step, &cs.res, 1, claimed, cs.wake)
		w.childrenCommitted(cs.kids, claimed)
	}
}

// childrenDropped closes the children's runs when the commit failed.
func childrenDropped(kids []*childStart) {
	for _, cs := range kids {
		cs.lr.run.Close()
		childrenDropped(cs.kids)
	}
}
