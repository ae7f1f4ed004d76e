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
