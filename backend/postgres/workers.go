package postgres

import (
	"context"
	"time"

	"github.com/stent-go/stent/backend"
)

// routedNames is a claim's activity names as a text[] argument (never NULL).
func routedNames(names []string) []string {
	if names == nil {
		return []string{}
	}
	return names
}

const sqlRecordWorker = `INSERT INTO workers (id, heartbeat_at, host, pid, queues, activities, concurrency, in_flight, started_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
	ON CONFLICT (id) DO UPDATE SET heartbeat_at = GREATEST(workers.heartbeat_at, EXCLUDED.heartbeat_at),
		host = EXCLUDED.host, pid = EXCLUDED.pid, queues = EXCLUDED.queues, activities = EXCLUDED.activities,
		concurrency = EXCLUDED.concurrency, in_flight = EXCLUDED.in_flight,
		started_at = COALESCE(workers.started_at, EXCLUDED.started_at)`

// RecordWorker records the worker's info and a heartbeat.
func (b *Backend) RecordWorker(ctx context.Context, w backend.WorkerInfo) error {
	now := toMS(b.now())
	b.heartbeatDue(w.ID, now)
	started := now
	if !w.StartedAt.IsZero() {
		started = toMS(w.StartedAt)
	}
	_, err := b.pool.Exec(ctx, sqlRecordWorker, w.ID, now, w.Host, w.PID, routedNames(w.Queues),
		routedNames(w.Activities), w.Concurrency, w.InFlight, started)
	return b.dbError("recording worker "+w.ID, err)
}

// RemoveWorker deletes a worker's row.
func (b *Backend) RemoveWorker(ctx context.Context, workerID string) error {
	_, err := b.pool.Exec(ctx, `DELETE FROM workers WHERE id = $1`, workerID)
	return b.dbError("removing worker "+workerID, err)
}

// ListWorkers lists the workers heard from at or after since, by ID.
func (b *Backend) ListWorkers(ctx context.Context, since time.Time) ([]backend.WorkerInfo, error) {
	rows, err := b.pool.Query(ctx, `SELECT id, heartbeat_at, host, pid, COALESCE(queues, '{}'),
		COALESCE(activities, '{}'), concurrency, in_flight, started_at
		FROM workers WHERE heartbeat_at >= $1 ORDER BY id`, toMS(since))
	if err != nil {
		return nil, b.dbError("listing workers", err)
	}
	defer rows.Close()
	var out []backend.WorkerInfo
	for rows.Next() {
		var (
			w       backend.WorkerInfo
			hb      int64
			started *int64
		)
		if err := rows.Scan(&w.ID, &hb, &w.Host, &w.PID, &w.Queues, &w.Activities, &w.Concurrency, &w.InFlight,
			&started); err != nil {
			return nil, b.dbError("listing workers", err)
		}
		w.HeartbeatAt = fromMS(hb)
		if started != nil {
			w.StartedAt = fromMS(*started)
		}
		if len(w.Queues) == 0 {
			w.Queues = nil
		}
		if len(w.Activities) == 0 {
			w.Activities = nil
		}
		out = append(out, w)
	}
	return out, b.dbError("listing workers", rows.Err())
}

// PendingTasks lists the execution's pending tasks, by ID.
func (b *Backend) PendingTasks(ctx context.Context, executionID string) ([]backend.PendingTask, error) {
	return queryAll(ctx, b, "listing the pending tasks of "+executionID, backend.ScanPendingTasks,
		`SELECT id, kind, seq, queue, COALESCE(activity, ''), run_at, attempt
		FROM tasks WHERE execution_id = $1 AND status = 'pending' ORDER BY id`, executionID)
}

// ClaimStartTimeouts claims pending activity tasks whose schedule-to-start deadline
// passed, whatever their activity and queue (SKIP LOCKED, like ClaimTasks).
func (b *Backend) ClaimStartTimeouts(ctx context.Context, req backend.ClaimRequest) ([]backend.Task, error) {
	lease := req.Lease
	if lease <= 0 {
		lease = defaultLease
	}
	now := toMS(b.now())
	rows, err := b.pool.Query(ctx, `
WITH c AS MATERIALIZED (
	SELECT id FROM tasks WHERE start_by IS NOT NULL AND status = 'pending' AND start_by <= $3
	ORDER BY start_by LIMIT $4 FOR UPDATE SKIP LOCKED
)
UPDATE tasks t SET status = 'claimed', fence = stent_fence(t.fence), lease_owner = $1, lease_expires_at = $2, rerun = false
FROM c WHERE t.id = c.id
RETURNING `+taskColumns+`, t.priority`, req.WorkerID, now+lease.Milliseconds(), now, max(req.Limit, 1))
	if err != nil {
		return nil, b.dbError("claiming activity tasks past their schedule-to-start timeout", err)
	}
	out, err := scanClaimed(rows)
	return out, b.dbError("claiming activity tasks past their schedule-to-start timeout", err)
}

var _ backend.Routing = (*Backend)(nil)
