package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stent-go/stent/backend"
)

// sqlSignal stores a signal for a running execution and enqueues its workflow task,
// under the execution's lock; the workflow task is never made runnable before the
// execution's start (a delayed dispatch stays delayed). It returns the execution's status (no row: no such
// execution), and, when the signal was stored, its queue and the workflow task's
// status.
const sqlSignal = `
WITH p AS MATERIALIZED (SELECT id, status, queue, priority, start_at FROM executions WHERE id = $1 FOR UPDATE),
ok AS (SELECT id, queue, priority, start_at FROM p WHERE status = 'running'),
sig AS (
	INSERT INTO signals (execution_id, name, payload, at) SELECT id, $2, $3, $4 FROM ok
),
wt AS (
	INSERT INTO tasks (kind, execution_id, seq, queue, run_at, attempt, status, priority)
	SELECT 'workflow', id, 0, queue, GREATEST($4, start_at), 0, 'pending', priority FROM ok
	` + sqlEnqueueConflict + `
	RETURNING status
)
SELECT p.status, (SELECT queue FROM ok), (SELECT status FROM wt) FROM p`

// SignalExecution stores a signal for a running execution and enqueues its workflow
// task, atomically. An empty payload is stored as JSON null. ErrNotFound when there is
// no such execution, ErrNotRunning when it ended.
func (b *Backend) SignalExecution(ctx context.Context, executionID, name string, payload json.RawMessage) error {
	p := jsonArg(payload)
	if p == nil {
		null := "null"
		p = &null
	}
	return b.single(ctx, fmt.Sprintf("signalling %s with %q", executionID, name), func(s *txState) error {
		var (
			status      string
			queue, task *string
		)
		err := s.q.QueryRow(ctx, sqlSignal, executionID, name, p, toMS(b.now())).Scan(&status, &queue, &task)
		if err != nil {
			if isNoRows(err) {
				return fmt.Errorf("execution %q: %w", executionID, backend.ErrNotFound)
			}
			return err
		}
		if status != string(backend.StatusRunning) {
			return fmt.Errorf("execution %q is %s: %w", executionID, status, backend.ErrNotRunning)
		}
		if task != nil && *task == "pending" && queue != nil {
			s.taskReady(*queue)
		}
		return nil
	})
}

// PendingSignals returns the execution's signals not consumed yet, oldest first (none
// for an unknown execution).
func (b *Backend) PendingSignals(ctx context.Context, executionID string) ([]backend.Signal, error) {
	op := "reading signals of " + executionID
	return queryAll(ctx, b, op, backend.ScanSignals, `SELECT id, name, payload, at FROM signals
		WHERE execution_id = $1 AND consumed_at IS NULL ORDER BY id`, executionID)
}

// NextTaskAt returns the earliest RunAt of the pending tasks on the queues (all
// queues when empty); ok is false when there are none.
func (b *Backend) NextTaskAt(ctx context.Context, queues []string) (time.Time, bool, error) {
	var (
		at  *int64
		err error
	)
	// The pending indexes are in (priority DESC, run_at) order: the earliest task is
	// the earliest of the first ones of each distinct priority.
	if len(queues) == 0 {
		err = b.pool.QueryRow(ctx, `WITH RECURSIVE `+sqlPriorities(``)+`
			SELECT min((SELECT t.run_at FROM tasks t WHERE t.status = 'pending' AND t.priority = pr.p
				ORDER BY t.run_at LIMIT 1)) FROM pr WHERE pr.p IS NOT NULL`).Scan(&at)
	} else {
		err = b.pool.QueryRow(ctx, `SELECT min(x.at) FROM unnest($1::text[]) AS q(name) CROSS JOIN LATERAL (
			WITH RECURSIVE `+sqlPriorities(` AND queue = q.name`)+`
			SELECT min((SELECT t.run_at FROM tasks t WHERE t.status = 'pending' AND t.queue = q.name
				AND t.priority = pr.p ORDER BY t.run_at LIMIT 1)) AS at FROM pr WHERE pr.p IS NOT NULL) x`,
			queues).Scan(&at)
	}
	if err != nil {
		return time.Time{}, false, b.dbError("finding the next task", err)
	}
	if at == nil {
		return time.Time{}, false, nil
	}
	return fromMS(*at), true, nil
}
