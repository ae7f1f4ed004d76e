package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/stent-go/stent/backend"
)

var _ backend.CancelRequester = (*Backend)(nil)

// RequestCancel delivers a cancellation request to a running execution and its running
// descendants. See backend.CancelRequester.
func (b *Backend) RequestCancel(ctx context.Context, executionID string, graceUntil time.Time) (bool, error) {
	var requested bool
	err := b.write(ctx, "requesting the cancellation of "+executionID, func(t *wtx) error {
		requested = false
		var status, queue string
		err := t.queryRowSQL(`SELECT status, queue FROM executions WHERE id = ?`, executionID).Scan(&status, &queue)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("execution %q: %w", executionID, backend.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if status != string(backend.StatusRunning) {
			return nil
		}
		ids, err := t.runningTree(executionID)
		if err != nil {
			return err
		}
		for _, id := range ids {
			var n int
			if err := t.queryRowSQL(`SELECT count(*) FROM events WHERE execution_id = ? AND kind = ?`,
				id, string(backend.EventCancelRequested)).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				continue // asked already: its grace runs from the first request
			}
			if err := t.appendEvent(id, backend.NewEvent{Kind: backend.EventCancelRequested}); err != nil {
				return err
			}
			if _, err := t.execSQL(`DELETE FROM tasks WHERE execution_id = ? AND kind IN ('activity', 'timer')`, id); err != nil {
				return fmt.Errorf("deleting the pending steps of %s: %w", id, err)
			}
			if err := t.enqueueWorkflow(id); err != nil {
				return err
			}
			var q string
			if err := t.queryRowSQL(`SELECT queue FROM executions WHERE id = ?`, id).Scan(&q); err != nil {
				return err
			}
			if _, err := t.exec(t.st.insertTask, string(backend.TaskDeadline), id, 0, q, ms(graceUntil), 0,
				jsonArg(backend.CancelGracePayload), 0, nil); err != nil {
				return fmt.Errorf("creating the cancel grace task of %s: %w", id, err)
			}
		}
		requested = true
		return nil
	})
	return requested, err
}
