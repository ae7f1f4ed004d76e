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

// wtx is a write transaction on the writer connection.
type wtx struct {
	ctx  context.Context // never cancelled: a started transaction runs to its end
	conn *sql.Conn
	st   *stmts
	now  int64 // unix ms, read once from the clock per transaction
	// requeued are the queues of workflow tasks the transaction put back in the queue
	// (rerun): reported after the commit (backend.ReadyReporter).
	requeued []string
}

func (t *wtx) exec(s *sql.Stmt, args ...any) (sql.Result, error) {
	return s.ExecContext(t.ctx, args...)
}

func (t *wtx) queryRow(s *sql.Stmt, args ...any) *sql.Row {
	return s.QueryRowContext(t.ctx, args...)
}

func (t *wtx) query(s *sql.Stmt, args ...any) (*sql.Rows, error) {
	return s.QueryContext(t.ctx, args...)
}

// write runs fn in one BEGIN IMMEDIATE transaction on the writer connection. what
// names the operation in error messages; sentinel errors returned by fn pass through
// unwrapped. ctx bounds the wait for the connection; once the transaction has begun
// it runs to its end (SQLite's busy timeout bounds waits for other processes).
func (b *Backend) write(ctx context.Context, what string, fn func(t *wtx) error) error {
	requeued, err := b.writeLocked(ctx, what, fn)
	// Reported once the writer connection is free again: the callback may write.
	if len(requeued) > 0 {
		if fn := b.onReady.Load(); fn != nil {
			for _, q := range requeued {
				(*fn)(q)
			}
		}
	}
	return err
}

// writeLocked is write; it returns the queues of the workflow tasks the transaction put
// back in the queue.
func (b *Backend) writeLocked(ctx context.Context, what string, fn func(t *wtx) error) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlite %s: %s: %w", b.name, what, err)
	}
	if err := b.lock(ctx); err != nil {
		return nil, fmt.Errorf("sqlite %s: %s: %w", b.name, what, err)
	}
	defer b.unlock()
	ctx = context.WithoutCancel(ctx)
	if err := b.ensureWriter(ctx, true); err != nil {
		return nil, b.opError(what, err)
	}
	st := b.wst
	if _, err := st.begin.ExecContext(ctx); err != nil {
		b.rollback(ctx)
		return nil, b.opError(what, fmt.Errorf("begin: %w", err))
	}
	t := &wtx{ctx: ctx, conn: b.wc, st: st, now: b.clock.Now().UnixMilli()}
	if err := fn(t); err != nil {
		b.rollback(ctx)
		if isSentinel(err) {
			return nil, err
		}
		return nil, b.opError(what, err)
	}
	if _, err := st.commit.ExecContext(ctx); err != nil {
		b.rollback(ctx)
		return nil, b.opError(what, fmt.Errorf("commit: %w", err))
	}
	b.committed()
	return t.requeued, nil
}

// OnTaskReady implements backend.ReadyReporter.
func (b *Backend) OnTaskReady(fn func(queue string)) { b.onReady.Store(&fn) }

// queryer is a *sql.DB or a *sql.Conn.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// read runs fn with the reader statements: on the reader pool for a file database, on
// the writer connection (holding it) for an in-memory one. fn must finish with its
// rows before it returns.
func (b *Backend) read(ctx context.Context, what string, fn func(q queryer, st *stmts) error) error {
	var err error
	if b.r != nil {
		if b.rst == nil {
			return fmt.Errorf("sqlite %s: %s: backend is not open", b.name, what)
		}
		err = fn(b.r, b.rst)
	} else {
		if err := b.lock(ctx); err != nil {
			return fmt.Errorf("sqlite %s: %s: %w", b.name, what, err)
		}
		defer b.unlock()
		if err := b.ensureWriter(context.WithoutCancel(ctx), true); err != nil {
			return fmt.Errorf("sqlite %s: %s: %w", b.name, what, err)
		}
		err = fn(b.wc, b.wst)
	}
	if err != nil && !isSentinel(err) {
		return b.opError(what, err)
	}
	return err
}

func isSentinel(err error) bool {
	return errors.Is(err, backend.ErrLeaseLost) || errors.Is(err, backend.ErrStaleExecution) ||
		errors.Is(err, backend.ErrNotFound) || errors.Is(err, backend.ErrNotRunning)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v) }

// msOr returns t in unix ms, or now when t is zero.
func msOr(t time.Time, now int64) int64 {
	if t.IsZero() {
		return now
	}
	return t.UnixMilli()
}

// jsonArg turns a JSON value into a TEXT argument, NULL when empty.
func jsonArg(m json.RawMessage) any {
	if len(m) == 0 {
		return nil
	}
	return string(m)
}

func errArg(e *backend.ErrorInfo) (any, error) {
	if e == nil {
		return nil, nil
	}
	buf, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encoding error info: %w", err)
	}
	return string(buf), nil
}

