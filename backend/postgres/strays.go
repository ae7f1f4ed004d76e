package postgres

import (
	"context"
	"time"

	"github.com/stent-go/stent/backend"
)

var _ backend.StrayTasks = (*Backend)(nil)

// ReleaseStrayTasks implements backend.StrayTasks: the tasks leased to workerID by a
// claim whose answer never reached it are made pending again, unchanged. Tasks locked
// by a transaction in flight (one of the worker's commits) are left alone.
func (b *Backend) ReleaseStrayTasks(ctx context.Context, workerID string, held []backend.TaskRef, leaseBefore time.Time) (int, error) {
	ids, fences := make([]int64, len(held)), make([]int64, len(held))
	for i, r := range held {
		ids[i], fences[i] = r.ID, r.Fence
	}
	n := 0
	err := b.single(ctx, "releasing the tasks of a lost claim of worker "+workerID, func(s *txState) error {
		n = 0
		now := toMS(b.now())
		rows, err := s.q.Query(ctx, `
WITH c AS MATERIALIZED (
	SELECT id FROM tasks
	WHERE status = 'claimed' AND lease_owner = $1 AND lease_expires_at < $2
		AND (id, fence) NOT IN (SELECT * FROM unnest($3::bigint[], $4::bigint[]))
	FOR UPDATE SKIP LOCKED
)
UPDATE tasks t SET status = 'pending', rerun = false, lease_owner = NULL, lease_expires_at = NULL
FROM c WHERE t.id = c.id
RETURNING t.queue, t.run_at`, workerID, toMS(leaseBefore), ids, fences)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				queue string
				runAt int64
			)
			if err := rows.Scan(&queue, &runAt); err != nil {
				return err
			}
			n++
			if runAt <= now {
				s.taskReady(queue)
			}
		}
		return rows.Err()
	})
	return n, err
}
