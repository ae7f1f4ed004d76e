package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/backend"
)

// sqlCreateExecutions inserts executions given as parallel arrays, skipping IDs that
// exist, and for each one created: its started event, its first workflow task and,
// with a deadline, its deadline task. The workflow task has the execution's priority
// ($13). An empty queue means the parent's; a child
// belongs to its parent's current run. Script sources are stored only when at least
// one execution was created, so a duplicate dispatch writes nothing at all. It returns
// the queue and run_at of every task created. The executions named in $14 get no
// workflow task: they are created with their first step (NewExecution.FirstStep),
// which takes its place in the same transaction. $15-$17 are the tags of the
// executions (execution ID, key, value), stored for those created.
const sqlCreateExecutions = `
WITH input AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[],
		$7::text[], $8::bigint[], $9::bigint[], $13::int[])
		WITH ORDINALITY AS i(id, parent_id, parent_seq, bundle, entry, args, queue, start_at, deadline, priority, ord)
),
ins AS (
	INSERT INTO executions (id, parent_id, parent_seq, parent_run, bundle, entry, args, queue, status, version,
		run, created_at, updated_at, start_at, deadline, priority)
	SELECT i.id, i.parent_id, i.parent_seq,
		COALESCE((SELECT x.run FROM executions x WHERE x.id = i.parent_id), 1),
		i.bundle, i.entry, i.args,
		COALESCE(NULLIF(i.queue, ''), (SELECT x.queue FROM executions x WHERE x.id = i.parent_id), 'default'),
		'running', 0, 1, $10, $10, i.start_at, i.deadline, i.priority
	FROM input i ORDER BY i.ord
	ON CONFLICT (id) DO NOTHING
	RETURNING id, args, queue, start_at, deadline, priority
),
` + sqlCreatedRows

// sqlCreateExecution is sqlCreateExecutions for one execution, the common case (a
// dispatch, a child of a tree that descends one generation per statement), with its
// fields as scalars: no arrays to build, send and unnest, and a root skips the lookups
// of its parent. The scripts ($11, $12), the executions created with their first
// step ($14) and the tags ($15-$17) stay arrays: there may be none or several.
const sqlCreateExecution = `
WITH ins AS (
	INSERT INTO executions (id, parent_id, parent_seq, parent_run, bundle, entry, args, queue, status, version,
		run, created_at, updated_at, start_at, deadline, priority)
	SELECT $1::text, $2::text, $3::int,
		CASE WHEN $2::text = '' THEN 1 ELSE COALESCE((SELECT x.run FROM executions x WHERE x.id = $2::text), 1) END,
		$4::text, $5::text, $6::text,
		CASE WHEN $7::text <> '' THEN $7::text
			ELSE COALESCE((SELECT x.queue FROM executions x WHERE x.id = $2::text AND $2::text <> ''), 'default') END,
		'running', 0, 1, $10::bigint, $10::bigint, $8::bigint, $9::bigint, $13::int
	ON CONFLICT (id) DO NOTHING
	RETURNING id, args, queue, start_at, deadline, priority
),
` + sqlCreatedRows

// sqlCreatedRows is what both creation statements write for the executions they
// created (ins): the scripts, started events, tags and tasks.
const sqlCreatedRows = `
src AS (
	INSERT INTO scripts (hash, source)
	SELECT h, s FROM unnest($11::text[], $12::bytea[]) AS x(h, s)
	WHERE EXISTS (SELECT 1 FROM ins)
	ON CONFLICT (hash) DO NOTHING
),
ev AS (
	INSERT INTO events (execution_id, seq, kind, name, data, at)
	SELECT id, 0, 'started', '', args, $10 FROM ins
),
tg AS (
	INSERT INTO execution_tags (execution_id, key, value)
	SELECT t.e, t.k, t.v FROM unnest($15::text[], $16::text[], $17::text[]) AS t(e, k, v)
	WHERE t.e IN (SELECT id FROM ins)
	ON CONFLICT (execution_id, key) DO NOTHING
),
tk AS (
	INSERT INTO tasks (kind, execution_id, seq, queue, run_at, attempt, status, priority)
	SELECT 'workflow', id, 0, queue, start_at, 0, 'pending', priority FROM ins WHERE id <> ALL($14::text[])
	UNION ALL
	SELECT 'deadline', id, 0, queue, deadline, 0, 'pending', 0 FROM ins WHERE deadline IS NOT NULL
	RETURNING queue, run_at
)
SELECT queue, run_at FROM tk`

// newExecutions accumulates executions to create with one sqlCreateExecutions.
type newExecutions struct {
	ids, parents, bundles, entries, args, queues []string
	parentSeqs, priorities                       []int32
	startAts                                     []int64
	deadlines                                    []*int64
	hashes                                       []string
	sources                                      [][]byte
	seen                                         map[string]bool
	firstSteps                                   []string // IDs created with their first step: no workflow task
	tagIDs, tagKeys, tagValues                   []string
}