func rawJSON(buf []byte) json.RawMessage {
	if buf == nil {
		return nil
	}
	return json.RawMessage(buf)
}

// appendEvent appends one event to an execution's history.
func (t *wtx) appendEvent(executionID string, ev backend.NewEvent) error {
	_, err := t.appendEventID(executionID, ev)
	return err
}

// appendEventID is appendEvent that returns the new event's id.
func (t *wtx) appendEventID(executionID string, ev backend.NewEvent) (int64, error) {
	errv, err := errArg(ev.Error)
	if err != nil {
		return 0, err
	}
	res, err := t.exec(t.st.insertEvent, executionID, ev.Seq, string(ev.Kind), ev.Name, jsonArg(ev.Data), errv, t.now)
	if err == nil {
		var id int64
		if id, err = res.LastInsertId(); err == nil {
			return id, nil
		}
	}
	return 0, fmt.Errorf("appending %s event: %w", ev.Kind, err)
}

// enqueueWorkflow makes the execution's workflow task runnable now: it creates a
// pending one, moves a pending one's run_at to now if later, or flags a claimed one
// to run again when its holder completes it.
func (t *wtx) enqueueWorkflow(executionID string) error {
	_, _, err := t.enqueueWorkflowTask(executionID)
	return err
}

// enqueueWorkflowTask is enqueueWorkflow that also returns the workflow task's id and
// whether it is now pending and due (false when its holder got the rerun flag).
func (t *wtx) enqueueWorkflowTask(executionID string) (id int64, pending bool, err error) {
	st := t.st
	var (
		runAt  int64
		status string
		rerun  int
		res    sql.Result
	)
	err = t.queryRow(st.findWorkflowTask, executionID).Scan(&id, &status, &runAt, &rerun)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		id = 0
		if res, err = t.exec(st.insertWorkflowTask, executionID, t.now); err == nil {
			var n int64
			if n, err = res.RowsAffected(); err == nil && n == 1 {
				id, err = res.LastInsertId()
				pending = true
			}
		}
	case err != nil:
	case status == "claimed":
		if rerun == 0 {
			_, err = t.exec(st.setRerun, id)
		}
	case runAt > t.now:
		if err = t.queryRow(st.setRunAt, t.now, id).Scan(&runAt); err == nil {
			pending = runAt <= t.now
		}
	default:
		pending = true
	}
	if err != nil {
		return 0, false, fmt.Errorf("enqueueing workflow task of %s: %w", executionID, err)
	}
	return id, pending, nil
}

// createExecution stores e with its sources, started event, first workflow task and,
// with a deadline, its deadline task. defaultQueue is used when e.Queue is empty;
// parentRun is the parent's run that starts the child (1 for a root).
func (t *wtx) createExecution(e backend.NewExecution, defaultQueue string, parentRun int) (bool, error) {
	if e.FirstStep == nil {
		return t.createExecutionWith(e, defaultQueue, parentRun, true)
	}
	if e.FirstStep.Finish != nil || e.FirstStep.ContinueAsNew != nil {
		return false, fmt.Errorf("creating %s: a child's first step taken with its parent's cannot end it", e.ID)
	}
	created, err := t.createExecutionWith(e, defaultQueue, parentRun, false)
	if err != nil || !created {
		return created, err
	}
	queue := e.Queue
	if queue == "" {
		queue = defaultQueue
	}
	step := *e.FirstStep
	step.ExecutionID = e.ID
	target := stepTarget{parentID: e.ParentID, entry: e.Entry, queue: queue, parentSeq: e.ParentSeq, run: 1, parentRun: parentRun}
	var version int64
	return true, t.applyWorkflowResult(step, target, &version, nil)
}

