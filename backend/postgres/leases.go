package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/backend"
)

// workerRetention is how long a silent worker's row is kept before ReclaimTasks
// deletes it.
const workerRetention = backend.WorkerRetention

const sqlHeartbeat = `INSERT INTO workers (id, heartbeat_at) VALUES ($1, $2)
	ON CONFLICT (id) DO UPDATE SET heartbeat_at = GREATEST(workers.heartbeat_at, EXCLUDED.heartbeat_at)`

// Heartbeat records that a worker is alive.
func (b *Backend) Heartbeat(ctx context.Context, workerID string) error {
	now := toMS(b.now())
	b.heartbeatDue(workerID, now)
	_, err := b.pool.Exec(ctx, sqlHeartbeat, workerID, now)
	return b.dbError("heartbeat of worker "+workerID, err)
}

// ReclaimTasks makes claimable again every claimed task whose lease expired or whose
// owner sent no heartbeat within grace (grace <= 0 checks leases only). Tasks locked
// by a transaction in flight are left for the next call. Worker rows silent for an
// hour are deleted along the way.
func (b *Backend) ReclaimTasks(ctx context.Context, grace time.Duration) (int, error) {
	var n int
	err := b.inTx(ctx, "reclaiming tasks", func(s *txState) error {
		n = 0
		var crashed []string
		now := toMS(b.now())
		var cutoff *int64
		if grace > 0 {
			c := now - grace.Milliseconds()
			cutoff = &c
		}
		rows, err := s.q.Query(ctx, `
WITH c AS MATERIALIZED (
	SELECT t.id FROM tasks t
	WHERE t.status = 'claimed' AND (t.lease_expires_at < $1 OR ($2::bigint IS NOT NULL AND NOT EXISTS (
		SELECT 1 FROM workers w WHERE w.id = t.lease_owner AND w.heartbeat_at >= $2::bigint)))
	FOR UPDATE SKIP LOCKED
)
UPDATE tasks t SET status = 'pending', rerun = false, lease_owner = NULL, lease_expires_at = NULL,
	attempt = t.attempt + CASE WHEN t.kind = 'activity' THEN 1 ELSE 0 END
FROM c WHERE t.id = c.id
RETURNING t.queue, t.run_at, t.kind, t.execution_id`, now, cutoff)
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				queue, kind, execID string
				runAt               int64
			)
			if err := rows.Scan(&queue, &runAt, &kind, &execID); err != nil {
				rows.Close()
				return err
			}
			if kind == string(backend.TaskWorkflow) {
				crashed = append(crashed, execID)
			}
			n++
			if runAt <= now {
				s.taskReady(queue)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(crashed) > 0 {
			// A crash of the current step of each (poison-pill detection, by version).
			if _, err := s.q.Exec(ctx, `UPDATE executions
	SET crashes = CASE WHEN crash_version = version THEN crashes + 1 ELSE 1 END, crash_version = version
	WHERE id = ANY($1::text[])`, crashed); err != nil {
				return err
			}
		}
		_, err = s.q.Exec(ctx, `DELETE FROM workers WHERE heartbeat_at < $1`, now-workerRetention.Milliseconds())
		return err
	})
	return n, err
}

// ExtendLeases pushes the leases of tasks still held by the worker to now+lease and
// returns the refs it could not extend. A task locked at this moment by another
// transaction (its completion, say) is not waited for and not reported lost: the next
// extension tells.
func (b *Backend) ExtendLeases(ctx context.Context, workerID string, refs []backend.TaskRef, lease time.Duration) ([]backend.TaskRef, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	if lease <= 0 {
		lease = defaultLease
	}
	ids := make([]int64, len(refs))
	fences := make([]int64, len(refs))
	for i, r := range refs {
		ids[i], fences[i] = r.ID, r.Fence
	}
	now := toMS(b.now())
	rows, err := b.pool.Query(ctx, `
WITH req AS (SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS r(id, fence)),
held AS (
	SELECT t.id, t.fence FROM tasks t JOIN req ON t.id = req.id AND t.fence = req.fence
	WHERE t.status = 'claimed' AND t.lease_owner = $3
),
locked AS MATERIALIZED (
	SELECT t.id FROM tasks t JOIN req ON t.id = req.id AND t.fence = req.fence
	WHERE t.status = 'claimed' AND t.lease_owner = $3
	FOR UPDATE OF t SKIP LOCKED
),
upd AS (UPDATE tasks t SET lease_expires_at = $4 FROM locked WHERE t.id = locked.id)
SELECT id, fence FROM held`, ids, fences, workerID, now+lease.Milliseconds())
	if err != nil {
		return nil, b.dbError("extending leases of worker "+workerID, err)
	}
	held := make(map[backend.TaskRef]bool, len(refs))
	for rows.Next() {
		var r backend.TaskRef
		if err := rows.Scan(&r.ID, &r.Fence); err != nil {
			rows.Close()
			return nil, b.dbError("extending leases of worker "+workerID, err)
		}
		held[r] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, b.dbError("extending leases of worker "+workerID, err)
	}
	var lost []backend.TaskRef
	for _, r := range refs {
		if !held[r] {
			lost = append(lost, r)
		}
	}
	return lost, nil
}

