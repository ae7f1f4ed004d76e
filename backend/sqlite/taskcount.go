package sqlite

import (
	"context"

	"github.com/stent-go/stent/backend"
)

var _ backend.TaskCounter = (*Backend)(nil)

// CountPendingTasks counts the unclaimed tasks by kind and queue.
func (b *Backend) CountPendingTasks(ctx context.Context) ([]backend.TaskCount, error) {
	var out []backend.TaskCount
	err := b.read(ctx, "counting pending tasks", func(db queryer, _ *stmts) error {
		out = out[:0]
		rows, err := db.QueryContext(ctx, `SELECT kind, queue, count(*) FROM tasks WHERE status = 'pending'
			GROUP BY kind, queue ORDER BY kind, queue`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				c    backend.TaskCount
				kind string
			)
			if err := rows.Scan(&kind, &c.Queue, &c.Count); err != nil {
				return err
			}
			c.Kind = backend.TaskKind(kind)
			out = append(out, c)
		}
		return rows.Err()
	})
	return out, err
}
