package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/stent-go/stent/backend"
)

// CompleteWorkflowTask commits a workflow task's output atomically and returns the
// execution's new version.
func (b *Backend) CompleteWorkflowTask(ctx context.Context, r backend.WorkflowTaskResult) (int64, error) {
	var newVersion int64
	err := b.write(ctx, fmt.Sprintf("completing workflow task %d of %s", r.Task.ID, r.ExecutionID), func(t *wtx) error {
		return t.completeWorkflow(r, &newVersion, nil)
	})
	if err != nil {
		return 0, err
	}
	return newVersion, nil
}

// createdTask is a task created by completeWorkflow.
type createdTask struct {
	id    int64
	kind  backend.TaskKind
	seq   int
	queue string
	runAt int64 // unix ms
	// activity is an activity task's activity name.
	activity string
}

// completeWorkflow is the transaction of CompleteWorkflowTask. It sets *newVersion
// and, when created is not nil, appends the tasks it created (r.Tasks, in order).
func (t *wtx) completeWorkflow(r backend.WorkflowTaskResult, newVersion *int64, created *[]createdTask) error {
	st := t.st
	var (
		kind, execID, status, parentID, entry, queue string
		rerun, parentSeq, run, parentRun             int
		version                                      int64
	)
	if r.Finish != nil && r.ContinueAsNew != nil {
		return errors.New("a workflow task result cannot both finish and continue as new")
	}
	err := t.queryRow(st.workflowTaskForUpdate, r.Task.ID, r.Task.Fence).Scan(&kind, &execID, &rerun,
		&status, &version, &parentID, &parentSeq, &entry, &queue, &run, &parentRun)
	if errors.Is(err, sql.ErrNoRows) {
		return backend.ErrLeaseLost
	}
	if err != nil {
		return err
	}
	if kind != string(backend.TaskWorkflow) || execID != r.ExecutionID {
		return fmt.Errorf("task %d is a %s task of execution %s, not the workflow task of %s",
			r.Task.ID, kind, execID, r.ExecutionID)
	}
	if status != string(backend.StatusRunning) || version != r.ExpectedVersion {
		return fmt.Errorf("execution %s is %s at version %d, expected running at version %d: %w",
			r.ExecutionID, status, version, r.ExpectedVersion, backend.ErrStaleExecution)
	}
	return t.applyWorkflowResult(r, stepTarget{task: r.Task.ID, rerun: rerun != 0, parentID: parentID, entry: entry,
		queue: queue, parentSeq: parentSeq, run: run, parentRun: parentRun}, newVersion, created)
}

// stepTarget is what applyWorkflowResult needs to know of the execution a step
// advances, and of its workflow task (task 0: there is none, see CompleteActivityAndStep).
type stepTarget struct {
	task                      int64
	rerun                     bool
	parentID, entry, queue    string
	parentSeq, run, parentRun int
}

// applyWorkflowResult writes a checked workflow task result: events, tasks, children,
// logs, signals, timers, then the version bump (and the workflow task's removal or
// rerun), the finish or the restart.
func (t *wtx) applyWorkflowResult(r backend.WorkflowTaskResult, w stepTarget, newVersion *int64, created *[]createdTask) error {
	st := t.st
	queue, run := w.queue, w.run
	for _, ev := range r.Events {
		if err := t.appendEvent(r.ExecutionID, ev); err != nil {
			return err
		}
	}
	for _, nt := range r.Tasks {
		if nt.Kind != backend.TaskActivity && nt.Kind != backend.TaskTimer {
			return fmt.Errorf("cannot create a %q task through CompleteWorkflowTask (only activity and timer tasks)", nt.Kind)
		}
		q := nt.Queue
		if q == "" {
			q = queue
		}
		attempt := nt.Attempt
		if attempt == 0 && nt.Kind == backend.TaskActivity {
			attempt = 1
		}
		runAt := msOr(nt.RunAt, t.now)
		activity := activityName(nt.Kind, nt.Payload)
		res, err := t.exec(st.insertTask, string(nt.Kind), r.ExecutionID, nt.Seq, q, runAt, attempt, jsonArg(nt.Payload),
			nt.Priority, activity)
		if err != nil {
			return fmt.Errorf("creating %s task for seq %d: %w", nt.Kind, nt.Seq, err)
		}
		if created != nil {
			id, err := res.LastInsertId()
			if err != nil {
				return err
			}
			name, _ := activity.(string)
			*created = append(*created, createdTask{id: id, kind: nt.Kind, seq: nt.Seq, queue: q, runAt: runAt, activity: name})
		}
	}
	for _, child := range r.Children {
		if child.ParentID == "" {
			child.ParentID = r.ExecutionID
		}
		if _, err := t.createExecution(child, queue, run); err != nil {
			return err
		}
	}
	for _, line := range r.Logs {
		if _, err := t.exec(st.insertLog, r.ExecutionID, run, t.now, line); err != nil {
			return fmt.Errorf("writing log line: %w", err)
		}
	}
	for _, id := range r.ConsumedSignals {
		if _, err := t.exec(st.consumeSignal, t.now, id, r.ExecutionID); err != nil {
			return fmt.Errorf("consuming signal %d: %w", id, err)
		}
	}
	for _, seq := range r.CancelTimers {
		if _, err := t.exec(st.cancelTimer, r.ExecutionID, seq); err != nil {
			return fmt.Errorf("cancelling the timer at seq %d: %w", seq, err)
		}
	}

	if r.ContinueAsNew != nil {
		return t.continueAsNew(r.ExecutionID, r.ContinueAsNew, newVersion)
	}
	if r.Finish == nil {
		if err := t.queryRow(st.bumpVersion, t.now, r.ExecutionID).Scan(newVersion); err != nil {
			return err
		}
		var err error
		switch {
		case w.task == 0:
		case w.rerun:
			_, err = t.exec(st.rerunTask, t.now, w.task)
			t.requeued = append(t.requeued, w.queue)
		default:
			_, err = t.exec(st.deleteTask, w.task)
		}
		return err
	}
	if err := t.finish(r.ExecutionID, *r.Finish, w.parentID, w.parentSeq, w.parentRun, w.entry, newVersion); err != nil {
		return err
	}
	if r.DeadLetter != nil && r.Finish.Status == backend.StatusFailed {
		return t.insertDeadLetter(r.ExecutionID, *r.DeadLetter, r.Finish.Error)
	}
	return nil
}
