package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/stent-go/stent/backend"
)

// CompleteActivityTask records an activity's final outcome, deletes its task and
// enqueues the execution's workflow task, atomically. A successful result with Cache
// set is stored in the result cache in the same transaction, even when the execution
// ended meanwhile (the activity did run and succeed).
func (b *Backend) CompleteActivityTask(ctx context.Context, r backend.ActivityResult) error {
	return b.write(ctx, fmt.Sprintf("completing activity task %d", r.Task.ID), func(t *wtx) error {
		_, _, err := t.completeActivity(r)
		return err
	})
}

// completeActivity is the transaction of CompleteActivityTask. When it enqueued the
// execution's workflow task, wfID is that task and pending tells that it is pending
// and due (it is not when its holder only got the rerun flag).
func (t *wtx) completeActivity(r backend.ActivityResult) (wfID int64, pending bool, err error) {
	_, execID, seq, err := t.fencedDelete(r.Task)
	if err != nil {
		return 0, false, err
	}
	if r.ExecutionID != "" && r.ExecutionID != execID {
		return 0, false, fmt.Errorf("task %d belongs to execution %s, not %s", r.Task.ID, execID, r.ExecutionID)
	}
	if r.Seq != 0 {
		seq = r.Seq
	}
	kind := backend.EventActivityCompleted
	var data any
	if r.Error != nil {
		kind = backend.EventActivityFailed
	} else {
		data = jsonArg(r.Result)
		if data == nil {
			data = "null"
		}
	}
	errv, err := errArg(r.Error)
	if err != nil {
		return 0, false, err
	}
	if r.Cache != nil && r.Error == nil {
		if err := t.putCache(*r.Cache, r.Name, data); err != nil {
			return 0, false, err
		}
	}
	res, err := t.exec(t.st.insertEventIfRunning, execID, seq, string(kind), r.Name, data, errv, t.now, r.CacheHit)
	if err != nil {
		return 0, false, fmt.Errorf("appending %s event: %w", kind, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, false, err
	} else if n == 0 {
		return 0, false, nil // the execution ended meanwhile: the task is just dropped
	}
	return t.enqueueWorkflowTask(execID)
}

// FireTimer appends timer_fired (signal_timed_out for the timeout of a signal wait)
// for the timer task, deletes it and enqueues the execution's workflow task, atomically.
func (b *Backend) FireTimer(ctx context.Context, ref backend.TaskRef) error {
	return b.write(ctx, fmt.Sprintf("firing timer task %d", ref.ID), func(t *wtx) error {
		kind, execID, seq, err := t.fencedDelete(ref)
		if err != nil {
			return err
		}
		if kind != string(backend.TaskTimer) {
			return fmt.Errorf("task %d is a %s task, not a timer", ref.ID, kind)
		}
		// timer_fired carries the name of the timer_scheduled event of the same seq; the
		// timeout of a signal wait is signal_timed_out, with the signal's name.
		scheduled, name, fired := "", "sleep", backend.EventTimerFired
		err = t.queryRow(t.st.timerName, execID, seq).Scan(&scheduled, &name)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if scheduled == string(backend.EventSignalWait) {
			fired = backend.EventSignalTimedOut
		}
		res, err := t.exec(t.st.insertEventIfRunning, execID, seq, string(fired), name, nil, nil, t.now, false)
		if err != nil {
			return fmt.Errorf("appending %s event: %w", fired, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return nil
		}
		return t.enqueueWorkflow(execID)
	})
}
