package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/stent-go/stent/backend"
)

// routedJSON is the JSON array of a claim's activity names (activity routing).
func routedJSON(names []string) string {
	if len(names) == 0 {
		return "[]"
	}
	js, _ := json.Marshal(names)
	return string(js)
}

func namesJSON(names []string) string {
	if names == nil {
		names = []string{}
	}
	js, _ := json.Marshal(names)
	return string(js)
}

const sqlRecordWorker = `INSERT INTO workers (id, heartbeat_at, host, pid, queues, activities, concurrency, in_flight, started_at)
	VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
	ON CONFLICT (id) DO UPDATE SET heartbeat_at = max(heartbeat_at, excluded.heartbeat_at), host = excluded.host,
		pid = excluded.pid, queues = excluded.queues, activities = excluded.activities,
		concurrency = excluded.concurrency, in_flight = excluded.in_flight,
		started_at = COALESCE(workers.started_at, excluded.started_at)`

// RecordWorker records the worker's info and a heartbeat.
func (b *Backend) RecordWorker(ctx context.Context, w backend.WorkerInfo) error {
	return b.write(ctx, "recording worker "+w.ID, func(t *wtx) error {
		started := t.now
		if !w.StartedAt.IsZero() {
			started = ms(w.StartedAt)
		}
		_, err := t.execSQL(sqlRecordWorker, w.ID, t.now, w.Host, w.PID, namesJSON(w.Queues), namesJSON(w.Activities),
			w.Concurrency, w.InFlight, started)
		return err
	})
}

// RemoveWorker deletes a worker's row.
func (b *Backend) RemoveWorker(ctx context.Context, workerID string) error {
	return b.write(ctx, "removing worker "+workerID, func(t *wtx) error {
		_, err := t.execSQL(`DELETE FROM workers WHERE id = ?`, workerID)
		return err
	})
}

// ListWorkers lists the workers heard from at or after since, by ID.
func (b *Backend) ListWorkers(ctx context.Context, since time.Time) ([]backend.WorkerInfo, error) {
	var out []backend.WorkerInfo
	err := b.read(ctx, "listing workers", func(q queryer, _ *stmts) error {
		out = out[:0]
		rows, err := q.QueryContext(ctx, `SELECT id, heartbeat_at, host, pid, queues, activities, concurrency, in_flight,
			started_at FROM workers WHERE heartbeat_at >= ? ORDER BY id`, ms(since))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				w                  backend.WorkerInfo
				hb                 int64
				queues, activities sql.NullString
				started            sql.NullInt64
			)
			if err := rows.Scan(&w.ID, &hb, &w.Host, &w.PID, &queues, &activities, &w.Concurrency, &w.InFlight,
				&started); err != nil {
				return err
			}
			w.HeartbeatAt = fromMS(hb)
			if started.Valid {
				w.StartedAt = fromMS(started.Int64)
			}
			if queues.Valid {
				_ = json.Unmarshal([]byte(queues.String), &w.Queues)
			}
			if activities.Valid {
				_ = json.Unmarshal([]byte(activities.String), &w.Activities)
			}
			if len(w.Queues) == 0 {
				w.Queues = nil
			}
			if len(w.Activities) == 0 {
				w.Activities = nil
			}
			out = append(out, w)
		}
		return rows.Err()
	})
	return out, err
}

// PendingTasks lists the execution's pending tasks, by ID.
func (b *Backend) PendingTasks(ctx context.Context, executionID string) ([]backend.PendingTask, error) {
	return readRows(b, ctx, "listing the pending tasks of "+executionID, func(q queryer, _ *stmts) (*sql.Rows, error) {
		return q.QueryContext(ctx, `SELECT id, kind, seq, queue, COALESCE(activity, ''), run_at, attempt
			FROM tasks WHERE execution_id = ? AND status = 'pending' ORDER BY id`, executionID)
	}, backend.ScanPendingTasks)
}

// ClaimStartTimeouts claims pending activity tasks whose schedule-to-start deadline
// passed, whatever their activity and queue.
func (b *Backend) ClaimStartTimeouts(ctx context.Context, req backend.ClaimRequest) ([]backend.Task, error) {
	limit := max(req.Limit, 1)
	lease := req.Lease
	if lease <= 0 {
		lease = DefaultLease
	}
	var got []claimedTask
	err := b.write(ctx, "claiming activity tasks past their schedule-to-start timeout", func(t *wtx) error {
		rows, err := t.conn.QueryContext(t.ctx, claimSet+` WHERE id IN (
				SELECT id FROM tasks WHERE start_by IS NOT NULL AND status = 'pending' AND start_by <= ?3
				ORDER BY start_by LIMIT ?4)
			RETURNING `+claimedColumns, req.WorkerID, t.now+lease.Milliseconds(), t.now, limit)
		if err != nil {
			return err
		}
		got, err = collectClaimed(rows, got[:0])
		return err
	})
	if err != nil {
		return nil, err
	}
	return claimedTasks(got), nil
}

var _ backend.Routing = (*Backend)(nil)
