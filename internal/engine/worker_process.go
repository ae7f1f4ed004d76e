package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stent-go/stent/backend"
)

// runChain processes a claimed task and then, in the same goroutine and slot, each task
// handed off to it (the next step of the same execution, claimed by the commit).
func (w *worker) runChain(serveCtx, workCtx context.Context, t backend.Task) {
	for {
		tctx, cancel := context.WithCancel(workCtx)
		w.track(t, cancel)
		next := w.process(tctx, workCtx, t)
		cancel()
		w.untrack(t.Ref())
		if next == nil {
			return
		}
		if serveCtx.Err() != nil {
			// Stopping: give the handed-off task back for another worker.
			_ = w.e.b.ReleaseTask(context.WithoutCancel(workCtx), next.Ref(), w.e.clock.Now())
			return
		}
		t = *next
	}
}

// handOff returns the backend's HandOff extension, if it has one.
func (w *worker) handOff() (backend.HandOff, bool) {
	h, ok := w.e.b.(backend.HandOff)
	return h, ok && !w.e.cfg.noHandOff
}

// claimsWithCommit tells whether the commit of res has a task to claim for this
// worker: an activity it (or a child's first step it creates, see claimable) schedules
// that is due and that this worker runs, or, when it ends a child, the parent's
// workflow task (backend.ParentHandOff) or what the parent's step schedules.
func (w *worker) claimsWithCommit(ex *backend.Execution, res *backend.WorkflowTaskResult, now time.Time) bool {
	if res.Finish != nil {
		_, parents := w.e.b.(backend.ParentHandOff)
		return parents && ex.ParentID != ""
	}
	tasks := claimable(res)
	return hasDueActivity(tasks, now) && w.routes(tasks, now)
}

// claimOne describes a claim of one task for this worker, used by hand-offs.
func (w *worker) claimOne() backend.ClaimRequest {
	names := w.e.activityNames()
	if w.remote != nil {
		names = nil // no poll waits for an activity a commit would claim
	}
	return backend.ClaimRequest{WorkerID: w.opts.ID, Queues: w.opts.Queues, Limit: 1, Lease: w.opts.LeaseDuration, MaxConcurrent: w.e.activityCaps(),
		RouteActivities: true, Activities: names}
}

func (w *worker) process(ctx, workCtx context.Context, t backend.Task) (next *backend.Task) {
	var err error
	w.e.tel.TaskStarted(t)
	switch t.Kind {
	case backend.TaskWorkflow:
		next, err = w.runWorkflowTask(workCtx, t)
	case backend.TaskActivity:
		next, err = w.runActivityTask(ctx, workCtx, t)
	case backend.TaskTimer:
		err = w.e.b.FireTimer(workCtx, t.Ref())
		if err == nil {
			w.e.taskReady(t.Queue)
		}
	case backend.TaskDeadline:
		err = w.runDeadlineTask(workCtx, t)
	default:
		err = fmt.Errorf("unknown task kind %q", t.Kind)
	}
	if err == nil || errors.Is(err, backend.ErrLeaseLost) || errors.Is(err, backend.ErrStaleExecution) {
		return next
	}
	w.claimUncertain(err) // a commit that claimed the next task may have happened
	w.e.logger.Error("task failed; handing it back", "task_id", t.ID, "kind", t.Kind, "execution_id", t.ExecutionID, "seq", t.Seq, "worker_id", w.opts.ID, "err", err)
	if rerr := w.giveBack(context.WithoutCancel(workCtx), t.Ref(), w.e.clock.Now().Add(time.Second)); rerr == nil {
		w.e.wakeAt(w.e.clock.Now().Add(time.Second))
	}
	return nil
}

// giveBack releases a task this worker could not finish, retrying while the database is
// unreachable: a task left claimed by a live worker would wait out its whole lease.
func (w *worker) giveBack(ctx context.Context, ref backend.TaskRef, at time.Time) error {
	deadline := time.Now().Add(w.opts.LeaseDuration)
	backoff := 50 * time.Millisecond
	for {
		err := w.e.b.ReleaseTask(ctx, ref, at)
		if err == nil || errors.Is(err, backend.ErrLeaseLost) || time.Now().After(deadline) {
			return err
		}
		w.e.logger.Warn("giving a task back", "task_id", ref.ID, "worker_id", w.opts.ID, "err", err)
		time.Sleep(backoff)
		backoff = min(2*backoff, 2*time.Second)
	}
}
