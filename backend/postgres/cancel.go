package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/stent-go/stent/backend"
)

var _ backend.CancelRequester = (*Backend)(nil)

// RequestCancel delivers a cancellation request to a running execution and its running
// descendants. See backend.CancelRequester.
func (b *Backend) RequestCancel(ctx context.Context, executionID string, graceUntil time.Time) (bool, error) {
	op := "requesting the cancellation of " + executionID
	var requested bool
	err := b.inTx(ctx, op, func(s *txState) error {
		requested = false
		now := toMS(b.now())
		ids, running, err := lockRunningTree(ctx, s, executionID)
		if err != nil || !running {
			return err
		}
		// Only the executions not asked before: their grace runs from the first request.
		rows, err := s.q.Query(ctx, `SELECT id FROM unnest($1::text[]) AS x(id) WHERE NOT EXISTS (
			SELECT 1 FROM events e WHERE e.execution_id = x.id AND e.kind = 'cancel_requested')`, ids)
		if err != nil {
			return err
		}
		var ask []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ask = append(ask, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		requested = true
		if len(ask) == 0 {
			return nil
		}
		if _, err := s.q.Exec(ctx, `INSERT INTO events (execution_id, seq, kind, name, at)
			SELECT id, 0, 'cancel_requested', '', $2 FROM unnest($1::text[]) AS x(id)`, ask, now); err != nil {
			return fmt.Errorf("appending cancel_requested events: %w", err)
		}
		if _, err := s.q.Exec(ctx, `DELETE FROM tasks WHERE execution_id = ANY($1::text[]) AND kind IN ('activity', 'timer')`, ask); err != nil {
			return fmt.Errorf("deleting pending steps: %w", err)
		}
		rows, err = s.q.Query(ctx, `INSERT INTO tasks (kind, execution_id, seq, queue, run_at, attempt, status, priority)
			SELECT 'workflow', id, 0, queue, $2, 0, 'pending', priority FROM executions WHERE id = ANY($1::text[])
			`+sqlEnqueueConflict+`
			RETURNING queue`, ask, now)
		if err != nil {
			return fmt.Errorf("enqueueing workflow tasks: %w", err)
		}
		for rows.Next() {
			var q string
			if err := rows.Scan(&q); err != nil {
				rows.Close()
				return err
			}
			s.taskReady(q)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := s.q.Exec(ctx, `INSERT INTO tasks (kind, execution_id, seq, queue, run_at, attempt, payload, status, priority)
			SELECT 'deadline', id, 0, queue, $2, 0, $3, 'pending', 0 FROM executions WHERE id = ANY($1::text[])`,
			ask, toMS(graceUntil), string(backend.CancelGracePayload)); err != nil {
			return fmt.Errorf("creating cancel grace tasks: %w", err)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return requested, nil
}
