package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stent-go/stent/backend"
)

// execSQL runs an ad-hoc (unprepared) statement in the transaction; for rare
// operations only, the hot path uses prepared statements.
func (t *wtx) execSQL(q string, args ...any) (sql.Result, error) {
	return t.conn.ExecContext(t.ctx, q, args...)
}

func (t *wtx) queryRowSQL(q string, args ...any) *sql.Row {
	return t.conn.QueryRowContext(t.ctx, q, args...)
}

// requireRunning checks an execution is running: ErrNotFound when it does not exist,
// ErrNotRunning when it ended.
func (t *wtx) requireRunning(executionID string) error {
	var status string
	err := t.queryRow(t.st.execStatus, executionID).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("execution %q: %w", executionID, backend.ErrNotFound)
	}
	if err != nil {
		return err
	}
	if status != string(backend.StatusRunning) {
		return fmt.Errorf("execution %q is %s: %w", executionID, status, backend.ErrNotRunning)
	}
	return nil
}

// SignalExecution stores a signal for a running execution and enqueues its workflow
// task, atomically. An empty payload is stored as JSON null.
func (b *Backend) SignalExecution(ctx context.Context, executionID, name string, payload json.RawMessage) error {
	return b.write(ctx, fmt.Sprintf("signalling %s with %q", executionID, name), func(t *wtx) error {
		if err := t.requireRunning(executionID); err != nil {
			return err
		}
		p := jsonArg(payload)
		if p == nil {
			p = "null"
		}
		if _, err := t.exec(t.st.insertSignal, executionID, name, p, t.now); err != nil {
			return fmt.Errorf("storing signal: %w", err)
		}
		return t.enqueueWorkflow(executionID)
	})
}

// PendingSignals returns the execution's signals not consumed yet, oldest first.
func (b *Backend) PendingSignals(ctx context.Context, executionID string) ([]backend.Signal, error) {
	return readRows(b, ctx, "reading signals of "+executionID, func(_ queryer, st *stmts) (*sql.Rows, error) {
		return st.pendingSignals.QueryContext(ctx, executionID)
	}, backend.ScanSignals)
}

// nextTaskSQL finds the earliest run_at of the pending tasks, two index reads per
// kind, optionally only on nQueues queues (arguments ?1..?n).
func nextTaskSQL(nQueues int) string {
	queues := ""
	if nQueues > 0 {
		ph := make([]string, nQueues)
		for i := range ph {
			ph[i] = fmt.Sprintf("?%d", i+1)
		}
		queues = " AND queue IN (" + strings.Join(ph, ", ") + ")"
	}
	// Priority 0 tasks are read as a range of their claim index; the others (kept in an
	// index ordered by priority first) are read whole.
	parts := make([]string, 0, 2*len(allKinds))
	for _, k := range allKinds {
		parts = append(parts,
			fmt.Sprintf(`SELECT * FROM (SELECT run_at FROM tasks WHERE kind = '%s' AND status = 'pending' AND priority = 0%s
			ORDER BY run_at LIMIT 1)`, k, queues),
			fmt.Sprintf(`SELECT min(run_at) FROM tasks WHERE kind = '%s' AND status = 'pending' AND priority <> 0%s`, k, queues))
	}
	return "SELECT min(run_at) FROM (" + strings.Join(parts, " UNION ALL ") + ")"
}

// NextTaskAt returns the earliest RunAt of the pending tasks on the queues (all
// queues when empty); ok is false when there are none.
func (b *Backend) NextTaskAt(ctx context.Context, queues []string) (time.Time, bool, error) {
	q := nextTaskSQL(len(queues))
	args := make([]any, len(queues))
	for i, s := range queues {
		args[i] = s
	}
	var at sql.NullInt64
	err := b.read(ctx, "finding the next task", func(db queryer, _ *stmts) error {
		rows, err := db.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		if rows.Next() {
			if err := rows.Scan(&at); err != nil {
				return err
			}
		}
		return rows.Err()
	})
	if err != nil || !at.Valid {
		return time.Time{}, false, err
	}
	return fromMS(at.Int64), true, nil
}
