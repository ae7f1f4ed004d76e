package sqlite

import (
	"context"
	"database/sql"

	"github.com/stent-go/stent/backend"
)

var _ backend.TaskCounter = (*Backend)(nil)

// CountPendingTasks counts the unclaimed tasks by kind and queue.
func (b *Backend) CountPendingTasks(ctx context.Context) ([]backend.TaskCount, error) {
	return readRows(b, ctx, "counting pending tasks", func(db queryer, _ *stmts) (*sql.Rows, error) {
		return db.QueryContext(ctx, `SELECT kind, queue, count(*) FROM tasks WHERE status = 'pending'
			GROUP BY kind, queue ORDER BY kind, queue`)
	}, backend.ScanTaskCounts)
}
