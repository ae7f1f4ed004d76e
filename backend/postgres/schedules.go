package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stent-go/stent/backend"
)

// scheduleTicksKept bounds the tick records kept per schedule.
const scheduleTicksKept = 1000

// putSources stores script files by hash (content-addressed: existing ones are kept).
func putSources(ctx context.Context, q querier, sources map[string][]byte) error {
	for hash, src := range sources {
		if src == nil {
			src = []byte{}
		}
		if _, err := q.Exec(ctx, `INSERT INTO scripts (hash, source) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING`,
			hash, src); err != nil {
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
	err = b.inTx(ctx, "creating schedule "+s.ID, func(st *txState) error {
		now := toMS(b.now())
		tag, err := st.q.Exec(ctx, `INSERT INTO schedules (id, spec, timezone, overlap, catchup_ms, jitter_ms, bundle,
				entry, args, queue, paused, next_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) ON CONFLICT (id) DO NOTHING`,
			s.ID, s.Spec, s.Timezone, s.Overlap, s.Catchup.Milliseconds(), s.Jitter.Milliseconds(), bundle, s.Entry,
			args, s.Queue, s.Paused, toMS(s.NextAt), now)
		if err != nil {
			return err
		}
		created = tag.RowsAffected() == 1
		if !created {
			return nil
		}
		return putSources(ctx, st.q, sources)
	})
	return created, err
}

// GetSchedule returns a schedule, or ErrNotFound.
func (b *Backend) GetSchedule(ctx context.Context, id string) (*backend.Schedule, error) {
	sc, err := backend.ScanSchedule(b.pool.QueryRow(ctx, `SELECT `+backend.ScheduleColumns+` FROM schedules WHERE id = $1`, id))
	if isNoRows(err) {
		return nil, fmt.Errorf("schedule %q: %w", id, backend.ErrNotFound)
	}
	return sc, b.dbError("reading schedule "+id, err)
}

// ListSchedules lists every schedule by ID.
func (b *Backend) ListSchedules(ctx context.Context) ([]backend.Schedule, error) {
	return queryAll(ctx, b, "listing schedules", backend.ScanSchedules,
		`SELECT `+backend.ScheduleColumns+` FROM schedules ORDER BY id`)
}

// UpdateSchedule replaces a schedule's definition and drops its lease.
func (b *Backend) UpdateSchedule(ctx context.Context, s backend.Schedule, sources map[string][]byte) error {
	bundle, args, err := backend.EncodeSchedule(s)
	if err != nil {
		return err
	}
	return b.inTx(ctx, "updating schedule "+s.ID, func(st *txState) error {
		tag, err := st.q.Exec(ctx, `UPDATE schedules SET spec = $2, timezone = $3, overlap = $4, catchup_ms = $5,
				jitter_ms = $6, bundle = $7, entry = $8, args = $9, queue = $10, paused = $11, next_at = $12,
				lease_until = 0, updated_at = $13, paused_reason = $14
			WHERE id = $1`,
			s.ID, s.Spec, s.Timezone, s.Overlap, s.Catchup.Milliseconds(), s.Jitter.Milliseconds(), bundle, s.Entry,
			args, s.Queue, s.Paused, toMS(s.NextAt), toMS(b.now()), s.PausedReason)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("schedule %q: %w", s.ID, backend.ErrNotFound)
		}
		return putSources(ctx, st.q, sources)
	})
}

// DeleteSchedule deletes a schedule and its tick records.
func (b *Backend) DeleteSchedule(ctx context.Context, id string) error {
	return b.inTx(ctx, "deleting schedule "+id, func(st *txState) error {
		tag, err := st.q.Exec(ctx, `DELETE FROM schedules WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("schedule %q: %w", id, backend.ErrNotFound)
		}
		_, err = st.q.Exec(ctx, `DELETE FROM schedule_ticks WHERE schedule_id = $1`, id)
		return err
	})
}

// ScheduleTicks returns a schedule's latest tick records, newest first.
func (b *Backend) ScheduleTicks(ctx context.Context, id string, limit int) ([]backend.ScheduleTick, error) {
	if limit <= 0 {
		limit = 100
	}
	return queryAll(ctx, b, "reading the ticks of schedule "+id, backend.ScanScheduleTicks,
		`SELECT tick_at, outcome, execution_id, at FROM schedule_ticks
		WHERE schedule_id = $1 ORDER BY id DESC LIMIT $2`, id, limit)
}

// ClaimDueSchedules leases due schedules; SKIP LOCKED keeps concurrent claimers off
// each other's rows, and the lease off a schedule being processed.
func (b *Backend) ClaimDueSchedules(ctx context.Context, limit int, lease time.Duration) ([]backend.ClaimedSchedule, error) {
	now := toMS(b.now())
	until := now + lease.Milliseconds()
	rows, err := b.pool.Query(ctx, `
WITH c AS MATERIALIZED (
	SELECT id FROM schedules s WHERE NOT paused AND lease_until < $2
		AND (next_at <= $2 OR (buffered_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM executions x
			WHERE x.id = s.last_execution_id AND x.status = 'running')))
	ORDER BY next_at LIMIT $3 FOR UPDATE SKIP LOCKED
)
UPDATE schedules s SET lease_until = $1 FROM c WHERE s.id = c.id
RETURNING `+prefixed("s.", backend.ScheduleColumns), until, now, max(limit, 1))
	if err != nil {
		return nil, b.dbError("claiming due schedules", err)
	}
	defer rows.Close()
	out, err := backend.ScanClaimedSchedules(rows, fromMS(until))
	return out, b.dbError("claiming due schedules", err)
}

// AdvanceSchedule commits the outcome of a schedule's ticks atomically.
func (b *Backend) AdvanceSchedule(ctx context.Context, a backend.ScheduleAdvance) error {
	now := toMS(b.now())
	var n newExecutions
	for _, e := range a.Executions {
		if err := n.add(e, backend.DefaultQueue, now); err != nil {
			return err
		}
	}
	return b.inTx(ctx, "advancing schedule "+a.ID, func(st *txState) error {
		var (
			tag pgconn.CommandTag
			err error
		)
		if a.Trigger {
			tag, err = st.q.Exec(ctx, `UPDATE schedules SET last_execution_id = COALESCE(NULLIF($2, ''), last_execution_id)
				WHERE id = $1`, a.ID, a.LastExecutionID)
		} else {
			tag, err = st.q.Exec(ctx, `UPDATE schedules SET next_at = $2, buffered_at = $3,
					last_execution_id = COALESCE(NULLIF($4, ''), last_execution_id), lease_until = 0,
					paused = paused OR $6 <> '', paused_reason = CASE WHEN $6 = '' THEN paused_reason ELSE $6 END
				WHERE id = $1 AND lease_until = $5`,
				a.ID, toMS(a.NextAt), bufferedMS(a.BufferedAt), a.LastExecutionID, toMS(a.LeaseUntil), a.Pause)
		}
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("schedule %q was updated, deleted or claimed again: %w", a.ID, backend.ErrLeaseLost)
		}
		if len(n.ids) > 0 {
			sql, args := n.statement(now)
			rows, err := st.q.Query(ctx, sql, args...)
			if err != nil {
				return err
			}
			if _, err := scanCreated(rows, st, now); err != nil {
				return err
			}
		}
		if len(a.Ticks) == 0 {
			return nil
		}
		tickAts := make([]int64, len(a.Ticks))
		outcomes := make([]string, len(a.Ticks))
		execs := make([]string, len(a.Ticks))
		for i, tk := range a.Ticks {
			tickAts[i], outcomes[i], execs[i] = toMS(tk.TickAt), tk.Outcome, tk.ExecutionID
		}
		if _, err := st.q.Exec(ctx, `INSERT INTO schedule_ticks (schedule_id, tick_at, outcome, execution_id, at)
			SELECT $1, t, o, e, $5 FROM unnest($2::bigint[], $3::text[], $4::text[]) WITH ORDINALITY AS u(t, o, e, n)
			ORDER BY n`, a.ID, tickAts, outcomes, execs, now); err != nil {
			return fmt.Errorf("recording ticks: %w", err)
		}
		_, err = st.q.Exec(ctx, `DELETE FROM schedule_ticks WHERE schedule_id = $1 AND id <= (
			SELECT id FROM schedule_ticks WHERE schedule_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)`,
			a.ID, scheduleTicksKept)
		return err
	})
}

// NextScheduleAt returns the earliest NextAt of the unpaused schedules.
func (b *Backend) NextScheduleAt(ctx context.Context) (time.Time, bool, error) {
	var at *int64
	if err := b.pool.QueryRow(ctx, `SELECT min(next_at) FROM schedules WHERE NOT paused`).Scan(&at); err != nil {
		return time.Time{}, false, b.dbError("reading the next schedule tick", err)
	}
	if at == nil {
		return time.Time{}, false, nil
	}
	return fromMS(*at), true, nil
}

// bufferedMS is a buffered tick's time as a nullable argument.
func bufferedMS(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	v := toMS(*t)
	return &v
}

// prefixed qualifies each column of a comma-separated list with prefix.
func prefixed(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

var _ backend.Schedules = (*Backend)(nil)
