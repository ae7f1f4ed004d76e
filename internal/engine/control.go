package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/stent-go/stent/activities"
	"github.com/stent-go/stent/backend"
)

// Terminate ends a running execution as cancelled at once, together with its running
// children, without letting its script run again (see Cancel for the cancellation a
// script can handle): pending steps never start, running activities see their context
// cancelled (at once in this process, within a heartbeat interval in others), and a
// parent waiting on it sees it fail. Terminating an execution that already ended does
// nothing.
func (e *Engine) Terminate(ctx context.Context, id string) error {
	return e.terminate(ctx, id, "terminated")
}

func (e *Engine) terminate(ctx context.Context, id, message string) error {
	if err := validateID(id); err != nil {
		return &InputError{Err: err}
	}
	ended, err := e.b.EndExecution(ctx, id, backend.StatusCancelled, &backend.ErrorInfo{Type: "cancelled", Message: message})
	if err != nil {
		if errors.Is(err, backend.ErrNotFound) {
			return fmt.Errorf("terminating %s: no such execution", id)
		}
		return fmt.Errorf("terminating %s: %w", id, err)
	}
	if ended {
		e.tel.ExecutionTreeEnded(ctx, e.b, id, backend.StatusCancelled)
		e.endedLocally(id)
		e.taskReady("") // a parent may have a result to see
	}
	return nil
}

// Signal sends a named signal with a JSON-encodable payload to a running execution.
// Signals sent before the script waits for them are buffered in order.
func (e *Engine) Signal(ctx context.Context, id, name string, payload any) error {
	raw, err := activities.MarshalJSON(payload)
	if err != nil {
		return &InputError{Err: fmt.Errorf("signal %q: payload is not JSON-encodable: %w", name, err)}
	}
	return e.SignalJSON(ctx, id, name, raw)
}

// SignalJSON is Signal with the payload given as JSON.
func (e *Engine) SignalJSON(ctx context.Context, id, name string, payload json.RawMessage) error {
	if err := validateID(id); err != nil {
		return &InputError{Err: err}
	}
	if name == "" {
		return &InputError{Err: errors.New("signal name must not be empty")}
	}
	if len(payload) == 0 {
		payload = json.RawMessage("null")
	} else if !json.Valid(payload) {
		return &InputError{Err: fmt.Errorf("signal %q: payload is not valid JSON: %s", name, shortJSON(payload))}
	}
	if err := e.checkPayload(fmt.Sprintf("signal %q: the payload", name), payload); err != nil {
		return &InputError{Err: err}
	}
	if err := e.b.SignalExecution(ctx, id, name, payload); err != nil {
		switch {
		case errors.Is(err, backend.ErrNotFound):
			return fmt.Errorf("signalling %s: no such execution", id)
		case errors.Is(err, backend.ErrNotRunning):
			return fmt.Errorf("signalling %s: the execution already ended", id)
		}
		return fmt.Errorf("signalling %s: %w", id, err)
	}
	e.taskReady("")
	return nil
}

func shortJSON(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

// endedLocally reacts in this process to the end of an execution and its descendants
// (whose IDs extend the parent's with "/seq"): parked runs are dropped, running tasks
// cancelled, waiters woken.
func (e *Engine) endedLocally(id string) {
	e.cache.dropTree(id)
	e.workersMu.Lock()
	for w := range e.workers {
		w.cancelExecution(id)
	}
	e.workersMu.Unlock()
	e.executionFinished(id)
}

func isSelfOrDescendant(candidate, id string) bool {
	return candidate == id || strings.HasPrefix(candidate, id+"/")
}

// cancelExecution cancels this worker's running tasks of id and its descendants.
func (w *worker) cancelExecution(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range w.inflight {
		if isSelfOrDescendant(f.executionID, id) {
			f.cancel()
		}
	}
}

// DeadLetters lists dead letters (status "open", "replayed", "discarded" or "" for all).
func (e *Engine) DeadLetters(ctx context.Context, status string, limit int) ([]backend.DeadLetter, error) {
	return e.b.ListDeadLetters(ctx, status, limit)
}

// ReplayDeadLetter runs a dead-lettered step again and resumes its execution, which
// had failed because of it. Fix the step's cause first.
func (e *Engine) ReplayDeadLetter(ctx context.Context, id int64) error {
	dl, err := e.b.GetDeadLetter(ctx, id)
	if err != nil {
		if errors.Is(err, backend.ErrNotFound) {
			return &InputError{Err: fmt.Errorf("no dead letter %d (list them with `stent dlq list`)", id)}
		}
		return err
	}
	if dl.Seq == 0 {
		return &InputError{Err: fmt.Errorf("dead letter %d records a workflow step that killed its workers, not an activity: it cannot be replayed (%s)", id, dl.Error.Error())}
	}
	if err := e.b.ReplayDeadLetter(ctx, id); err != nil {
		return fmt.Errorf("replaying dead letter %d (execution %s, step %d): %w", id, dl.ExecutionID, dl.Seq, err)
	}
	e.cache.drop(dl.ExecutionID)
	e.taskReady("")
	return nil
}

// ClearCache forgets cached activity results of one activity, or of all when name is "".
func (e *Engine) ClearCache(ctx context.Context, name string) (int, error) {
	return e.b.ClearCache(ctx, name)
}
