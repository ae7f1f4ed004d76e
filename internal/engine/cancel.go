package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stent-go/stent/backend"
)

// DefaultCancelGrace is how long a cancelled script may run its compensations before
// the execution is ended anyway.
const DefaultCancelGrace = time.Minute

// CancelOption configures Cancel.
type CancelOption func(*cancelConfig)

type cancelConfig struct{ grace time.Duration }

// CancelGrace sets how long the script may still run after the request (default
// DefaultCancelGrace); past it the execution is terminated.
func CancelGrace(d time.Duration) CancelOption { return func(c *cancelConfig) { c.grace = d } }

// Cancel asks a running execution, and each of its running descendants, to cancel
// (Temporal's model). The script sees the request at its current wait: the steps it was
// waiting for fail with error type "cancelled" (durable() raises it, attempt() and
// gather(return_errors=True) return it), so it can run compensations; steps it starts
// afterwards run normally. A script that ends on the cancellation (does not handle it,
// or re-raises it with r.unwrap()) ends cancelled; one that handles it and returns
// normally completes, as in Temporal. A script still running CancelGrace after the
// request is terminated. Child workflows get the request too; a parent waiting on one
// sees it end. Cancelling an execution that already ended does nothing.
func (e *Engine) Cancel(ctx context.Context, id string, opts ...CancelOption) error {
	if err := validateID(id); err != nil {
		return &InputError{Err: err}
	}
	cfg := cancelConfig{grace: DefaultCancelGrace}
	for _, o := range opts {
		o(&cfg)
	}
	c, ok := e.b.(backend.CancelRequester)
	if !ok {
		return e.terminate(ctx, id, "cancelled")
	}
	// An execution whose script never ran (delayed, or no worker has taken it yet) has
	// nothing to compensate: it ends at once, as Temporal does before the first task.
	if ex, err := e.b.GetExecution(ctx, id); err == nil && !ex.Status.Terminal() && ex.Version == 0 {
		return e.terminate(ctx, id, "cancelled before it started")
	}
	requested, err := c.RequestCancel(ctx, id, e.clock.Now().Add(cfg.grace))
	if err != nil {
		if errors.Is(err, backend.ErrNotFound) {
			return fmt.Errorf("cancelling %s: no such execution", id)
		}
		return fmt.Errorf("cancelling %s: %w", id, err)
	}
	if requested {
		// Running activities of the execution (and its children) in this process stop
		// now; other processes notice at their next lease renewal.
		e.workersMu.Lock()
		for w := range e.workers {
			w.cancelExecution(id)
		}
		e.workersMu.Unlock()
		e.taskReady("")
		e.wakeAt(e.clock.Now().Add(cfg.grace))
	}
	return nil
}

// endAfterCancelGrace terminates an execution still running when the grace of its
// cancellation request has passed.
func (w *worker) endAfterCancelGrace(ctx context.Context, t backend.Task) error {
	e := w.e
	ended, err := e.b.EndExecution(ctx, t.ExecutionID, backend.StatusCancelled, &backend.ErrorInfo{Type: "cancelled",
		Message: "cancelled: the script was still running when the grace period of the cancellation ended"})
	if err != nil && !errors.Is(err, backend.ErrNotFound) {
		return fmt.Errorf("ending cancelled execution %s: %w", t.ExecutionID, err)
	}
	if ended {
		e.tel.ExecutionTreeEnded(ctx, e.b, t.ExecutionID, backend.StatusCancelled)
		e.endedLocally(t.ExecutionID)
		e.taskReady("")
	}
	if err := e.b.DeleteTask(ctx, t.Ref()); err != nil && !errors.Is(err, backend.ErrLeaseLost) {
		return err
	}
	return nil
}
