package sqlite

import (
	"context"

	"github.com/stent-go/stent/backend"
)

// ExecutionTasks returns the execution's pending and claimed tasks by seq, then id.
func (b *Backend) ExecutionTasks(ctx context.Context, executionID string) ([]backend.Task, error) {
	var out []backend.Task
	err := b.read(ctx, "reading the tasks of "+executionID, func(db queryer, _ *stmts) error {
		rows, err := db.QueryContext(ctx, `SELECT `+claimedColumns+` FROM tasks WHERE execution_id = ? ORDER BY seq, id`, executionID)
		if err != nil {
			return err
		}
		cs, err := collectClaimed(rows, nil)
		for _, c := range cs {
			out = append(out, c.task)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ClaimedTasks lists up to limit claimed tasks, by lease owner, then ID. It reads the
// claimed tasks through both claim indexes, as sqlReclaim does.
func (b *Backend) ClaimedTasks(ctx context.Context, limit int) ([]backend.Task, error) {
	var out []backend.Task
	err := b.read(ctx, "reading the claimed tasks", func(db queryer, _ *stmts) error {
		rows, err := db.QueryContext(ctx, `SELECT `+claimedColumns+` FROM (
				SELECT * FROM tasks WHERE kind IN ('workflow', 'activity', 'timer', 'deadline') AND status = 'claimed' AND priority = 0
				UNION ALL
				SELECT * FROM tasks WHERE kind IN ('workflow', 'activity', 'timer', 'deadline') AND status = 'claimed' AND priority <> 0)
			ORDER BY lease_owner, id LIMIT ?`, max(limit, 1))
		if err != nil {
			return err
		}
		cs, err := collectClaimed(rows, nil)
		for _, c := range cs {
			out = append(out, c.task)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

var _ backend.ClaimedTasks = (*Backend)(nil)
