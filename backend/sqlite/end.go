package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/stent-go/stent/backend"
)

// sqlRunningDescendants lists the running executions below ?1 (children, their
// children, ...), whatever the status of the executions between them.
const sqlRunningDescendants = `WITH RECURSIVE tree(id) AS (
		SELECT id FROM executions WHERE parent_id = ?1
		UNION
		SELECT e.id FROM executions e JOIN tree ON e.parent_id = tree.id
	)
	SELECT e.id FROM tree JOIN executions e ON e.id = tree.id WHERE e.status = 'running'`

// EndExecution ends a running execution and its running descendants with status
// (cancelled, timed_out or failed) and info, in one transaction. See
// backend.Backend.EndExecution.
func (b *Backend) EndExecution(ctx context.Context, executionID string, status backend.Status, info *backend.ErrorInfo) (bool, error) {
	switch status {
	case backend.StatusCancelled, backend.StatusTimedOut, backend.StatusFailed:
	default:
		return false, fmt.Errorf("sqlite %s: ending %s: status %q (want cancelled, timed_out or failed)", b.name, executionID, status)
	}
	if info == nil {
		info = &backend.ErrorInfo{Message: "execution " + string(status), Type: string(status)}
	}
	var ended bool
	err := b.write(ctx, "ending execution "+executionID, func(t *wtx) error {
		ended = false
		var (
			cur, parentID, entry string
			parentSeq, parentRun int
		)
		err := t.queryRowSQL(`SELECT status, parent_id, parent_seq, parent_run, entry FROM executions WHERE id = ?`,
			executionID).Scan(&cur, &parentID, &parentSeq, &parentRun, &entry)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("execution %q: %w", executionID, backend.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if cur != string(backend.StatusRunning) {
			return nil
		}
		ids, err := t.runningTree(executionID)
		if err != nil {
			return err
		}
		errv, err := errArg(info)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := t.end(id, status, info, errv); err != nil {
				return err
			}
		}
		ended = true
		return t.notifyParent(parentID, parentSeq, parentRun, entry, nil, errv)
	})
	if err != nil {
		return false, err
	}
	return ended, nil
}

// end ends one running execution: cancel_requested (when cancelled) and failed
// events, all its tasks deleted, status, error and completed_at set, version bumped.
func (t *wtx) end(id string, status backend.Status, info *backend.ErrorInfo, errv any) error {
	if status == backend.StatusCancelled {
		if err := t.appendEvent(id, backend.NewEvent{Kind: backend.EventCancelRequested}); err != nil {
			return err
		}
	}
	if err := t.appendEvent(id, backend.NewEvent{Kind: backend.EventFailed, Error: info}); err != nil {
		return err
	}
	if _, err := t.exec(t.st.deleteExecTasks, id); err != nil {
		return fmt.Errorf("deleting tasks of %s: %w", id, err)
	}
	var v int64
	if err := t.queryRow(t.st.finish, string(status), nil, errv, t.now, t.now, id).Scan(&v); err != nil {
		return fmt.Errorf("ending %s: %w", id, err)
	}
	return nil
}

// runningTree is an execution (first) and its running descendants.
func (t *wtx) runningTree(executionID string) ([]string, error) {
	ids := []string{executionID}
	rows, err := t.conn.QueryContext(t.ctx, sqlRunningDescendants, executionID)
	if err != nil {
		return nil, fmt.Errorf("listing descendants: %w", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	return ids, rows.Err()
}
