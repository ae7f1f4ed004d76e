package stent

import (
	"context"
	"encoding/json"

	"github.com/stent-go/stent/backend"
)

// Dispatch pins the script (and every file it loads), checks that it compiles
// and has the entry function, and creates an execution that a worker will run.
// It returns the execution ID. Problems with the script or the arguments are
// *InputError and create nothing.
func (e *Engine) Dispatch(ctx context.Context, script string, args []any, opts ...DispatchOption) (string, error) {
	return e.e.Dispatch(ctx, script, args, opts...)
}

// DispatchJSON is Dispatch with the arguments given as a JSON array.
func (e *Engine) DispatchJSON(ctx context.Context, script string, args json.RawMessage, opts ...DispatchOption) (string, error) {
	return e.e.DispatchJSON(ctx, script, args, opts...)
}

// Run dispatches the script and waits for its result.
func (e *Engine) Run(ctx context.Context, script string, args []any, opts ...DispatchOption) (*Result, error) {
	return e.e.Run(ctx, script, args, opts...)
}

// WaitFor blocks until the execution ends and returns its result. When it
// did not complete, the error is the result's *ExecutionError (the result is
// returned too).
func (e *Engine) WaitFor(ctx context.Context, id string) (*Result, error) {
	return e.e.WaitFor(ctx, id)
}

// Get returns an execution.
func (e *Engine) Get(ctx context.Context, id string) (*backend.Execution, error) {
	return e.e.Get(ctx, id)
}

// History returns an execution's events.
func (e *Engine) History(ctx context.Context, id string) ([]backend.Event, error) {
	return e.e.History(ctx, id)
}

// List lists executions, newest first.
func (e *Engine) List(ctx context.Context, f backend.ListFilter) ([]backend.Execution, error) {
	return e.e.List(ctx, f)
}

// CustomStatus returns the value the execution's script last recorded with
// set_status(value), or nil when it recorded none.
func (e *Engine) CustomStatus(ctx context.Context, id string) (json.RawMessage, error) {
	return e.e.CustomStatus(ctx, id)
}

// Tags returns the tags of an execution: those given at dispatch (WithTags) and
// those its script set with set_tags (empty when it has none).
func (e *Engine) Tags(ctx context.Context, id string) (map[string]string, error) {
	return e.e.Tags(ctx, id)
}

// Waits says what a running execution waits for, one entry per pending step
// (in step order), or its start time when it is scheduled. An execution
// that ended waits for nothing. It reads the execution's history, tasks and
// children; the result is a snapshot (a step may finish while it is read).
func (e *Engine) Waits(ctx context.Context, ex *backend.Execution) ([]Wait, error) {
	return e.e.Waits(ctx, ex)
}

// Describe reads what `stent status` shows of ex beside its row (see Description),
// reading its history once.
func (e *Engine) Describe(ctx context.Context, ex *backend.Execution) (*Description, error) {
	return e.e.Describe(ctx, ex)
}

// WaitingFor describes what keeps an execution's pending tasks from being
// claimed: an activity no live worker runs, or a queue no live worker serves,
// one line each (for example `waiting for a worker that runs "charge" (none
// alive)`). Nothing when every pending task has a live worker able to take it.
func (e *Engine) WaitingFor(ctx context.Context, executionID string) ([]string, error) {
	return e.e.WaitingFor(ctx, executionID)
}

// Cancel asks a running execution, and each of its running descendants,
// to cancel (Temporal's model). The script sees the request at its current
// wait: the steps it was waiting for fail with error type "cancelled"
// (durable() raises it, attempt() and gather(return_errors=True) return it),
// so it can run compensations; steps it starts afterwards run normally.
// A script that ends on the cancellation (does not handle it, or re-raises it
// with r.unwrap()) ends cancelled; one that handles it and returns normally
// completes, as in Temporal. A script still running CancelGrace after the
// request is terminated. Child workflows get the request too; a parent waiting
// on one sees it end. Cancelling an execution that already ended does nothing.
func (e *Engine) Cancel(ctx context.Context, id string, opts ...CancelOption) error {
	return e.e.Cancel(ctx, id, opts...)
}

// Terminate ends a running execution as cancelled at once, together with
// its running children, without letting its script run again (see Cancel
// for the cancellation a script can handle): pending steps never start,
// running activities see their context cancelled (at once in this process,
// within a heartbeat interval in others), and a parent waiting on it sees it
// fail. Terminating an execution that already ended does nothing.
func (e *Engine) Terminate(ctx context.Context, id string) error {
	return e.e.Terminate(ctx, id)
}

// Signal sends a named signal with a JSON-encodable payload to a running
// execution. Signals sent before the script waits for them are buffered in
// order.
func (e *Engine) Signal(ctx context.Context, id, name string, payload any) error {
	return e.e.Signal(ctx, id, name, payload)
}

// SignalJSON is Signal with the payload given as JSON.
func (e *Engine) SignalJSON(ctx context.Context, id, name string, payload json.RawMessage) error {
	return e.e.SignalJSON(ctx, id, name, payload)
}

// Retry resumes a failed execution from its failure, keeping its history (a
// retried event is appended; nothing is deleted): the activity step whose
// failure failed it runs again (a child workflow step: the child is retried
// the same way), or, when the script itself failed, the script goes on from
// there, which is what an upgrade to a fixed script is for.
func (e *Engine) Retry(ctx context.Context, id string) error {
	return e.e.Retry(ctx, id)
}

// CheckRunnable reports, as an *InputError naming them, the activities that
// serving execution id in this process needs first and that neither this
// process nor a live worker runs: for a failed execution the activity its
// retry runs again, for a running one those of its pending steps. Call it
// (after registering activities) before Retry and Serve, so that a program
// serving one execution fails at once, having changed nothing, instead of
// waiting for a worker that does not exist.
func (e *Engine) CheckRunnable(ctx context.Context, id string) error {
	return e.e.CheckRunnable(ctx, id)
}
