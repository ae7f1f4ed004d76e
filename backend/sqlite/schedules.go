package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/stent-go/stent/backend"
)

// scheduleTicksKept bounds the tick records kept per schedule.
const scheduleTicksKept = 1000

// putSources stores script files by hash (content-addressed: existing ones are kept).
func (t *wtx) putSources(sources map[string][]byte) error {
	for hash, src := range sources {
		if src == nil {
			src = []byte{}
		}
		if _, err := t.exec(t.st.insertScript, hash, src); err != nil {
			return fmt.Errorf("storing script %s: %w", hash, err)
		}
	}
	return nil
}

// CreateSchedule stores a schedule and its sources; false when the ID exists.
func (b *Backend) CreateSchedule(ctx context.Context, s backend.Schedule, sources map[string][]byte) (bool, error) {
	bundle, args, err := backend.EncodeSchedule(s)
	if err != nil {
		return false, err
	}
	created := false
	err = b.write(ctx, "creating schedule "+s.ID, func(t *wtx) error {
		res, err := t.execSQL(`INSERT INTO schedules (id, spec, timezone, overlap, catchup_ms, jitter_ms, bundle, entry,
				args, queue, paused, next_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			s.ID, s.Spec, s.Timezone, s.Overlap, s.Catchup.Milliseconds(), s.Jitter.Milliseconds(), bundle, s.Entry,
			args, s.Queue, s.Paused, ms(s.NextAt), t.now, t.now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 0 {
			return err
		}
		created = true
		return t.putSources(sources)
	})
	return created, err
}

// GetSchedule returns a schedule, or ErrNotFound.
func (b *Backend) GetSchedule(ctx context.Context, id string) (*backend.Schedule, error) {
	var sc *backend.Schedule
	err := b.read(ctx, "reading schedule "+id, func(q queryer, _ *stmts) error {
		rows, err := q.QueryContext(ctx, `SELECT `+backend.ScheduleColumns+` FROM schedules WHERE id = ?`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		if !rows.Next() {
			if err := rows.Err(); err != nil {
				return err
			}
			return fmt.Errorf("schedule %q: %w", id, backend.ErrNotFound)
		}
		sc, err = backend.ScanSchedule(rows)
		return err
	})
	return sc, err
}

// ListSchedules lists every schedule by ID.
func (b *Backend) ListSchedules(ctx context.Context) ([]backend.Schedule, error) {
	return readRows(b, ctx, "listing schedules", func(q queryer, _ *stmts) (*sql.Rows, error) {
		return q.QueryContext(ctx, `SELECT `+backend.ScheduleColumns+` FROM schedules ORDER BY id`)
	}, backend.ScanSchedules)
}

// UpdateSchedule replaces a schedule's definition and drops its lease.
func (b *Backend) UpdateSchedule(ctx context.Context, s backend.Schedule, sources map[string][]byte) error {
	bundle, args, err := backend.EncodeSchedule(s)
	if err != nil {
		return err
	}
	return b.write(ctx, "updating schedule "+s.ID, func(t *wtx) error {
		res, err := t.execSQL(`UPDATE schedules SET spec = ?, timezone = ?, overlap = ?, catchup_ms = ?, jitter_ms = ?,
				bundle = ?, entry = ?, args = ?, queue = ?, paused = ?, paused_reason = ?, next_at = ?, lease_until = 0,
				updated_at = ?
			WHERE id = ?`,
			s.Spec, s.Timezone, s.Overlap, s.Catchup.Milliseconds(), s.Jitter.Milliseconds(), bundle, s.Entry, args,
			s.Queue, s.Paused, s.PausedReason, ms(s.NextAt), t.now, s.ID)
		if err := mustAffect(res, err); err != nil {
			if errors.Is(err, backend.ErrLeaseLost) {
				return fmt.Errorf("schedule %q: %w", s.ID, backend.ErrNotFound)
			}
			return err
		}
		return t.putSources(sources)
	})
}

// DeleteSchedule deletes a schedule and its tick records.
func (b *Backend) DeleteSchedule(ctx context.Context, id string) error {
	return b.write(ctx, "deleting schedule "+id, func(t *wtx) error {
		res, err := t.execSQL(`DELETE FROM schedules WHERE id = ?`, id)
		if err := mustAffect(res, err); err != nil {
			if errors.Is(err, backend.ErrLeaseLost) {
				return fmt.Errorf("schedule %q: %w", id, backend.ErrNotFound)
			}
			return err
		}
		_, err = t.execSQL(`DELETE FROM schedule_ticks WHERE schedule_id = ?`, id)
		return err
	})
}

// ScheduleTicks returns a schedule's latest tick records, newest first.
func (b *Backend) ScheduleTicks(ctx context.Context, id string, limit int) ([]backend.ScheduleTick, error) {
	if limit <= 0 {
		limit = 100
	}
	return readRows(b, ctx, "reading the ticks of schedule "+id, func(q queryer, _ *stmts) (*sql.Rows, error) {
		return q.QueryContext(ctx, `SELECT tick_at, outcome, execution_id, at FROM schedule_ticks
			WHERE schedule_id = ? ORDER BY id DESC LIMIT ?`, id, limit)
	}, backend.ScanScheduleTicks)
}

// ClaimDueSchedules leases due schedules; writes are serialised (BEGIN IMMEDIATE), so
// two processes never claim the same one.
func (b *Backend) ClaimDueSchedules(ctx context.Context, limit int, lease time.Duration) ([]backend.ClaimedSchedule, error) {
	var out []backend.ClaimedSchedule
	err := b.write(ctx, "claiming due schedules", func(t *wtx) error {
		out = out[:0]
		until := t.now + lease.Milliseconds()
		rows, err := t.conn.QueryContext(t.ctx, `UPDATE schedules SET lease_until = ?1
			WHERE id IN (SELECT id FROM schedules s WHERE paused = 0 AND lease_until < ?2
				AND (next_at <= ?2 OR (buffered_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM executions x
					WHERE x.id = s.last_execution_id AND x.status = 'running')))
				ORDER BY next_at LIMIT ?3)
			RETURNING `+backend.ScheduleColumns, until, t.now, max(limit, 1))
		if err != nil {
			return err
		}
		defer rows.Close()
		out, err = backend.ScanClaimedSchedules(rows, fromMS(until))
		return err
	})
	return out, err
}

// AdvanceSchedule commits the outcome of a schedule's ticks atomically.
func (b *Backend) AdvanceSchedule(ctx context.Context, a backend.ScheduleAdvance) error {
	return b.write(ctx, "advancing schedule "+a.ID, func(t *wtx) error {
		var (
			res sql.Result
			err error
		)
		if a.Trigger {
			res, err = t.execSQL(`UPDATE schedules SET last_execution_id = COALESCE(NULLIF(?, ''), last_execution_id)
				WHERE id = ?`, a.LastExecutionID, a.ID)
		} else {
			var buffered any
			if a.BufferedAt != nil {
				buffered = ms(*a.BufferedAt)
			}
			res, err = t.execSQL(`UPDATE schedules SET next_at = ?, buffered_at = ?,
					last_execution_id = COALESCE(NULLIF(?, ''), last_execution_id), lease_until = 0,
					paused = CASE WHEN ? = '' THEN paused ELSE 1 END, paused_reason = CASE WHEN ? = '' THEN paused_reason ELSE ? END
				WHERE id = ? AND lease_until = ?`, ms(a.NextAt), buffered, a.LastExecutionID, a.Pause, a.Pause, a.Pause,
				a.ID, ms(a.LeaseUntil))
		}
		if err := mustAffect(res, err); err != nil {
			return fmt.Errorf("schedule %q was updated, deleted or claimed again: %w", a.ID, err)
		}
		for _, e := range a.Executions {
			if _, err := t.createExecution(e, backend.DefaultQueue, 1); err != nil {
				return err
			}
		}
		for _, tk := range a.Ticks {
			if _, err := t.execSQL(`INSERT INTO schedule_ticks (schedule_id, tick_at, outcome, execution_id, at)
				VALUES (?, ?, ?, ?, ?)`, a.ID, ms(tk.TickAt), tk.Outcome, tk.ExecutionID, t.now); err != nil {
				return fmt.Errorf("recording a tick: %w", err)
			}
		}
		if len(a.Ticks) > 0 {
			_, err = t.execSQL(`DELETE FROM schedule_ticks WHERE schedule_id = ?1 AND id <= (
				SELECT id FROM schedule_ticks WHERE schedule_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)`,
				a.ID, scheduleTicksKept)
		}
		return err
	})
}

// NextScheduleAt returns the earliest NextAt of the unpaused schedules.
func (b *Backend) NextScheduleAt(ctx context.Context) (time.Time, bool, error) {
	var (
		at sql.NullInt64
	)
	err := b.read(ctx, "reading the next schedule tick", func(q queryer, _ *stmts) error {
		rows, err := q.QueryContext(ctx, `SELECT min(next_at) FROM schedules WHERE paused = 0`)
		if err != nil {
			return err
		}
		defer rows.Close()
		if rows.Next() {
			return rows.Scan(&at)
		}
		return rows.Err()
	})
	if err != nil || !at.Valid {
		return time.Time{}, false, err
	}
	return fromMS(at.Int64), true, nil
}

var _ backend.Schedules = (*Backend)(nil)
