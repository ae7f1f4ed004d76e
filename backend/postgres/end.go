package postgres

import (
	"context"
	"fmt"

	"github.com/stent-go/stent/backend"
)

// sqlLockTree locks an execution and its running descendants (children, their
// children, ...), deepest first: locks always go from descendant to ancestor, as when
// a finishing child locks its parent. It returns every locked row with its status.
const sqlLockTree = `
WITH RECURSIVE tree(id, depth) AS (
	SELECT $1::text, 0
	UNION ALL
	SELECT e.id, t.depth + 1 FROM executions e JOIN tree t ON e.parent_id = t.id
)
SELECT e.id, e.status FROM executions e JOIN tree t ON e.id = t.id
WHERE t.depth = 0 OR e.status = 'running'
ORDER BY t.depth DESC, e.id
FOR UPDATE OF e`

// EndExecution ends a running execution and its running descendants with status
// (cancelled, timed_out or failed) and info, in one transaction. See
// backend.Backend.EndExecution.
func (b *Backend) EndExecution(ctx context.Context, executionID string, status backend.Status, info *backend.ErrorInfo) (bool, error) {
	op := "ending execution " + executionID
	switch status {
	case backend.StatusCancelled, backend.StatusTimedOut, backend.StatusFailed:
	default:
		return false, fmt.Errorf("%s: status %q (want cancelled, timed_out or failed)", op, status)
	}
	if info == nil {
		info = &backend.ErrorInfo{Message: "execution " + string(status), Type: string(status)}
	}
	errv, err := errArg(info)
	if err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	var ended bool
	err = b.inTx(ctx, op, func(s *txState) error {
		ended = false
		now := toMS(b.now())
		ids, running, err := lockRunningTree(ctx, s, executionID)
		if err != nil || !running {
			return err // not running: ended already, nothing to write
		}
		if status == backend.StatusCancelled {
			if _, err := s.q.Exec(ctx, `INSERT INTO events (execution_id, seq, kind, name, at)
				SELECT id, 0, 'cancel_requested', '', $2 FROM unnest($1::text[]) AS x(id)`, ids, now); err != nil {
				return fmt.Errorf("appending cancel_requested events: %w", err)
			}
		}
		if _, err := s.q.Exec(ctx, `INSERT INTO events (execution_id, seq, kind, name, error, at)
			SELECT id, 0, 'failed', '', $2, $3 FROM unnest($1::text[]) AS x(id)`, ids, errv, now); err != nil {
			return fmt.Errorf("appending failed events: %w", err)
		}
		if _, err := s.q.Exec(ctx, `DELETE FROM tasks WHERE execution_id = ANY($1::text[])`, ids); err != nil {
			return fmt.Errorf("deleting tasks: %w", err)
		}
		if _, err := s.q.Exec(ctx, `UPDATE executions SET status = $2, result = NULL, error = $3,
			completed_at = $4, updated_at = $4, version = version + 1 WHERE id = ANY($1::text[])`,
			ids, string(status), errv, now); err != nil {
			return fmt.Errorf("ending executions: %w", err)
		}
		if err := readParentNotified(s.q.QueryRow(ctx, sqlNotifyParent, executionID, nil, errv, now), s); err != nil {
			return err
		}
		for _, id := range ids {
			s.executionFinished(id)
		}
		ended = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return ended, nil
}

// lockRunningTree locks an execution and its descendants and returns the running ones
// (the execution first); running is false when the execution itself has ended. It
// reads the tree twice: the second pass also locks children created while the first
// one waited for a lock (their parents are locked then, so no more can appear).
func lockRunningTree(ctx context.Context, s *txState, executionID string) (ids []string, running bool, err error) {
	for pass := 0; pass < 2; pass++ {
		ids = ids[:0]
		rows, err := s.q.Query(ctx, sqlLockTree, executionID)
		if err != nil {
			return nil, false, err
		}
		found := false
		running = false
		for rows.Next() {
			var id, st string
			if err := rows.Scan(&id, &st); err != nil {
				rows.Close()
				return nil, false, err
			}
			if id == executionID {
				found, running = true, st == string(backend.StatusRunning)
			}
			if st == string(backend.StatusRunning) {
				ids = append(ids, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, false, err
		}
		if !found {
			return nil, false, fmt.Errorf("execution %q: %w", executionID, backend.ErrNotFound)
		}
		if !running {
			return nil, false, nil
		}
	}
	return ids, true, nil
}