// ReleaseTask gives a claimed task back, runnable at runAt (now when zero).
func (b *Backend) ReleaseTask(ctx context.Context, ref backend.TaskRef, runAt time.Time) error {
	return b.single(ctx, fmt.Sprintf("releasing task %d", ref.ID), func(s *txState) error {
		now := toMS(b.now())
		at := msOr(runAt, now)
		var queue string
		err := s.q.QueryRow(ctx, `UPDATE tasks SET status = 'pending', run_at = $3, rerun = false,
			lease_owner = NULL, lease_expires_at = NULL
			WHERE id = $1 AND fence = $2 AND status = 'claimed' RETURNING queue`,
			ref.ID, ref.Fence, at).Scan(&queue)
		if errors.Is(err, pgx.ErrNoRows) {
			return backend.ErrLeaseLost
		}
		if err == nil && at <= now {
			s.taskReady(queue)
		}
		return err
	})
}

// RetryActivityTask schedules the next attempt of a claimed activity task at runAt
// (now when zero). A nil payload keeps the task's payload.
// A non-nil failed is appended to the task's execution, while it runs, in the same
// statement.
func (b *Backend) RetryActivityTask(ctx context.Context, ref backend.TaskRef, runAt time.Time, attempt int, payload json.RawMessage, failed *backend.NewEvent) error {
	var (
		kind, name *string
		seq        int
		data, errv *string
	)
	if failed != nil {
		k := string(failed.Kind)
		kind, name, seq, data = &k, &failed.Name, failed.Seq, jsonArg(failed.Data)
		var err error
		if errv, err = errArg(failed.Error); err != nil {
			return err
		}
	}
	return b.single(ctx, fmt.Sprintf("retrying task %d", ref.ID), func(s *txState) error {
		now := toMS(b.now())
		at := msOr(runAt, now)
		var queue string
		err := s.q.QueryRow(ctx, `WITH t AS (
			UPDATE tasks SET status = 'pending', run_at = $3, attempt = $4,
			payload = COALESCE($5, payload), rerun = false, lease_owner = NULL, lease_expires_at = NULL
			WHERE id = $1 AND fence = $2 AND status = 'claimed' RETURNING queue, execution_id
		), ev AS (
			INSERT INTO events (execution_id, seq, kind, name, data, error, at)
			SELECT e.id, $7, $6::text, $8::text, $9::text, $10::text, $11 FROM t JOIN executions e ON e.id = t.execution_id
			WHERE $6::text IS NOT NULL AND e.status = 'running'
		)
		SELECT queue FROM t`,
			ref.ID, ref.Fence, at, attempt, jsonArg(payload), kind, seq, name, data, errv, now).Scan(&queue)
		if errors.Is(err, pgx.ErrNoRows) {
			return backend.ErrLeaseLost
		}
		if err == nil && at <= now {
			s.taskReady(queue)
		}
		return err
	})
}

// DeleteTask removes a claimed task without recording anything.
func (b *Backend) DeleteTask(ctx context.Context, ref backend.TaskRef) error {
	tag, err := b.pool.Exec(ctx, `DELETE FROM tasks WHERE id = $1 AND fence = $2 AND status = 'claimed'`, ref.ID, ref.Fence)
	if err == nil && tag.RowsAffected() == 0 {
		err = backend.ErrLeaseLost
	}
	return b.dbError(fmt.Sprintf("deleting task %d", ref.ID), err)
}
