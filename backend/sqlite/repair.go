package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stent-go/stent/backend"
)

var _ backend.Repairer = (*Backend)(nil)

// CustomStatus returns the data of the execution's latest set_status side effect.
func (b *Backend) CustomStatus(ctx context.Context, executionID string) (json.RawMessage, error) {
	var out json.RawMessage
	err := b.read(ctx, "reading the custom status of "+executionID, func(_ queryer, st *stmts) error {
		var data []byte
		switch err := st.customStatus.QueryRowContext(ctx, executionID).Scan(&data); {
		case errors.Is(err, sql.ErrNoRows):
			return nil
		case err != nil:
			return err
		}
		out = rawJSON(data)
		return nil
	})
	return out, err
}

// lockedExecution reads an execution's status, version and queue inside a write
// transaction.
func (t *wtx) lockedExecution(id string) (status string, version int64, queue string, err error) {
	err = t.queryRowSQL(`SELECT status, version, queue FROM executions WHERE id = ?`, id).Scan(&status, &version, &queue)
	if errors.Is(err, sql.ErrNoRows) {
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
	return b.write(ctx, "upgrading "+executionID, func(t *wtx) error {
		status, version, _, err := t.lockedExecution(executionID)
		if err != nil {
			return err
		}
		if (status != string(backend.StatusRunning) && status != string(backend.StatusFailed)) || version != expectedVersion {
			return fmt.Errorf("execution %s is %s at version %d, expected running or failed at version %d: %w",
				executionID, status, version, expectedVersion, backend.ErrStaleExecution)
		}
		for h, src := range sources {
			if _, err := t.exec(t.st.insertScript, h, src); err != nil {
				return fmt.Errorf("storing script %s: %w", h, err)
			}
		}
		if _, err := t.execSQL(`UPDATE executions SET bundle = ?, updated_at = ?, version = version + 1 WHERE id = ?`,
			string(bjson), t.now, executionID); err != nil {
			return fmt.Errorf("re-pinning %s: %w", executionID, err)
		}
		return t.appendEvent(executionID, backend.NewEvent{Kind: backend.EventUpgraded, Data: data})
	})
}

// RetryExecution resumes a failed execution, keeping its history.
func (b *Backend) RetryExecution(ctx context.Context, executionID string, seq int, data json.RawMessage, task *backend.NewTask) error {
	return b.write(ctx, "retrying "+executionID, func(t *wtx) error {
		status, _, queue, err := t.lockedExecution(executionID)
		if err != nil {
			return err
		}
		if status != string(backend.StatusFailed) {
			return fmt.Errorf("execution %s is %s, not failed: %w", executionID, status, backend.ErrNotRunning)
		}
		if _, err := t.execSQL(`UPDATE executions SET status = 'running', result = NULL, error = NULL,
			completed_at = NULL, updated_at = ?, version = version + 1 WHERE id = ?`, t.now, executionID); err != nil {
			return fmt.Errorf("reopening %s: %w", executionID, err)
		}
		if err := t.appendEvent(executionID, backend.NewEvent{Seq: seq, Kind: backend.EventRetried, Data: data}); err != nil {
			return err
		}
		if seq > 0 {
			if _, err := t.execSQL(`UPDATE dead_letters SET status = ?, updated_at = ? WHERE execution_id = ? AND seq = ? AND status = ?`,
				backend.DeadLetterRetried, t.now, executionID, seq, backend.DeadLetterOpen); err != nil {
				return fmt.Errorf("resolving the dead letters of %s seq %d: %w", executionID, seq, err)
			}
		}
		if task == nil {
			return t.enqueueWorkflow(executionID)
		}
		q := task.Queue
		if q == "" {
			q = queue
		}
		if _, err := t.exec(t.st.insertTask, string(backend.TaskActivity), executionID, task.Seq, q, t.now, 1,
			jsonArg(task.Payload), task.Priority, activityName(backend.TaskActivity, task.Payload)); err != nil {
			return fmt.Errorf("creating the activity task of %s seq %d: %w", executionID, task.Seq, err)
		}
		return nil
	})
}
