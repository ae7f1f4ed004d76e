package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stent-go/stent/backend"
)

// Heartbeat records that a worker is alive.
func (b *Backend) Heartbeat(ctx context.Context, workerID string) error {
	return b.write(ctx, "heartbeat of worker "+workerID, func(t *wtx) error {
		_, err := t.exec(t.st.heartbeat, workerID, t.now)
		return err
	})
}

// ReclaimTasks makes claimable again every claimed task whose lease expired or whose
// owner sent no heartbeat within grace (grace <= 0 checks leases only). Worker rows
// silent for an hour are deleted along the way.
func (b *Backend) ReclaimTasks(ctx context.Context, grace time.Duration) (int, error) {
	var n int64
	err := b.write(ctx, "reclaiming tasks", func(t *wtx) error {
		var cutoff any
		if grace > 0 {
			cutoff = t.now - grace.Milliseconds()
		}
		if _, err := t.exec(t.st.countCrashes, t.now, cutoff); err != nil {
			return err
		}
		res, err := t.exec(t.st.reclaim, t.now, cutoff)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = t.exec(t.st.pruneWorkers, t.now-workerRetention.Milliseconds())
		return err
	})
	return int(n), err
}

// ExtendLeases pushes the leases of tasks still held by the worker to now+lease and
// returns the refs it could not extend.
func (b *Backend) ExtendLeases(ctx context.Context, workerID string, refs []backend.TaskRef, lease time.Duration) ([]backend.TaskRef, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	if lease <= 0 {
		lease = DefaultLease
	}
	var lost []backend.TaskRef
	err := b.write(ctx, "extending leases of worker "+workerID, func(t *wtx) error {
		lost = lost[:0]
		st := t.st.fencedExtend
		for _, r := range refs {
			err := mustAffect(st.ExecContext(t.ctx, t.now+lease.Milliseconds(), r.ID, r.Fence, workerID))
			if errors.Is(err, backend.ErrLeaseLost) {
				lost = append(lost, r)
			} else if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return lost, nil
}

// mustAffect turns "no row changed" into backend.ErrLeaseLost.
func mustAffect(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return backend.ErrLeaseLost
	}
	return nil
}

// ReleaseTask gives a claimed task back, runnable at runAt (now when zero).
func (b *Backend) ReleaseTask(ctx context.Context, ref backend.TaskRef, runAt time.Time) error {
	return b.write(ctx, fmt.Sprintf("releasing task %d", ref.ID), func(t *wtx) error {
		return mustAffect(t.exec(t.st.fencedRelease, msOr(runAt, t.now), ref.ID, ref.Fence))
	})
}

// sqlInsertTaskEvent appends an event to the execution of task ?1 while it runs.
const sqlInsertTaskEvent = `INSERT INTO events (execution_id, seq, kind, name, data, error, at, cache_hit)
	SELECT e.id, ?2, ?3, ?4, ?5, ?6, ?7, 0 FROM tasks t JOIN executions e ON e.id = t.execution_id
	WHERE t.id = ?1 AND e.status = 'running'`

// RetryActivityTask schedules the next attempt of a claimed activity task, appending
// failed (when given) to its execution in the same transaction.
func (b *Backend) RetryActivityTask(ctx context.Context, ref backend.TaskRef, runAt time.Time, attempt int, payload json.RawMessage, failed *backend.NewEvent) error {
	var errv any
	if failed != nil {
		var err error
		if errv, err = errArg(failed.Error); err != nil {
			return err
		}
	}
	return b.write(ctx, fmt.Sprintf("retrying task %d", ref.ID), func(t *wtx) error {
		if err := mustAffect(t.exec(t.st.fencedRetry, msOr(runAt, t.now), attempt, jsonArg(payload), ref.ID, ref.Fence)); err != nil || failed == nil {
			return err
		}
		_, err := t.execSQL(sqlInsertTaskEvent, ref.ID, failed.Seq, string(failed.Kind), failed.Name, jsonArg(failed.Data), errv, t.now)
		return err
	})
}

// DeleteTask removes a claimed task without recording anything.
func (b *Backend) DeleteTask(ctx context.Context, ref backend.TaskRef) error {
	return b.write(ctx, fmt.Sprintf("deleting task %d", ref.ID), func(t *wtx) error {
		_, _, _, err := t.fencedDelete(ref)
		return err
	})
}

// fencedDelete deletes the claimed task and returns its execution and seq, or
// backend.ErrLeaseLost.
func (t *wtx) fencedDelete(ref backend.TaskRef) (kind, executionID string, seq int, err error) {
	err = t.queryRow(t.st.fencedDelete, ref.ID, ref.Fence).Scan(&kind, &executionID, &seq)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", 0, backend.ErrLeaseLost
	}
	return kind, executionID, seq, err
}
