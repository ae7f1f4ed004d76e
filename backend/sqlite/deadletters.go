package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stent-go/stent/backend"
)

// insertDeadLetter records the activity whose failure failed executionID. fallback is
// the execution's error, used when d.Error is nil.
func (t *wtx) insertDeadLetter(executionID string, d backend.DeadLetter, fallback *backend.ErrorInfo) error {
	if d.ExecutionID != "" {
		executionID = d.ExecutionID
	}
	info := d.Error
	if info == nil {
		info = fallback
	}
	errv, err := errArg(info)
	if err != nil {
		return err
	}
	if _, err := t.exec(t.st.insertDeadLetter, executionID, d.Seq, d.Activity, jsonArg(d.Payload), errv, t.now, t.now); err != nil {
		return fmt.Errorf("recording dead letter of %s seq %d: %w", executionID, d.Seq, err)
	}
	return nil
}

// ListDeadLetters lists dead letters, newest first; status "" means any, limit <= 0
// means 100.
func (b *Backend) ListDeadLetters(ctx context.Context, status string, limit int) ([]backend.DeadLetter, error) {
	if limit <= 0 {
		limit = 100
	}
	q := `SELECT ` + backend.DeadLetterColumns + ` FROM dead_letters`
	args := []any{}
	if status != "" {
		q += ` WHERE status = ?`
		args = append(args, status)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	return readRows(b, ctx, "listing dead letters", func(db queryer, _ *stmts) (*sql.Rows, error) {
		return db.QueryContext(ctx, q, args...)
	}, backend.ScanDeadLetters)
}

// GetDeadLetter returns a dead letter, or an error wrapping backend.ErrNotFound.
func (b *Backend) GetDeadLetter(ctx context.Context, id int64) (*backend.DeadLetter, error) {
	var d *backend.DeadLetter
	err := b.read(ctx, fmt.Sprintf("reading dead letter %d", id), func(_ queryer, st *stmts) error {
		var err error
		d, err = backend.ScanDeadLetter(st.getDeadLetter.QueryRowContext(ctx, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("dead letter %d: %w", id, backend.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// openDeadLetter reads a dead letter inside a write transaction and checks it is open.
func (t *wtx) openDeadLetter(id int64) (*backend.DeadLetter, error) {
	d, err := backend.ScanDeadLetter(t.queryRowSQL(`SELECT `+backend.DeadLetterColumns+` FROM dead_letters WHERE id = ?`, id))
	return backend.OpenDeadLetter(id, d, err, errors.Is(err, sql.ErrNoRows))
}

// ReplayDeadLetter re-runs the failed step of a failed execution: it is running
// again, a dead_letter_replayed event follows its failure events, with a
// new activity task (attempt 1, the dead letter's payload, on the execution's queue),
// and a new version; the dead letter is marked replayed.
func (b *Backend) ReplayDeadLetter(ctx context.Context, id int64) error {
	return b.write(ctx, fmt.Sprintf("replaying dead letter %d", id), func(t *wtx) error {
		d, err := t.openDeadLetter(id)
		if err != nil {
			return err
		}
		var status, queue string
		err = t.queryRowSQL(`SELECT status, queue FROM executions WHERE id = ?`, d.ExecutionID).Scan(&status, &queue)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("execution %q of dead letter %d: %w", d.ExecutionID, id, backend.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if status != string(backend.StatusFailed) {
			return fmt.Errorf("dead letter %d: execution %s is %s, not failed: %w", id, d.ExecutionID, status, backend.ErrNotRunning)
		}
		if _, err := t.execSQL(`UPDATE executions SET status = 'running', result = NULL, error = NULL,
			completed_at = NULL, updated_at = ?, version = version + 1 WHERE id = ?`, t.now, d.ExecutionID); err != nil {
			return fmt.Errorf("reopening %s: %w", d.ExecutionID, err)
		}
		if err := t.appendEvent(d.ExecutionID, backend.NewEvent{Seq: d.Seq, Kind: backend.EventDeadLetterReplayed,
			Name: d.Activity, Data: replayedData(id)}); err != nil {
			return err
		}
		// The replayed attempt keeps the priority the step was scheduled with.
		activity := activityName(backend.TaskActivity, d.Payload)
		if activity == nil && d.Activity != "" {
			activity = d.Activity
		}
		if _, err := t.exec(t.st.insertTask, string(backend.TaskActivity), d.ExecutionID, d.Seq, queue, t.now, 1,
			jsonArg(d.Payload), backend.PayloadPriority(d.Payload), activity); err != nil {
			return fmt.Errorf("creating the activity task of %s seq %d: %w", d.ExecutionID, d.Seq, err)
		}
		_, err = t.execSQL(`UPDATE dead_letters SET status = ?, updated_at = ? WHERE id = ?`, backend.DeadLetterReplayed, t.now, id)
		return err
	})
}

// DiscardDeadLetter marks an open dead letter discarded.
func (b *Backend) DiscardDeadLetter(ctx context.Context, id int64) error {
	return b.write(ctx, fmt.Sprintf("discarding dead letter %d", id), func(t *wtx) error {
		if _, err := t.openDeadLetter(id); err != nil {
			return err
		}
		_, err := t.execSQL(`UPDATE dead_letters SET status = ?, updated_at = ? WHERE id = ?`, backend.DeadLetterDiscarded, t.now, id)
		return err
	})
}

// replayedData is the Data of a dead_letter_replayed event.
func replayedData(id int64) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"dead_letter_id":%d}`, id))
}