// add appends e; an empty queue becomes defaultQueue (empty: the parent's queue).
func (n *newExecutions) add(e backend.NewExecution, defaultQueue string, now int64) error {
	if e.ID == "" {
		return errors.New("creating execution: empty ID")
	}
	queue := e.Queue
	if queue == "" {
		queue = defaultQueue
	}
	bundle, err := json.Marshal(e.Bundle)
	if err != nil {
		return fmt.Errorf("encoding bundle of %s: %w", e.ID, err)
	}
	args := e.Args
	if len(args) == 0 {
		args = json.RawMessage("[]")
	}
	var deadline *int64
	if e.Deadline != nil {
		d := toMS(*e.Deadline)
		deadline = &d
	}
	if e.FirstStep != nil {
		n.firstSteps = append(n.firstSteps, e.ID)
	}
	n.ids = append(n.ids, e.ID)
	n.parents = append(n.parents, e.ParentID)
	n.parentSeqs = append(n.parentSeqs, int32(e.ParentSeq))
	n.priorities = append(n.priorities, int32(e.Priority))
	n.bundles = append(n.bundles, string(bundle))
	n.entries = append(n.entries, e.Entry)
	n.args = append(n.args, string(args))
	n.queues = append(n.queues, queue)
	n.startAts = append(n.startAts, msOr(e.StartAt, now))
	n.deadlines = append(n.deadlines, deadline)
	for _, k := range backend.SortedTagKeys(e.Tags) {
		n.tagIDs, n.tagKeys, n.tagValues = append(n.tagIDs, e.ID), append(n.tagKeys, k), append(n.tagValues, e.Tags[k])
	}
	for hash, src := range e.Sources {
		if n.seen == nil {
			n.seen = make(map[string]bool)
		}
		if n.seen[hash] {
			continue
		}
		n.seen[hash] = true
		if src == nil {
			src = []byte{}
		}
		n.hashes = append(n.hashes, hash)
		n.sources = append(n.sources, src)
	}
	return nil
}

// statement returns the statement that creates n's executions and its arguments: the
// single-row form for one execution, else the array form.
func (n *newExecutions) statement(now int64) (string, []any) {
	if len(n.ids) == 1 {
		return sqlCreateExecution, []any{n.ids[0], n.parents[0], n.parentSeqs[0], n.bundles[0], n.entries[0],
			n.args[0], n.queues[0], n.startAts[0], n.deadlines[0], now, n.hashes, n.sources, n.priorities[0],
			nonNil(n.firstSteps), nonNil(n.tagIDs), nonNil(n.tagKeys), nonNil(n.tagValues)}
	}
	return sqlCreateExecutions, n.params(now)
}

func (n *newExecutions) params(now int64) []any {
	return []any{n.ids, n.parents, n.parentSeqs, n.bundles, n.entries, n.args, n.queues, n.startAts,
		n.deadlines, now, n.hashes, n.sources, n.priorities, nonNil(n.firstSteps),
		nonNil(n.tagIDs), nonNil(n.tagKeys), nonNil(n.tagValues)}
}

// scanCreated reads sqlCreateExecutions' rows, notes the queues with a task runnable
// now, and returns how many tasks were created (none: no execution was).
func scanCreated(rows pgx.Rows, s *txState, now int64) (int, error) {
	n := 0
	for rows.Next() {
		n++
		var (
			queue string
			runAt int64
		)
		if err := rows.Scan(&queue, &runAt); err != nil {
			rows.Close()
			return 0, err
		}
		if runAt <= now {
			s.taskReady(queue)
		}
	}
	rows.Close()
	return n, rows.Err()
}

// CreateExecution stores the execution, its sources, its started event and its first
// workflow task in one statement. An existing ID writes nothing and returns false.
func (b *Backend) CreateExecution(ctx context.Context, e backend.NewExecution) (bool, error) {
	now := toMS(b.now())
	var n newExecutions
	if err := n.add(e, backend.DefaultQueue, now); err != nil {
		return false, err
	}
	var created int
	err := b.single(ctx, "creating execution "+e.ID, func(s *txState) error {
		sql, args := n.statement(now)
		rows, err := s.q.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		created, err = scanCreated(rows, s, now)
		return err
	})
	return created > 0, err
}

// GetExecution returns the execution, or an error wrapping backend.ErrNotFound.
func (b *Backend) GetExecution(ctx context.Context, id string) (*backend.Execution, error) {
	e, err := backend.ScanExecution(b.pool.QueryRow(ctx, `SELECT `+backend.ExecutionColumns+` FROM executions WHERE id = $1`, id))
	if err != nil {
		return nil, b.dbError(fmt.Sprintf("reading execution %q", id), err)
	}
	return e, nil
}

