package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/stent-go/stent/backend"
)

// fusedWait bounds how long an activity's completion waits for its execution's run.
// The completions of a gather come in a burst and take the run one after the other,
// each for a commit; one that gives up takes the long way (its own commit, then a
// workflow task that replays), which costs the database several times more and, on
// PostgreSQL, queues on the execution's row lock behind the others anyway. 100 ms
// lets ten or so commits go first.
const fusedWait = 100 * time.Millisecond

// completeActivityFused is the hot path of a sequential workflow. When this worker
// holds the execution's parked script and the script waits for this activity and
// nothing else, the outcome is fed to the script here (no history read), and the
// activity's completion and the step the script then takes are committed as one
// transaction (no workflow task, no second commit). done is false when the fused path
// does not apply and nothing was written: the caller completes the activity the usual
// way.
func (w *worker) completeActivityFused(ctx context.Context, t backend.Task, r backend.ActivityResult) (next *backend.Task, done bool, err error) {
	e := w.e
	fs, ok := e.b.(backend.FusedStep)
	if !ok || e.cfg.noHandOff {
		return nil, false, nil
	}
	// Another task of this process may have the run out (the completion of another
	// activity the script waits for, in a gather): where gathers are fused, wait for it
	// a little, rather than record this outcome apart and have a workflow task read it
	// back.
	_, gathers := e.b.(backend.FusedGathers)
	wait := time.Duration(0)
	if gathers {
		wait = fusedWait
	}
	lr := e.cache.takeWait(t.ExecutionID, wait)
	if lr == nil {
		return nil, false, nil
	}
	defer e.cache.release(lr, lr.out)
	seq := r.Seq
	if seq == 0 {
		seq = t.Seq
	}
	// A script waiting for this activity alone can receive no other event meanwhile.
	// One waiting for several (gather) can: the commit then checks that no outcome it
	// has not seen was recorded since it last read its history.
	only := lr.run.AwaitsOnly(seq)
	if !only && (!gathers || !lr.run.AwaitsActivity(seq)) {
		e.cache.put(lr)
		return nil, false, nil
	}
	// The event exactly as history will hold it, so the live run and a replay agree.
	ev := backend.Event{Seq: seq, Kind: backend.EventActivityCompleted, Name: r.Name, Data: r.Result}
	if r.Error != nil {
		ev.Kind, ev.Data, ev.Error = backend.EventActivityFailed, nil, r.Error
	} else if len(ev.Data) == 0 {
		ev.Data = []byte("null")
	}
	// The step is a workflow task in all but name: it gets that span, under the
	// activity task that carries it.
	span := e.tel.StartWorkflowTask(ctx, t, lr.ex, false, w.opts.ID)
	defer func() { span.End(err) }()
	step := lr.run.Advance([]backend.Event{ev})
	span.Step([]backend.Event{ev}, step)
	if checked := e.checkStepPayloads(step); checked != step {
		// Too large a value: the usual path records the failure from a replay.
		lr.run.Close()
		return nil, false, nil
	}
	now := e.clock.Now()
	res, wakeTimes := e.stepResult(backend.TaskRef{}, lr.ex, lr.version, lr, step, now)
	if !only {
		res.CheckSeen, res.SeenThrough = true, lr.lastEventID
	}
	kids := w.startChildren(ctx, lr.ex, &res, now, 0)
	pf := w.fuseParent(ctx, lr.ex, &res, now, 0)
	claim, extra := w.claimFor(&res, lr.ex.Queue, now)
	out, err := fs.CompleteActivityAndStep(e.cache.markCommit(ctx, lr), r, res, claim)
	if pf != nil && errors.Is(err, backend.ErrStaleParent) {
		// The parent moved on meanwhile: end the execution the usual way.
		releaseSlots(extra)
		w.parentsDropped(pf, nil)
		pf, res.ParentStep = nil, nil
		claim, extra = w.claimFor(&res, lr.ex.Queue, now)
		out, err = fs.CompleteActivityAndStep(e.cache.markCommit(ctx, lr), r, res, claim)
	}
	if err != nil {
		releaseSlots(extra)
		// The run took a step that was not committed: it cannot be used again.
		lr.run.Close()
		childrenDropped(kids)
		w.parentsDropped(pf, err)
		if errors.Is(err, backend.ErrStaleExecution) {
			// Another worker advanced the execution, or it ended: complete the activity
			// the usual way; its workflow task replays from history.
			return nil, false, nil
		}
		return nil, true, fmt.Errorf("completing activity task %d with the next step of %s: %w", t.ID, t.ExecutionID, err)
	}
	lr.lastEventID = out.EventID
	next = w.committed(lr.ex, lr, step, &res, out.Version, out.Claimed, wakeTimes)
	w.childrenCommitted(kids, out.Claimed)
	if pn := w.parentsCommitted(pf); next == nil {
		next = pn
	}
	spread(append(slices.Clip(out.Claimed), pf.claimed()...), extra)
	return next, true, nil
}
