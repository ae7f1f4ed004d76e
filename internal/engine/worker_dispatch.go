package engine

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/interpreter"
)

// adopter lets a dispatch in this process hand a new execution's first workflow task
// to a serving worker: the task runs in one of the worker's slots, from the execution
// as dispatched (no claim, no read back).
type adopter struct {
	mu    sync.Mutex
	open  bool
	serve context.Context // the Serve context: stop claiming when done
	work  context.Context // the tasks' context
	sem   chan struct{}
	freed chan struct{}
	wg    *sync.WaitGroup
}

// startAdopting opens w to adopted tasks, sharing Serve's slots.
func (w *worker) startAdopting(serveCtx, workCtx context.Context, sem, slotFreed chan struct{}, wg *sync.WaitGroup) {
	a := &w.adopt
	a.mu.Lock()
	a.open, a.serve, a.work, a.sem, a.freed, a.wg = true, serveCtx, workCtx, sem, slotFreed, wg
	a.mu.Unlock()
}

// stopAdopting closes w to adopted tasks; Serve calls it before it waits for its tasks.
func (w *worker) stopAdopting() {
	a := &w.adopt
	a.mu.Lock()
	a.open = false
	a.mu.Unlock()
}

// slot is one of a worker's slots, reserved for a task of an execution dispatched in
// this process.
type slot struct {
	w       *worker
	a       *adopter
	release func() // gives the slot back unused
}

// reserveSlot takes one of the worker's free slots for an adopted task.
func (w *worker) reserveSlot(queue string) (*slot, bool) {
	if len(w.opts.Queues) > 0 && !slices.Contains(w.opts.Queues, queue) {
		return nil, false
	}
	a := &w.adopt
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.open || a.serve.Err() != nil {
		return nil, false
	}
	select {
	case a.sem <- struct{}{}:
	default:
		return nil, false
	}
	a.wg.Add(1)
	free := func() {
		<-a.sem
		select {
		case a.freed <- struct{}{}:
		default:
		}
		a.wg.Done()
	}
	return &slot{w: w, a: a, release: free}, true
}

// first runs, in the slot, the execution's first workflow task t (claimed at
// dispatch), then whatever it hands off.
func (s *slot) first(t backend.Task, ex *backend.Execution) {
	w, a := s.w, s.a
	go func() {
		defer s.release()
		_, cancel := context.WithCancel(a.work)
		w.track(t, cancel)
		next, err := w.runFirstTask(a.work, t, ex)
		cancel()
		w.untrack(t.Ref())
		if err != nil {
			next = w.afterError(a.work, t, err)
		}
		if next != nil {
			w.runChain(a.serve, a.work, *next)
		}
	}()
}

// chain runs, in the slot, the task t (claimed with the execution's first step) and
// whatever it hands off.
func (s *slot) chain(t backend.Task) {
	go func() {
		defer s.release()
		s.w.runChain(s.a.serve, s.a.work, t)
	}()
}

// runFirstTask runs the first workflow task of an execution just dispatched here: the
// run starts from the execution as dispatched and its history (the started event
// only), without reading either back.
func (w *worker) runFirstTask(ctx context.Context, t backend.Task, ex *backend.Execution) (_ *backend.Task, err error) {
	span := w.e.tel.StartWorkflowTask(ctx, t, ex, false, w.opts.ID)
	defer func() { span.End(err) }()
	lr, err := w.coldRun(ctx, ex)
	if err != nil {
		var se *startError
		if errors.As(err, &se) {
			return w.commit(ctx, t, ex, 0, nil, &interpreter.Step{Done: true, Err: &backend.ErrorInfo{Type: "script", Message: se.Error()}})
		}
		return nil, err
	}
	step := lr.run.Advance(nil)
	span.Step(nil, step)
	return w.commit(ctx, t, ex, 0, lr, step)
}

// afterError handles a task's error as process does: a lost lease or a stale execution
// drops the task; anything else hands it back for a retry.
func (w *worker) afterError(ctx context.Context, t backend.Task, err error) *backend.Task {
	if errors.Is(err, backend.ErrLeaseLost) || errors.Is(err, backend.ErrStaleExecution) {
		return nil
	}
	w.e.logger.Error("task failed; handing it back", "task", t.ID, "kind", t.Kind, "execution", t.ExecutionID, "err", err)
	if rerr := w.giveBack(context.WithoutCancel(ctx), t.Ref(), w.e.clock.Now().Add(time.Second)); rerr == nil {
		w.e.wakeAt(w.e.clock.Now().Add(time.Second))
	}
	return nil
}