// ListExecutions lists executions, newest first (created_at, then id, descending).
func (b *Backend) ListExecutions(ctx context.Context, f backend.ListFilter) ([]backend.Execution, error) {
	var lq listQuery
	if err := listConditions(&lq, f, toMS(b.clock.Now()), true, true); err != nil {
		return nil, err
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	q := "SELECT " + backend.ExecutionColumns + " FROM executions" + lq.whereClause() +
		" ORDER BY created_at DESC, id DESC LIMIT " + lq.arg(limit)
	out, err := queryAll(ctx, b, "listing executions", backend.ScanExecutions, q, lq.args...)
	if err != nil {
		return nil, err
	}
	return orEmpty(out), nil
}

// History returns the events of an execution with ID > afterEventID, in order, or an
// error wrapping backend.ErrNotFound when there is no such execution.
func (b *Backend) History(ctx context.Context, executionID string, afterEventID int64) ([]backend.Event, error) {
	op := "reading history of " + executionID
	out, err := queryAll(ctx, b, op, backend.ScanEvents,
		`SELECT id, seq, kind, name, data, error, at, cache_hit FROM events
		WHERE execution_id = $1 AND id > $2 ORDER BY id`, executionID, afterEventID)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		if err := b.mustExist(ctx, executionID); err != nil {
			return nil, b.dbError(op, err)
		}
	}
	return orEmpty(out), nil
}

// mustExist returns an error wrapping backend.ErrNotFound unless the execution exists.
func (b *Backend) mustExist(ctx context.Context, executionID string) error {
	var one int
	err := b.pool.QueryRow(ctx, `SELECT 1 FROM executions WHERE id = $1`, executionID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("execution %q: %w", executionID, backend.ErrNotFound)
	}
	return err
}

// Logs returns the lines an execution printed, in order (none for an unknown
// execution, as the conformance suite expects).
func (b *Backend) Logs(ctx context.Context, executionID string) ([]backend.LogLine, error) {
	op := "reading logs of " + executionID
	out, err := queryAll(ctx, b, op, backend.ScanLogLines, `SELECT execution_id, run, at, message FROM logs
		WHERE execution_id = $1 ORDER BY id`, executionID)
	if err != nil {
		return nil, err
	}
	return orEmpty(out), nil
}

// GetScript returns a stored script file by content hash, or an error wrapping
// backend.ErrNotFound.
func (b *Backend) GetScript(ctx context.Context, hash string) ([]byte, error) {
	var src []byte
	err := b.pool.QueryRow(ctx, `SELECT source FROM scripts WHERE hash = $1`, hash).Scan(&src)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("script %s: %w", hash, backend.ErrNotFound)
	}
	if err != nil {
		return nil, b.dbError("reading script "+hash, err)
	}
	if src == nil {
		src = []byte{}
	}
	return src, nil
}

// ---- value conversion ----

// jsonArg turns a JSON value into a text argument, NULL when empty.
func jsonArg(m json.RawMessage) *string {
	if len(m) == 0 {
		return nil
	}
	s := string(m)
	return &s
}

func errArg(e *backend.ErrorInfo) (*string, error) {
	if e == nil {
		return nil, nil
	}
	buf, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encoding error info: %w", err)
	}
	s := string(buf)
	return &s, nil
}

func rawJSON(s *string) json.RawMessage {
	if s == nil {
		return nil
	}
	return json.RawMessage(*s)
}

// queryAll runs a query on the pool and scans all its rows with scan (one of
// backend's Scan functions); op names the operation in errors.
func queryAll[T any](ctx context.Context, b *Backend, op string, scan func(backend.Rows) ([]T, error), sql string,
	args ...any) ([]T, error) {
	rows, err := b.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, b.dbError(op, err)
	}
	defer rows.Close()
	out, err := scan(rows)
	if err != nil {
		return nil, b.dbError(op, err)
	}
	return out, nil
}

// orEmpty returns s, or an empty slice where s is nil: the lists of this backend
// are never nil.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// nonNil returns ids, or an empty array where ids is nil (pgx sends nil as NULL, and
// x <> ALL(NULL) is never true).
func nonNil(ids []string) []string {
	if ids == nil {
		return []string{}
	}
	return ids
}

var _ backend.AnnouncedEnds = (*Backend)(nil)

// OnAnnouncedEnd implements backend.AnnouncedEnds: fn sees the ends that go out on the
// finished channel, after their commit. Every engine on the backend may add one.
func (b *Backend) OnAnnouncedEnd(fn func(id string)) {
	b.announcedMu.Lock()
	defer b.announcedMu.Unlock()
	var fns []func(string)
	if old := b.onAnnounced.Load(); old != nil {
		fns = append(fns, *old...)
	}
	fns = append(fns, fn)
	b.onAnnounced.Store(&fns)
}

// AwaitExecution marks the execution as awaited: its end will be announced on the
// finished channel. The mark is committed without waiting for the disk (a mark lost in
// a crash only costs the waiter a poll), written once, and not on an ended execution.
func (b *Backend) AwaitExecution(ctx context.Context, id string) error {
	_, err := b.pool.Exec(ctx, `WITH c AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true))
		UPDATE executions SET awaited = true FROM c
		WHERE id = $1 AND NOT awaited AND status IN ('running', 'scheduled')`, id)
	if err != nil {
		return b.dbError(fmt.Sprintf("awaiting execution %q", id), err)
	}
	return nil
}
