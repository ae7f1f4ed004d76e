package postgres

import (
	"cmp"
	"context"
	"slices"

	"github.com/stent-go/stent/backend"
)

// ExecutionTasks returns the execution's pending and claimed tasks by seq, then id.
func (b *Backend) ExecutionTasks(ctx context.Context, executionID string) ([]backend.Task, error) {
	rows, err := b.pool.Query(ctx, `SELECT `+taskColumns+`, t.priority FROM tasks t WHERE t.execution_id = $1`, executionID)
	if err != nil {
		return nil, b.dbError("reading the tasks of "+executionID, err)
	}
	out, err := scanClaimed(rows)
	if err != nil {
		return nil, b.dbError("reading the tasks of "+executionID, err)
	}
	slices.SortFunc(out, func(a, b backend.Task) int { return cmp.Or(cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.ID, b.ID)) })
	return out, nil
}