// dispatchHere creates the execution and, when a worker of this process serves its
// queue with a free slot, claims its first workflow task for that worker in the same
// transaction and starts it there. handled is false when it did not apply (nothing
// was written): the caller creates the execution the usual way.
func (e *Engine) dispatchHere(ctx context.Context, ne backend.NewExecution) (handled, created bool, err error) {
	dc, ok := e.b.(backend.DispatchClaim)
	// Not in virtual time: the clock jumps when the worker looks idle, and a task run
	// outside its claim loop would not keep it from jumping.
	if !ok || e.cfg.noHandOff || e.cfg.virtual != nil || ne.StartAt.After(e.clock.Now()) {
		return false, false, nil
	}
	e.workersMu.Lock()
	var (
		w  *worker
		sl *slot
	)
	for cand := range e.workers {
		if sl, ok = cand.reserveSlot(ne.Queue); ok {
			w = cand
			break
		}
	}
	e.workersMu.Unlock()
	if w == nil {
		return false, false, nil
	}
	if ds, ok := e.b.(backend.DispatchStep); ok {
		if handled, created, err = w.dispatchWithStep(ctx, ds, ne, sl); handled {
			return handled, created, err
		}
	}
	created, t, err := dc.CreateExecutionAndClaim(ctx, ne, w.claimOne())
	w.claimUncertain(err)
	if err != nil || t == nil {
		sl.release()
		if err == nil && created {
			e.taskReady(ne.Queue)
		}
		return err == nil, created, err
	}
	sl.first(*t, dispatched(ne, t.Queue))
	return true, true, nil
}

// dispatched is the execution ne as its creation stores it.
func dispatched(ne backend.NewExecution, queue string) *backend.Execution {
	return &backend.Execution{
		ID: ne.ID, ParentID: ne.ParentID, ParentSeq: ne.ParentSeq, Bundle: ne.Bundle, Entry: ne.Entry, Args: ne.Args, Queue: queue, Status: backend.StatusRunning,
		Run: 1, StartAt: ne.StartAt, Deadline: ne.Deadline, CreatedAt: ne.StartAt, UpdatedAt: ne.StartAt,
	}
}

// dispatchWithStep runs the new execution's first step here, before anything is
// written, and creates the execution with that step in one commit; the activity it
// claims runs in the reserved slot. handled is false when the script cannot start
// (nothing was written): the caller dispatches the usual way, whose first workflow
// task records why.
func (w *worker) dispatchWithStep(ctx context.Context, ds backend.DispatchStep, ne backend.NewExecution, sl *slot) (handled, created bool, err error) {
	e := w.e
	queue := ne.Queue
	if queue == "" {
		queue = backend.DefaultQueue
	}
	ex := dispatched(ne, queue)
	lr, err := w.coldRun(ctx, ex)
	if err != nil {
		return false, false, nil
	}
	span := e.tel.StartWorkflowTask(ctx, backend.Task{Kind: backend.TaskWorkflow, ExecutionID: ne.ID, Queue: queue, RunAt: ne.StartAt}, ex, false, w.opts.ID)
	defer func() { span.End(err) }()
	step := lr.run.Advance(nil)
	span.Step(nil, step)
	if checked := e.checkStepPayloads(step); checked != step {
		lr.run.Close()
		lr, step = nil, checked
	}
	now := e.clock.Now()
	res, wakeTimes := e.stepResult(backend.TaskRef{}, ex, 0, lr, step, now)
	kids := w.startChildren(ctx, ex, &res, now, 0)
	claim, extra := w.claimFor(&res, queue, now)
	created, out, err := ds.CreateExecutionAndStep(ctx, ne, res, claim)
	w.claimUncertain(err)
	if err != nil || !created {
		releaseSlots(extra)
		if lr != nil {
			lr.run.Close()
		}
		childrenDropped(kids)
		sl.release()
		return true, created, err
	}
	next := w.committed(ex, lr, step, &res, out.Version, out.Claimed, wakeTimes)
	w.childrenCommitted(kids, out.Claimed)
	spread(out.Claimed, extra)
	if next != nil {
		sl.chain(*next)
	} else {
		sl.release()
	}
	return true, true, nil
}
