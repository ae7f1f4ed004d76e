package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/stent-go/stent/backend"
)

var _ backend.FusedStep = (*Backend)(nil)

// sqlExecutionForStep reads what a fused step checks and needs of its execution.
const sqlExecutionForStep = `SELECT status, version, parent_id, parent_seq, entry, queue, run, parent_run
	FROM executions WHERE id = ?`

// sqlUnseenEvents tells whether execution ?1 has an event above ?2 of a kind a script
// does not write itself (see backend.WorkflowTaskResult.CheckSeen).
const sqlUnseenEvents = `SELECT EXISTS (SELECT 1 FROM events WHERE execution_id = ?1 AND id > ?2
	AND kind NOT IN ('started', 'activity_scheduled', 'child_scheduled', 'timer_scheduled', 'signal_wait',
		'signal_received', 'side_effect'))`

// executionForStepStmt returns the statement of sqlExecutionForStep, preparing it on
// first use. The caller holds the writer connection.
func (s *stmts) executionForStepStmt(ctx context.Context, p preparer) (*sql.Stmt, error) {
	if s.executionForStep == nil {
		st, err := p.PrepareContext(ctx, sqlExecutionForStep)
		if err != nil {
			return nil, err
		}
		s.executionForStep = st
		s.all = append(s.all, st)
	}
	return s.executionForStep, nil
}

// CompleteActivityAndStep records an activity's outcome and commits the workflow step
// its script took with it, in one transaction, with no workflow task (see
// backend.FusedStep).
func (b *Backend) CompleteActivityAndStep(ctx context.Context, r backend.ActivityResult, step backend.WorkflowTaskResult, claim backend.ClaimRequest) (backend.StepCommit, error) {
	var out backend.StepCommit
	if step.Finish != nil && step.ContinueAsNew != nil {
		return out, errors.New("a workflow step cannot both finish and continue as new")
	}
	what := fmt.Sprintf("completing activity task %d with the step of %s", r.Task.ID, step.ExecutionID)
	if nt, ok := backend.SequentialStep(step, claim, b.clock.Now().UnixMilli()); ok {
		err := b.write(ctx, what, func(t *wtx) error {
			out = backend.StepCommit{}
			return t.fastStep(r, completionEvent(r, r.Seq), step, nt, t.claimFor(claim), &out)
		})
		if !errors.Is(err, errFastMiss) {
			if err != nil {
				return backend.StepCommit{}, err
			}
			return out, nil
		}
	}
	err := b.write(ctx, what, func(t *wtx) error {
		out = backend.StepCommit{}
		var (
			status, parentID, entry, queue string
			version                        int64
			parentSeq, run, parentRun      int
		)
		sel, err := t.st.executionForStepStmt(t.ctx, t.conn)
		if err != nil {
			return err
		}
		err = t.queryRow(sel, step.ExecutionID).Scan(&status, &version, &parentID, &parentSeq,
			&entry, &queue, &run, &parentRun)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("execution %s: %w", step.ExecutionID, backend.ErrNotFound)
		}
		if err != nil {
			return err
		}
		kind, execID, seq, err := t.fencedDelete(r.Task)
		if err != nil {
			return err
		}
		if kind != string(backend.TaskActivity) || execID != step.ExecutionID {
			return fmt.Errorf("task %d is a %s task of execution %s, not an activity task of %s", r.Task.ID, kind, execID, step.ExecutionID)
		}
		if status != string(backend.StatusRunning) || version != step.ExpectedVersion {
			return fmt.Errorf("execution %s is %s at version %d, expected running at version %d: %w",
				step.ExecutionID, status, version, step.ExpectedVersion, backend.ErrStaleExecution)
		}
		if r.Seq != 0 {
			seq = r.Seq
		}
		if step.CheckSeen {
			var unseen bool
			if err := t.queryRowSQL(sqlUnseenEvents, step.ExecutionID, step.SeenThrough).Scan(&unseen); err != nil {
				return err
			}
			if unseen {
				return fmt.Errorf("execution %s has events the step did not see: %w", step.ExecutionID, backend.ErrStaleExecution)
			}
		}
		ev := completionEvent(r, seq)
		errv, err := t.cacheCompletion(r, ev)
		if err != nil {
			return err
		}
		res, err := t.exec(t.st.insertEventIfRunning, step.ExecutionID, ev.Seq, string(ev.Kind), ev.Name, jsonArg(ev.Data), errv, t.now, r.CacheHit)
		if err != nil {
			return fmt.Errorf("appending %s event: %w", ev.Kind, err)
		}
		if out.EventID, err = res.LastInsertId(); err != nil {
			return err
		}
		var created []createdTask
		target := stepTarget{parentID: parentID, entry: entry, queue: queue, parentSeq: parentSeq, run: run, parentRun: parentRun}
		if err := t.applyWorkflowResult(step, target, &out.Version, &created); err != nil {
			return err
		}
		c := t.claimFor(claim)
		if step.Finish != nil || step.ContinueAsNew != nil || !c.wants(backend.TaskActivity) {
			return nil
		}
		out.Claimed, err = t.claimCreated(c, created)
		return err
	})
	if err != nil {
		return backend.StepCommit{}, err
	}
	return out, nil
}

// completionEvent is the event that records an activity's outcome at seq.
func completionEvent(r backend.ActivityResult, seq int) backend.NewEvent {
	ev := backend.NewEvent{Seq: seq, Kind: backend.EventActivityCompleted, Name: r.Name, Data: r.Result, Error: r.Error}
	if r.Error != nil {
		ev.Kind, ev.Data = backend.EventActivityFailed, nil
	} else if len(ev.Data) == 0 {
		ev.Data = []byte("null")
	}
	return ev
}

// cacheCompletion stores a successful activity result with Cache set in the result
// cache, and returns the completion event's error as stored.
func (t *wtx) cacheCompletion(r backend.ActivityResult, ev backend.NewEvent) (errv any, err error) {
	if r.Cache != nil && r.Error == nil {
		if err := t.putCache(*r.Cache, r.Name, string(ev.Data)); err != nil {
			return nil, err
		}
	}
	return errArg(ev.Error)
}
