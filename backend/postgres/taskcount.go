package postgres

import (
	"context"

	"github.com/stent-go/stent/backend"
)

var _ backend.TaskCounter = (*Backend)(nil)

// CountPendingTasks counts the unclaimed tasks by kind and queue (an index-only scan
// of the pending-tasks index).
func (b *Backend) CountPendingTasks(ctx context.Context) ([]backend.TaskCount, error) {
	return queryAll(ctx, b, "counting pending tasks", backend.ScanTaskCounts,
		`SELECT kind, queue, count(*) FROM tasks WHERE status = 'pending'
		GROUP BY kind, queue ORDER BY kind, queue`)
}
