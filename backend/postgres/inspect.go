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

// ClaimedTasks lists up to limit claimed tasks, by lease owner, then ID (the
// tasks_claimed index).
func (b *Backend) ClaimedTasks(ctx context.Context, limit int) ([]backend.Task, error) {
	rows, err := b.pool.Query(ctx, `SELECT `+taskColumns+`, t.priority FROM tasks t WHERE t.status = 'claimed'
		ORDER BY t.lease_owner, t.id LIMIT $1`, max(limit, 1))
	if err != nil {
		return nil, b.dbError("reading the claimed tasks", err)
	}
	out, err := scanClaimed(rows)
	if err != nil {
		return nil, b.dbError("reading the claimed tasks", err)
	}
	// scanClaimed sorts in claim order; the contract is by owner, then ID.
	slices.SortFunc(out, func(a, b backend.Task) int {
		return cmp.Or(cmp.Compare(a.LeaseOwner, b.LeaseOwner), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

var _ backend.ClaimedTasks = (*Backend)(nil)
