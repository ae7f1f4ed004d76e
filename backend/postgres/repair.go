package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/backend"
)

var _ backend.Repairer = (*Backend)(nil)

// CustomStatus returns the data of the execution's latest set_status side effect.
func (b *Backend) CustomStatus(ctx context.Context, executionID string) (json.RawMessage, error) {
	var data *string
	// The kind and name are literals, so that the partial index events_custom_status
	// serves the query.
	err := b.pool.QueryRow(ctx, `SELECT data FROM events WHERE execution_id = $1 AND kind = '`+string(backend.EventSideEffect)+
		`' AND name = '`+backend.CustomStatusName+`' ORDER BY id DESC LIMIT 1`, executionID).Scan(&data)
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, b.dbError("reading the custom status of "+executionID, err)
	}
	return rawJSON(data), nil
}

// lockExecution reads (and locks) an execution's status, version and queue.
func lockExecution(ctx context.Context, q querier, id string) (status string, version int64, queue string, err error) {
	err = q.QueryRow(ctx, `SELECT status, version, queue FROM executions WHERE id = $1 FOR UPDATE`, id).Scan(&status, &version, &queue)
	if isNoRows(err) {
		return "", 0, "", fmt.Errorf("execution %q: %w", id, backend.ErrNotFound)
	}
	return status, version, queue, err
}

// UpgradeExecution re-pins a running or failed execution to another bundle.
func (b *Backend) UpgradeExecution(ctx context.Context, executionID string, expectedVersion int64, bundle backend.Bundle, sources map[string][]byte, data json.RawMessage) error {
	bjson, err := json.Marshal(bundle)
	if err != nil {
		return fmt.Errorf("encoding bundle: %w", err)
	}
	return b.inTx(ctx, "upgrading "+executionID, func(s *txState) error {
		now := toMS(b.now())
		status, version, _, err := lockExecution(ctx, s.q, executionID)
		if err != nil {
			return err
		}
		if (status != string(backend.StatusRunning) && status != string(backend.StatusFailed)) || version != expectedVersion {
			return fmt.Errorf("execution %s is %s at version %d, expected running or failed at version %d: %w",
				executionID, status, version, expectedVersion, backend.ErrStaleExecution)
		}
		var bt pgx.Batch
		for h, src := range sources {
			bt.Queue(`INSERT INTO scripts (hash, source) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING`, h, src)
		}
		bt.Queue(`UPDATE executions SET bundle = $2, updated_at = $3, version = version + 1 WHERE id = $1`,
			executionID, string(bjson), now)
		bt.Queue(`INSERT INTO events (execution_id, seq, kind, name, data, at) VALUES ($1, 0, $2, '', $3, $4)`,
			executionID, string(backend.EventUpgraded), jsonArg(data), now)
		return s.q.(pgx.Tx).SendBatch(ctx, &bt).Close()
	})
}

// RetryExecution resumes a failed execution, keeping its history.
func (b *Backend) RetryExecution(ctx context.Context, executionID string, seq int, data json.RawMessage, task *backend.NewTask) error {
	return b.inTx(ctx, "retrying "+executionID, func(s *txState) error {
		now := toMS(b.now())
		status, _, queue, err := lockExecution(ctx, s.q, executionID)
		if err != nil {
			return err
		}
		if status != string(backend.StatusFailed) {
			return fmt.Errorf("execution %s is %s, not failed: %w", executionID, status, backend.ErrNotRunning)
		}
		var bt pgx.Batch
		bt.Queue(`UPDATE executions SET status = 'running', result = NULL, error = NULL, completed_at = NULL,
			updated_at = $2, version = version + 1 WHERE id = $1`, executionID, now)
		bt.Queue(`INSERT INTO events (execution_id, seq, kind, name, data, at) VALUES ($1, $2, $3, '', $4, $5)`,
			executionID, seq, string(backend.EventRetried), jsonArg(data), now)
		if seq > 0 {
			bt.Queue(`UPDATE dead_letters SET status = $3, updated_at = $4 WHERE execution_id = $1 AND seq = $2 AND status = $5`,
				executionID, seq, backend.DeadLetterRetried, now, backend.DeadLetterOpen)
		}
		q := queue
		if task == nil {
			bt.Queue(`INSERT INTO tasks (kind, execution_id, seq, queue, run_at, attempt, status, priority)
				SELECT 'workflow', id, 0, queue, $2, 0, 'pending', priority FROM executions WHERE id = $1
				`+sqlEnqueueConflict, executionID, now)
		} else {
			if task.Queue != "" {
				q = task.Queue
			}
			bt.Queue(`INSERT INTO tasks (kind, execution_id, seq, queue, run_at, attempt, payload, status, priority, activity)
				VALUES ('activity', $1, $2, $3, $4, 1, $5, 'pending', $6, $7)`, executionID, task.Seq, q, now,
				jsonArg(task.Payload), int32(task.Priority), activityOf(task.Payload))
		}
		if err := s.q.(pgx.Tx).SendBatch(ctx, &bt).Close(); err != nil {
			return err
		}
		s.taskReady(q)
		return nil
	})
}
