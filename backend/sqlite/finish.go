package sqlite

import (
	"encoding/json"
	"fmt"

	"github.com/stent-go/stent/backend"
)

// finish ends an execution: status, result and event, removal of its tasks, and the
// parent's child_completed event and workflow task.
func (t *wtx) finish(execID string, f backend.Finish, parentID string, parentSeq, parentRun int, entry string, newVersion *int64) error {
	st := t.st
	if f.Status == "" || !f.Status.Terminal() {
		return fmt.Errorf("finishing %s: status %q is not terminal", execID, f.Status)
	}
	var result json.RawMessage
	errInfo := f.Error
	ev := backend.NewEvent{Kind: backend.EventFailed}
	if f.Status == backend.StatusCompleted {
		result = f.Result
		if len(result) == 0 {
			result = json.RawMessage("null")
		}
		errInfo = nil
		ev = backend.NewEvent{Kind: backend.EventCompleted, Data: result}
	} else {
		if errInfo == nil {
			errInfo = &backend.ErrorInfo{Message: "execution " + string(f.Status), Type: string(f.Status)}
		}
		ev.Error = errInfo
	}
	errv, err := errArg(errInfo)
	if err != nil {
		return err
	}
	if err := t.queryRow(st.finish, string(f.Status), jsonArg(result), errv, t.now, t.now, execID).Scan(newVersion); err != nil {
		return fmt.Errorf("finishing %s: %w", execID, err)
	}
	if err := t.appendEvent(execID, ev); err != nil {
		return err
	}
	if _, err := t.exec(st.deleteExecTasks, execID); err != nil {
		return fmt.Errorf("deleting tasks of %s: %w", execID, err)
	}
	return t.notifyParent(parentID, parentSeq, parentRun, entry, jsonArg(result), errv)
}

// notifyParent appends a child's child_completed event to its parent and enqueues the
// parent's workflow task, unless there is no parent, it ended, or it continued as new
// since it started the child (parentRun).
func (t *wtx) notifyParent(parentID string, parentSeq, parentRun int, entry string, result, errv any) error {
	if parentID == "" {
		return nil
	}
	res, err := t.exec(t.st.insertParentEvent, parentID, parentSeq, string(backend.EventChildCompleted), entry,
		result, errv, t.now, parentRun)
	if err != nil {
		return fmt.Errorf("appending child_completed to parent %s: %w", parentID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return nil // the parent ended already (or is in a later run)
	}
	return t.enqueueWorkflow(parentID)
}

// continueAsNew restarts the execution under the same ID: a fresh history (one
// started event with args) and task set (but its deadline task), Run incremented, a
// workflow task runnable now. Logs and pending signals are kept.
func (t *wtx) continueAsNew(execID string, args json.RawMessage, newVersion *int64) error {
	st := t.st
	if len(args) == 0 {
		args = json.RawMessage("[]")
	}
	// The fresh history's started event is appended before the old history is
	// deleted: event ids are rowids (largest + 1), so appending first keeps this
	// execution's ids growing for whoever follows its history.
	started, err := t.appendEventID(execID, backend.NewEvent{Kind: backend.EventStarted, Data: args})
	if err != nil {
		return err
	}
	if _, err := t.exec(st.deleteExecEvents, execID, started); err != nil {
		return fmt.Errorf("deleting the history of %s: %w", execID, err)
	}
	if _, err := t.exec(st.deleteExecTasksButDead, execID); err != nil {
		return fmt.Errorf("deleting the tasks of %s: %w", execID, err)
	}
	if err := t.queryRow(st.continueAsNew, string(args), t.now, execID).Scan(newVersion); err != nil {
		return fmt.Errorf("continuing %s as new: %w", execID, err)
	}
	// The new workflow task has the execution's queue and priority.
	if _, err := t.exec(st.insertWorkflowTask, execID, t.now); err != nil {
		return fmt.Errorf("creating workflow task of %s: %w", execID, err)
	}
	return nil
}
