package postgres

import (
	"context"

	"github.com/stent-go/stent/backend"
)

var _ backend.TaskCounter = (*Backend)(nil)

// CountPendingTasks counts the unclaimed tasks by kind and queue (an index-only scan
// of the pending-tasks index).
func (b *Backend) CountPendingTasks(ctx context.Context) ([]backend.TaskCount, error) {
	rows, err := b.pool.Query(ctx, `SELECT kind, queue, count(*) FROM tasks WHERE status = 'pending'
		GROUP BY kind, queue ORDER BY kind, queue`)
	if err != nil {
		return nil, b.dbError("counting pending tasks", err)
	}
	defer rows.Close()
	var out []backend.TaskCount
	for rows.Next() {
		var (
			c    backend.TaskCount
			kind string
		)
		if err := rows.Scan(&kind, &c.Queue, &c.Count); err != nil {
			return nil, b.dbError("counting pending tasks", err)
		}
		c.Kind = backend.TaskKind(kind)
		out = append(out, c)
	}
	return out, b.dbError("counting pending tasks", rows.Err())
}