// createExecutionWith is createExecution; without workflowTask the execution gets no
// first workflow task (its first step is committed with it, see CreateExecutionAndStep).
func (t *wtx) createExecutionWith(e backend.NewExecution, defaultQueue string, parentRun int, workflowTask bool) (bool, error) {
	if e.ID == "" {
		return false, errors.New("creating execution: empty ID")
	}
	queue := e.Queue
	if queue == "" {
		queue = defaultQueue
	}
	bundle, err := json.Marshal(e.Bundle)
	if err != nil {
		return false, fmt.Errorf("encoding bundle of %s: %w", e.ID, err)
	}
	args := e.Args
	if len(args) == 0 {
		args = json.RawMessage("[]")
	}
	startAt := msOr(e.StartAt, t.now)
	var deadline any
	if e.Deadline != nil {
		deadline = ms(*e.Deadline)
	}
	res, err := t.exec(t.st.insertExecution, e.ID, e.ParentID, e.ParentSeq, parentRun, string(bundle), e.Entry,
		string(args), queue, t.now, t.now, startAt, deadline, e.Priority)
	if err != nil {
		return false, fmt.Errorf("inserting execution %s: %w", e.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, err
	} else if n == 0 {
		return false, nil
	}
	for hash, src := range e.Sources {
		if src == nil {
			src = []byte{}
		}
		if _, err := t.exec(t.st.insertScript, hash, src); err != nil {
			return false, fmt.Errorf("storing script %s: %w", hash, err)
		}
	}
	for _, k := range backend.SortedTagKeys(e.Tags) {
		if _, err := t.execSQL(`INSERT INTO execution_tags (execution_id, key, value) VALUES (?, ?, ?)
			ON CONFLICT (execution_id, key) DO UPDATE SET value = excluded.value`, e.ID, k, e.Tags[k]); err != nil {
			return false, fmt.Errorf("storing tag %q of %s: %w", k, e.ID, err)
		}
	}
	if err := t.appendEvent(e.ID, backend.NewEvent{Kind: backend.EventStarted, Data: args}); err != nil {
		return false, err
	}
	if workflowTask {
		if _, err := t.exec(t.st.insertTask, string(backend.TaskWorkflow), e.ID, 0, queue, startAt, 0, nil, e.Priority, nil); err != nil {
			return false, fmt.Errorf("creating workflow task of %s: %w", e.ID, err)
		}
	}
	if deadline != nil {
		if _, err := t.exec(t.st.insertTask, string(backend.TaskDeadline), e.ID, 0, queue, deadline, 0, nil, 0, nil); err != nil {
			return false, fmt.Errorf("creating deadline task of %s: %w", e.ID, err)
		}
	}
	return true, nil
}

// CreateExecution stores an execution, its sources, its started event, its first
// workflow task and, with a Deadline, its deadline task in one transaction. An
// existing ID writes nothing and returns false.
func (b *Backend) CreateExecution(ctx context.Context, e backend.NewExecution) (bool, error) {
	var created bool
	err := b.write(ctx, "creating execution "+e.ID, func(t *wtx) error {
		var err error
		created, err = t.createExecution(e, backend.DefaultQueue, 1)
		return err
	})
	return created, err
}

// GetExecution returns the execution, or an error wrapping backend.ErrNotFound.
func (b *Backend) GetExecution(ctx context.Context, id string) (*backend.Execution, error) {
	var e *backend.Execution
	err := b.read(ctx, "reading execution "+id, func(_ queryer, st *stmts) error {
		var err error
		e, err = backend.ScanExecution(st.getExecution.QueryRowContext(ctx, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("execution %q: %w", id, backend.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// ListExecutions lists executions, newest first (created_at, then id, descending).
func (b *Backend) ListExecutions(ctx context.Context, f backend.ListFilter) ([]backend.Execution, error) {
	where, args, err := listConditions(f, ms(b.clock.Now()), true, true)
	if err != nil {
		return nil, err
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q := "SELECT " + backend.ExecutionColumns + " FROM executions"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC, id DESC LIMIT ?"
	args = append(args, limit)
	return readRows(b, ctx, "listing executions", func(db queryer, _ *stmts) (*sql.Rows, error) {
		return db.QueryContext(ctx, q, args...)
	}, backend.ScanExecutions)
}

// History returns the events of an execution with ID > afterEventID, in order.
func (b *Backend) History(ctx context.Context, executionID string, afterEventID int64) ([]backend.Event, error) {
	return readRows(b, ctx, "reading history of "+executionID, func(_ queryer, st *stmts) (*sql.Rows, error) {
		return st.history.QueryContext(ctx, executionID, afterEventID)
	}, backend.ScanEvents)
}

// Logs returns the lines an execution printed, in order.
func (b *Backend) Logs(ctx context.Context, executionID string) ([]backend.LogLine, error) {
	return readRows(b, ctx, "reading logs of "+executionID, func(_ queryer, st *stmts) (*sql.Rows, error) {
		return st.logs.QueryContext(ctx, executionID)
	}, backend.ScanLogLines)
}

// GetScript returns a stored script file by content hash, or an error wrapping
// backend.ErrNotFound.
func (b *Backend) GetScript(ctx context.Context, hash string) ([]byte, error) {
	var src []byte
	err := b.read(ctx, "reading script "+hash, func(_ queryer, st *stmts) error {
		err := st.getScript.QueryRowContext(ctx, hash).Scan(&src)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("script %s: %w", hash, backend.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if src == nil {
		src = []byte{}
	}
	return src, nil
}

// readRows runs the read query that query makes and scans all its rows with scan (one
// of backend's Scan functions).
func readRows[T any](b *Backend, ctx context.Context, what string, query func(q queryer, st *stmts) (*sql.Rows, error),
	scan func(backend.Rows) ([]T, error)) ([]T, error) {
	var out []T
	err := b.read(ctx, what, func(q queryer, st *stmts) error {
		rows, err := query(q, st)
		if err != nil {
			return err
		}
		defer rows.Close()
		out, err = scan(rows)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
