package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/backend"
)

// ListDeadLetters lists dead letters, newest first; status "" means any, limit <= 0
// means 100.
func (b *Backend) ListDeadLetters(ctx context.Context, status string, limit int) ([]backend.DeadLetter, error) {
	if limit <= 0 {
		limit = defaultListLimit
	}
	q := `SELECT ` + backend.DeadLetterColumns + ` FROM dead_letters`
	args := []any{limit}
	if status != "" {
		q += ` WHERE status = $2`
		args = append(args, status)
	}
	q += ` ORDER BY id DESC LIMIT $1`
	return queryAll(ctx, b, "listing dead letters", backend.ScanDeadLetters, q, args...)
}

// GetDeadLetter returns a dead letter, or an error wrapping backend.ErrNotFound.
func (b *Backend) GetDeadLetter(ctx context.Context, id int64) (*backend.DeadLetter, error) {
	d, err := backend.ScanDeadLetter(b.pool.QueryRow(ctx, `SELECT `+backend.DeadLetterColumns+` FROM dead_letters WHERE id = $1`, id))
	if isNoRows(err) {
		return nil, fmt.Errorf("dead letter %d: %w", id, backend.ErrNotFound)
	}
	if err != nil {
		return nil, b.dbError(fmt.Sprintf("reading dead letter %d", id), err)
	}
	return d, nil
}

// lockOpenDeadLetter locks a dead letter in a transaction and checks it is open.
func lockOpenDeadLetter(ctx context.Context, q querier, id int64) (*backend.DeadLetter, error) {
	d, err := backend.ScanDeadLetter(q.QueryRow(ctx, `SELECT `+backend.DeadLetterColumns+` FROM dead_letters WHERE id = $1 FOR UPDATE`, id))
	return backend.OpenDeadLetter(id, d, err, isNoRows(err))
}

// ReplayDeadLetter re-runs the failed step of a failed execution: it is running
// again, a dead_letter_replayed event follows its failure events, with a
// new activity task (attempt 1, the dead letter's payload, on the execution's queue),
// and a new version; the dead letter is marked replayed.
func (b *Backend) ReplayDeadLetter(ctx context.Context, id int64) error {
	return b.inTx(ctx, fmt.Sprintf("replaying dead letter %d", id), func(s *txState) error {
		now := toMS(b.now())
		d, err := lockOpenDeadLetter(ctx, s.q, id)
		if err != nil {
			return err
		}
		var status, queue string
		err = s.q.QueryRow(ctx, `SELECT status, queue FROM executions WHERE id = $1 FOR UPDATE`, d.ExecutionID).
			Scan(&status, &queue)
		if isNoRows(err) {
			return fmt.Errorf("execution %q of dead letter %d: %w", d.ExecutionID, id, backend.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if status != string(backend.StatusFailed) {
			return fmt.Errorf("dead letter %d: execution %s is %s, not failed: %w", id, d.ExecutionID, status, backend.ErrNotRunning)
		}
		var bt pgx.Batch
		bt.Queue(`UPDATE executions SET status = 'running', result = NULL, error = NULL, completed_at = NULL,
			updated_at = $2, version = version + 1 WHERE id = $1`, d.ExecutionID, now)
		bt.Queue(`INSERT INTO events (execution_id, seq, kind, name, data, at) VALUES ($1, $2, $3, $4, $5, $6)`,
			d.ExecutionID, d.Seq, string(backend.EventDeadLetterReplayed), d.Activity,
			fmt.Sprintf(`{"dead_letter_id":%d}`, id), now)
		activity := activityOf(d.Payload)
		if activity == nil && d.Activity != "" {
			activity = &d.Activity
		}
		bt.Queue(`INSERT INTO tasks (kind, execution_id, seq, queue, run_at, attempt, payload, status, priority,
				activity)
			VALUES ('activity', $1, $2, $3, $4, 1, $5, 'pending', $6, $7)`, d.ExecutionID, d.Seq, queue, now,
			jsonArg(d.Payload), int32(backend.PayloadPriority(d.Payload)), activity)
		bt.Queue(`UPDATE dead_letters SET status = $2, updated_at = $3 WHERE id = $1`, id, backend.DeadLetterReplayed, now)
		if err := s.q.(pgx.Tx).SendBatch(ctx, &bt).Close(); err != nil {
			return err
		}
		s.taskReady(queue)
		return nil
	})
}

// DiscardDeadLetter marks an open dead letter discarded.
func (b *Backend) DiscardDeadLetter(ctx context.Context, id int64) error {
	return b.inTx(ctx, fmt.Sprintf("discarding dead letter %d", id), func(s *txState) error {
		if _, err := lockOpenDeadLetter(ctx, s.q, id); err != nil {
			return err
		}
		_, err := s.q.Exec(ctx, `UPDATE dead_letters SET status = $2, updated_at = $3 WHERE id = $1`,
			id, backend.DeadLetterDiscarded, toMS(b.now()))
		return err
	})
}
