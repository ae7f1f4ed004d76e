package stent

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

// reserveSlot takes one of the worker's free slots for an adopted task; release gives
// it back when the task did not come.
func (w *worker) reserveSlot(queue string) (run func(t backend.Task, ex *backend.Execution), release func(), ok bool) {
	if len(w.opts.Queues) > 0 && !slices.Contains(w.opts.Queues, queue) {
		return nil, nil, false
	}
	a := &w.adopt
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.open || a.serve.Err() != nil {
		return nil, nil, false
	}
	select {
	case a.sem <- struct{}{}:
	default:
		return nil, nil, false
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
	run = func(t backend.Task, ex *backend.Execution) {
		go func() {
			defer free()
			_, cancel := context.WithCancel(a.work)
			w.track(t, cancel)
			next, err := w.runFirstTask(a.work, t, ex)
			cancel()
			w.untrack(t.ID)
			if err != nil {
				next = w.afterError(a.work, t, err)
			}
			if next != nil {
				w.runChain(a.serve, a.work, *next)
			}
		}()
	}
	return run, free, true
}

// runFirstTask runs the first workflow task of an execution just dispatched here: the
// run starts from the execution as dispatched and its history (the started event
// only), without reading either back.
func (w *worker) runFirstTask(ctx context.Context, t backend.Task, ex *backend.Execution) (_ *backend.Task, err error) {
	span := w.e.tel.startWorkflowTask(ctx, t, ex, false, w.opts.ID)
	defer func() { span.end(err) }()
	lr, err := w.coldRun(ctx, ex)
	if err != nil {
		var se *startError
		if errors.As(err, &se) {
			return w.commit(ctx, t, ex, 0, nil, &interpreter.Step{Done: true, Err: &backend.ErrorInfo{Type: "script", Message: se.Error()}})
		}
		return nil, err
	}
	step := lr.run.Advance(nil)
	span.step(nil, step)
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
		w       *worker
		run     func(backend.Task, *backend.Execution)
		release func()
	)
	for cand := range e.workers {
		if run, release, ok = cand.reserveSlot(ne.Queue); ok {
			w = cand
			break
		}
	}
	e.workersMu.Unlock()
	if w == nil {
		return false, false, nil
	}
	created, t, err := dc.CreateExecutionAndClaim(ctx, ne, w.claimOne())
	if err != nil || t == nil {
		release()
		if err == nil && created {
			e.taskReady(ne.Queue)
		}
		return err == nil, created, err
	}
	run(*t, &backend.Execution{
		ID: ne.ID, Bundle: ne.Bundle, Entry: ne.Entry, Args: ne.Args, Queue: t.Queue, Status: backend.StatusRunning,
		Run: 1, StartAt: ne.StartAt, Deadline: ne.Deadline, CreatedAt: ne.StartAt, UpdatedAt: ne.StartAt,
	})
	return true, true, nil
}
