package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/backend"
)

// workerRetention is how long a silent worker's row is kept before ReclaimTasks
// deletes it.
const workerRetention = time.Hour

// taskColumns is the column list scanned by scanClaimed (prefixed with the alias t).
const taskColumns = `t.id, t.kind, t.execution_id, t.seq, t.queue, t.run_at, t.attempt, t.payload,
	t.fence, t.lease_owner, t.lease_expires_at`

// sqlEnqueueConflict is the ON CONFLICT clause that enqueues an execution's workflow
// task: a new pending task, an earlier run_at for a pending one, the rerun flag for a
// claimed one (CompleteWorkflowTask then makes it runnable again). Inserts pass
// GREATEST(now, the execution's start_at) as run_at, so an execution dispatched with a
// delay is never made runnable early.
const sqlEnqueueConflict = `ON CONFLICT (execution_id) WHERE kind = 'workflow' DO UPDATE SET
	rerun = tasks.rerun OR tasks.status = 'claimed',
	run_at = CASE WHEN tasks.status = 'pending' THEN LEAST(tasks.run_at, EXCLUDED.run_at)
		ELSE tasks.run_at END`

// sqlEnqueueAndClaimConflict is sqlEnqueueConflict for an insert that may claim the
// workflow task (EXCLUDED.status 'claimed'): a pending task is then claimed as
// ClaimTasks would (fence bumped, lease set); a claimed one only gets the rerun flag.
// The caller claimed it iff the row comes back claimed, by it, without rerun.
const sqlEnqueueAndClaimConflict = `ON CONFLICT (execution_id) WHERE kind = 'workflow' DO UPDATE SET
	rerun = CASE WHEN tasks.status = 'claimed' THEN true WHEN EXCLUDED.status = 'claimed' THEN false
		ELSE tasks.rerun END,
	run_at = CASE WHEN tasks.status = 'pending' THEN LEAST(tasks.run_at, EXCLUDED.run_at)
		ELSE tasks.run_at END,
	status = CASE WHEN tasks.status = 'pending' THEN EXCLUDED.status ELSE tasks.status END,
	fence = CASE WHEN tasks.status = 'pending' AND EXCLUDED.status = 'claimed' THEN tasks.fence + 1
		ELSE tasks.fence END,
	lease_owner = CASE WHEN tasks.status = 'pending' THEN EXCLUDED.lease_owner ELSE tasks.lease_owner END,
	lease_expires_at = CASE WHEN tasks.status = 'pending' THEN EXCLUDED.lease_expires_at
		ELSE tasks.lease_expires_at END`

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

// sqlPriorities walks the distinct priorities of pending tasks (of the queue $q, when
// given), highest first, one index descent each; the last row is NULL.
func sqlPriorities(queueFilter string) string {
	return `pr(p) AS (
	(SELECT priority FROM tasks WHERE status = 'pending'` + queueFilter + ` ORDER BY priority DESC LIMIT 1)
	UNION ALL
	SELECT (SELECT t.priority FROM tasks t WHERE t.status = 'pending'` + queueFilter + ` AND t.priority < pr.p
		ORDER BY t.priority DESC LIMIT 1)
	FROM pr WHERE pr.p IS NOT NULL
)`
}

// claimSQL builds the claim statement. Due pending tasks are taken in claim order
// (priority DESC, run_at, id): the distinct priorities of pending tasks are walked
// highest first and, for each, the due tasks of that priority are read off the partial
// index in (run_at, id) order, so every step is a short index range scan however many
// tasks wait for later. Rows are locked with SKIP LOCKED, so concurrent claimers never
// wait for each other nor take the same task. With heartbeat, the claim also records
// the worker's heartbeat.
//
// With capped (the claim has MaxConcurrent caps on activities), the statement must run
// after the caps' advisory locks were taken (see capLocksSQL) in the same transaction:
// it takes uncapped tasks as above, and for each capped activity at most its cap minus
// the tasks of it claimed now (by anyone), then keeps the first limit in claim order.
// Parameters: $1 worker, $2 lease expiry, $3 now, then kinds, queue(s), limit,
// with capped, the capped names and their caps, and, with route, the only activity
// names to claim (activity routing: ClaimRequest.RouteActivities).
func claimSQL(kinds bool, queues int, heartbeat, capped, route bool) string {
	q := `WITH RECURSIVE `
	if heartbeat {
		q += `hb AS (
	INSERT INTO workers (id, heartbeat_at) VALUES ($1, $3)
	ON CONFLICT (id) DO UPDATE SET heartbeat_at = GREATEST(workers.heartbeat_at, EXCLUDED.heartbeat_at)
),
`
	}
	n := 4
	filter := ``
	if kinds {
		filter += ` AND kind = ANY($` + strconv.Itoa(n) + `::text[])`
		n++
	}
	queueFilter := ``
	switch {
	case queues == 1:
		// One queue (the common case) is an equality, which the (queue, priority, run_at,
		// id) index serves in claim order.
		queueFilter = ` AND queue = $` + strconv.Itoa(n) + `::text`
		n++
	case queues > 1:
		queueFilter = ` AND queue = ANY($` + strconv.Itoa(n) + `::text[])`
		n++
	}
	limit := `$` + strconv.Itoa(n)
	n++
	prFilter := ``
	if queues == 1 {
		prFilter = queueFilter
	}
	q += sqlPriorities(prFilter) + `,
`
	uncapped := ``
	if route {
		at := n
		if capped {
			at += 2
		}
		routed := ` AND (activity IS NULL OR activity = ANY($` + strconv.Itoa(at) + `::text[]))`
		queueFilter += routed
	}
	if capped {
		names, caps := `$`+strconv.Itoa(n), `$`+strconv.Itoa(n+1)
		uncapped = ` AND (activity IS NULL OR activity <> ALL(` + names + `::text[]))`
		q += `caps AS (
	SELECT u.n, GREATEST(u.c - (SELECT count(*) FROM tasks ct WHERE ct.status = 'claimed' AND ct.activity = u.n), 0) AS room
	FROM unnest(` + names + `::text[], ` + caps + `::int[]) AS u(n, c)
),
`
	}
	q += `free AS MATERIALIZED (
	SELECT x.id, x.priority, x.run_at FROM pr CROSS JOIN LATERAL (
		SELECT id, priority, run_at FROM tasks
		WHERE status = 'pending' AND priority = pr.p AND run_at <= $3` + filter + queueFilter + uncapped + `
		ORDER BY run_at, id
		LIMIT ` + limit + `
		FOR UPDATE SKIP LOCKED
	) x
	WHERE pr.p IS NOT NULL
	LIMIT ` + limit + `
),
`
	if capped {
		q += `capped AS MATERIALIZED (
	SELECT x.id, x.priority, x.run_at FROM caps CROSS JOIN LATERAL (
		SELECT id, priority, run_at FROM tasks
		WHERE status = 'pending' AND activity = caps.n AND kind = 'activity' AND run_at <= $3` + queueFilter + `
		ORDER BY priority DESC, run_at, id
		LIMIT LEAST(caps.room, ` + limit + `)
		FOR UPDATE SKIP LOCKED
	) x
	WHERE caps.room > 0
),
c AS (
	SELECT id FROM (SELECT * FROM free UNION ALL SELECT * FROM capped) a
	ORDER BY priority DESC, run_at, id
	LIMIT ` + limit + `
)
`
	} else {
		q += `c AS (SELECT id FROM free)
`
	}
	q += `UPDATE tasks t SET status = 'claimed', fence = t.fence + 1, lease_owner = $1, lease_expires_at = $2,
	rerun = false
WHERE t.id = ANY(ARRAY(SELECT id FROM c)) -- a generic plan cannot tell how few rows c has
RETURNING ` + taskColumns + `, t.priority`
	return q
}

// capLocksSQL takes, in the claim's transaction, the advisory lock of each capped
// activity $2 (sorted, so that claimers never deadlock) of schema $1. Every capped
// claim, by ClaimTasks or a hand-off, counts and claims tasks of an activity only
// while holding its lock, and a statement run after the lock is taken sees every claim
// committed before, so the caps hold across processes.
const capLocksSQL = `SELECT count(pg_advisory_xact_lock(hashtext('stent-cap:' || $1::text || ':' || n)))
	FROM unnest($2::text[]) WITH ORDINALITY AS u(n, o)`

// capsOf returns the names of the capped activities of caps, sorted, and their caps,
// keeping only those in keep (all when keep is nil).
func capsOf(caps map[string]int, keep func(string) bool) (names []string, limits []int32) {
	for name := range caps {
		if keep == nil || keep(name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		limits = append(limits, int32(max(min(caps[name], 1<<30), 0)))
	}
	return names, limits
}

// claimHeartbeatEvery is how often claiming refreshes a worker's heartbeat: claims
// come many times a second, and rewriting the worker's row each time would only
// churn it.
const claimHeartbeatEvery = time.Second

// heartbeatDue reports whether a claim by worker at now should also record its
// heartbeat, and assumes it will.
func (b *Backend) heartbeatDue(worker string, now int64) bool {
	b.hbMu.Lock()
	defer b.hbMu.Unlock()
	if b.hbSent == nil {
		b.hbSent = make(map[string]int64)
	}
	last, ok := b.hbSent[worker]
	if ok && now >= last && now-last < claimHeartbeatEvery.Milliseconds() {
		return false
	}
	b.hbSent[worker] = now
	return true
}

// ClaimTasks leases up to req.Limit (default 1) due pending tasks to req.WorkerID,
// highest priority first, then earliest, bumping each one's fence. With
// req.MaxConcurrent, activity tasks of a capped name are claimed only while fewer than
// its cap are claimed: the claim then runs in a transaction holding the caps'
// advisory locks (see capLocksSQL); without caps it is a single statement.
func (b *Backend) ClaimTasks(ctx context.Context, req backend.ClaimRequest) ([]backend.Task, error) {
	limit := req.Limit
	if limit <= 0 {
		limit = 1
	}
	lease := req.Lease
	if lease <= 0 {
		lease = defaultLease
	}
	now := toMS(b.now())
	args := []any{req.WorkerID, now + lease.Milliseconds(), now}
	if len(req.Kinds) > 0 {
		kinds := make([]string, len(req.Kinds))
		for i, k := range req.Kinds {
			kinds[i] = string(k)
		}
		args = append(args, kinds)
	}
	switch len(req.Queues) {
	case 0:
	case 1:
		args = append(args, req.Queues[0])
	default:
		args = append(args, req.Queues)
	}
	args = append(args, limit)
	capped := len(req.MaxConcurrent) > 0 && (len(req.Kinds) == 0 || slices.Contains(req.Kinds, backend.TaskActivity))
	sql := claimSQL(len(req.Kinds) > 0, len(req.Queues), b.heartbeatDue(req.WorkerID, now), capped, req.RouteActivities)
	var out []backend.Task
	if !capped {
		if req.RouteActivities {
			args = append(args, routedNames(req.Activities))
		}
		// The hot path: one statement, its own transaction.
		rows, err := b.pool.Query(ctx, sql, args...)
		if err != nil {
			return nil, b.dbError("claiming tasks", err)
		}
		out, err = scanClaimed(rows)
		if err != nil {
			return nil, b.dbError("claiming tasks", err)
		}
		return out, nil
	}
	names, caps := capsOf(req.MaxConcurrent, nil)
	args = append(args, names, caps)
	if req.RouteActivities {
		args = append(args, routedNames(req.Activities))
	}
	err := b.pipelined(ctx, "claiming tasks", func(bt *pgx.Batch) error {
		bt.Queue(capLocksSQL, b.schema, names)
		bt.Queue(sql, args...)
		return nil
	}, func(br pgx.BatchResults, _ *txState) error {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("locking activity caps: %w", err)
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		out, err = scanClaimed(rows)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// scanClaimed reads the tasks a claim returned (taskColumns and the priority) and
// sorts them in claim order: highest priority first, then earliest, then by id.
func scanClaimed(rows pgx.Rows) ([]backend.Task, error) {
	defer rows.Close()
	type claimed struct {
		backend.Task
		priority int
	}
	var cs []claimed
	for rows.Next() {
		var (
			c       claimed
			kind    string
			runAt   int64
			payload *string
			owner   *string
			expires *int64
		)
		if err := rows.Scan(&c.ID, &kind, &c.ExecutionID, &c.Seq, &c.Queue, &runAt, &c.Attempt, &payload,
			&c.Fence, &owner, &expires, &c.priority); err != nil {
			return nil, err
		}
		c.Kind = backend.TaskKind(kind)
		c.RunAt = fromMS(runAt)
		c.Payload = rawJSON(payload)
		if owner != nil {
			c.LeaseOwner = *owner
		}
		if expires != nil {
			c.LeaseExpiresAt = fromMS(*expires)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(cs, func(a, b claimed) int {
		return cmp.Or(cmp.Compare(b.priority, a.priority), a.RunAt.Compare(b.RunAt), cmp.Compare(a.ID, b.ID))
	})
	out := make([]backend.Task, len(cs))
	for i, c := range cs {
		out[i] = c.Task
	}
	return out, nil
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
func (b *Backend) RetryActivityTask(ctx context.Context, ref backend.TaskRef, runAt time.Time, attempt int, payload json.RawMessage) error {
	return b.single(ctx, fmt.Sprintf("retrying task %d", ref.ID), func(s *txState) error {
		now := toMS(b.now())
		at := msOr(runAt, now)
		var queue string
		err := s.q.QueryRow(ctx, `UPDATE tasks SET status = 'pending', run_at = $3, attempt = $4,
			payload = COALESCE($5, payload), rerun = false, lease_owner = NULL, lease_expires_at = NULL
			WHERE id = $1 AND fence = $2 AND status = 'claimed' RETURNING queue`,
			ref.ID, ref.Fence, at, attempt, jsonArg(payload)).Scan(&queue)
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

// takeTaskSQL builds the statement that deletes a claimed task and, if its execution
// is running, appends an event for it and enqueues the execution's workflow task, in
// one statement. The execution's row is locked first (p is evaluated before the
// DELETE's filter can pass), as in every writer. Parameters: $1 task, $2 fence, $3
// execution (” : the task's), $4 seq (0: the task's), $5 event kind, $6 event name
// (with timerName, NULL takes the name of the timer_scheduled event of the same seq,
// else "sleep"), $7 data, $8 error, $9 now, $10 required task kind (NULL: any), $11
// cache_hit, $12 claim the workflow task for $13 until $14 if it is pending on one of
// the queues $15 (NULL: any); with cache, $16 result cache key, $17 activity, $18
// expiry. The result is cached whenever the task was taken, even if the execution
// ended meanwhile: the activity did succeed. It returns the deleted task's kind and
// execution (NULL when nothing was deleted), the queue of an execution that got the
// event, and the workflow task as enqueued. Variants keep the plan (whose set-up is a
// good part of the statement's cost) to what is used.
func takeTaskSQL(timerName, cache bool) string {
	name := `$6::text`
	if timerName {
		name = `COALESCE($6::text, (SELECT e.name FROM events e
			WHERE e.execution_id = ok.execution_id AND e.seq = ok.seq AND e.kind = 'timer_scheduled'
			ORDER BY e.id DESC LIMIT 1), 'sleep')`
	}
	q := `
WITH p AS MATERIALIZED (
	SELECT id, status, queue, priority, start_at FROM executions
	WHERE id = COALESCE(NULLIF($3::text, ''), (SELECT execution_id FROM tasks WHERE id = $1))
	FOR UPDATE
),
del AS (
	DELETE FROM tasks t
	WHERE t.id = $1 AND t.fence = $2 AND t.status = 'claimed'
		AND t.execution_id = (SELECT id FROM p)
		AND ($10::text IS NULL OR t.kind = $10::text)
	RETURNING t.execution_id, t.seq, t.kind
),
ok AS (
	SELECT del.execution_id, COALESCE(NULLIF($4::int, 0), del.seq) AS seq, p.queue, p.priority, p.start_at,
		$12::boolean AND p.start_at <= $9::bigint AND ($15::text[] IS NULL OR p.queue = ANY($15::text[])) AS claim
	FROM del JOIN p ON p.id = del.execution_id
	WHERE p.status = 'running'
),
ev AS (
	INSERT INTO events (execution_id, seq, kind, name, data, error, at, cache_hit)
	SELECT ok.execution_id, ok.seq, $5::text, ` + name + `, $7::text, $8::text, $9::bigint, $11::boolean
	FROM ok
),
wt AS (
	INSERT INTO tasks (kind, execution_id, seq, queue, run_at, attempt, status, fence, lease_owner, lease_expires_at,
		priority)
	SELECT 'workflow', ok.execution_id, 0, ok.queue, GREATEST($9::bigint, ok.start_at), 0,
		CASE WHEN ok.claim THEN 'claimed' ELSE 'pending' END, CASE WHEN ok.claim THEN 1 ELSE 0 END,
		CASE WHEN ok.claim THEN $13::text END, CASE WHEN ok.claim THEN $14::bigint END, ok.priority
	FROM ok
	` + sqlEnqueueAndClaimConflict + `
	RETURNING id, status, rerun, run_at, fence, lease_owner, lease_expires_at
)`
	if cache {
		q += `,
ca AS (
	INSERT INTO cache (key, activity, result, created_at, expires_at)
	SELECT $16::text, $17::text, $7::text, $9::bigint, $18::bigint FROM del
	ON CONFLICT (key) DO UPDATE SET activity = EXCLUDED.activity, result = EXCLUDED.result,
		created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
)`
	}
	return q + `
SELECT del.kind, del.execution_id, (SELECT queue FROM ok),
	wt.id, wt.status, wt.rerun, wt.run_at, wt.fence, wt.lease_owner, wt.lease_expires_at
FROM (SELECT 1) one
LEFT JOIN del ON true
LEFT JOIN wt ON true`
}

// takeTaskSQLs holds takeTaskSQL(timerName, cache) at index timerName + 2*cache.
var takeTaskSQLs = [4]string{takeTaskSQL(false, false), takeTaskSQL(true, false),
	takeTaskSQL(false, true), takeTaskSQL(true, true)}

// takeRequest is what sqlTakeTask records for a task.
type takeRequest struct {
	op          string
	ref         backend.TaskRef
	executionID string // "": the task's
	seq         int    // 0: the task's
	kind        backend.EventKind
	name        *string // nil: the timer's name
	data, errv  *string
	needKind    backend.TaskKind // "": any
	cacheHit    bool
	cache       *backend.CacheEntry // with its Activity filled
	claim       *handOffClaim       // claim the workflow task it enqueues
}

// takeTask runs sqlTakeTask and turns its answer into an error, notifications and
// the workflow task it claimed, if any.
func (b *Backend) takeTask(ctx context.Context, r takeRequest) (*backend.Task, error) {
	var (
		need, cacheKey, cacheActivity, owner *string
		cacheExpires, leaseExpires           *int64
		queues                               []string
	)
	if r.needKind != "" {
		k := string(r.needKind)
		need = &k
	}
	if c := r.cache; c != nil {
		cacheKey, cacheActivity = &c.Key, &c.Activity
		if c.ExpiresAt != nil {
			ms := toMS(*c.ExpiresAt)
			cacheExpires = &ms
		}
	}
	variant := 0
	if r.name == nil {
		variant |= 1
	}
	if r.cache != nil {
		variant |= 2
	}
	var claimed *backend.Task
	err := b.single(ctx, r.op, func(s *txState) error {
		claimed = nil
		now := toMS(b.now())
		claiming := r.claim != nil && r.claim.wants(backend.TaskWorkflow)
		if claiming {
			owner, queues = &r.claim.worker, r.claim.queues
			exp := now + r.claim.lease.Milliseconds()
			leaseExpires = &exp
		}
		args := []any{r.ref.ID, r.ref.Fence, r.executionID, r.seq, string(r.kind), r.name, r.data, r.errv, now,
			need, r.cacheHit, claiming, owner, leaseExpires, queues}
		if r.cache != nil {
			args = append(args, cacheKey, cacheActivity, cacheExpires)
		}
		var (
			deleted, execID, queue, wtStatus, wtOwner *string
			wtID, wtRunAt, wtFence, wtExpires         *int64
			wtRerun                                   *bool
		)
		err := s.q.QueryRow(ctx, takeTaskSQLs[variant], args...).
			Scan(&deleted, &execID, &queue, &wtID, &wtStatus, &wtRerun, &wtRunAt, &wtFence, &wtOwner, &wtExpires)
		if err != nil {
			return err
		}
		if deleted == nil {
			return b.whyNotTaken(ctx, r)
		}
		if wtStatus == nil || queue == nil {
			return nil // the execution is not running: no workflow task
		}
		switch {
		case *wtStatus == "pending":
			s.taskReady(*queue)
		case claiming && !*wtRerun && wtOwner != nil && *wtOwner == *owner && *wtExpires == *leaseExpires:
			claimed = &backend.Task{ID: *wtID, Kind: backend.TaskWorkflow, ExecutionID: *execID, Queue: *queue,
				RunAt: fromMS(*wtRunAt), Fence: *wtFence, LeaseOwner: *owner, LeaseExpiresAt: fromMS(*wtExpires)}
		}
		return nil
	})
	return claimed, err
}

// whyNotTaken tells why takeTask deleted nothing: usually the lease is lost, but the
// caller may also have named the wrong kind of task or the wrong execution.
func (b *Backend) whyNotTaken(ctx context.Context, r takeRequest) error {
	var kind, execID string
	err := b.pool.QueryRow(ctx, `SELECT kind, execution_id FROM tasks
		WHERE id = $1 AND fence = $2 AND status = 'claimed'`, r.ref.ID, r.ref.Fence).Scan(&kind, &execID)
	switch {
	case isNoRows(err):
	case err != nil:
		return err
	case r.needKind != "" && kind != string(r.needKind):
		return fmt.Errorf("task %d is a %s task, not a %s", r.ref.ID, kind, r.needKind)
	case r.executionID != "" && execID != r.executionID:
		return fmt.Errorf("task %d belongs to execution %s, not %s", r.ref.ID, execID, r.executionID)
	}
	return fmt.Errorf("task %d with fence %d: %w", r.ref.ID, r.ref.Fence, backend.ErrLeaseLost)
}

// CompleteActivityTask records an activity's final outcome, deletes its task and
// enqueues the execution's workflow task, atomically. If the execution is no longer
// running the task is only deleted. A successful result with Cache set is stored in the
// result cache in the same transaction, even when the execution ended meanwhile.
func (b *Backend) CompleteActivityTask(ctx context.Context, r backend.ActivityResult) error {
	_, err := b.completeActivity(ctx, r, nil)
	return err
}

// CompleteActivityTaskAndClaim is CompleteActivityTask that also claims, in the same
// statement, the execution's workflow task for claim.WorkerID when that task is then
// pending (it is due once enqueued) and on one of claim.Queues (any when empty;
// claim.Kinds, when given, must include workflow tasks). It returns nil when it
// claimed nothing: the execution ended, or another worker holds the workflow task
// (which got the rerun flag). Unlike ClaimTasks it records no heartbeat: the worker
// held the activity task a moment ago.
func (b *Backend) CompleteActivityTaskAndClaim(ctx context.Context, r backend.ActivityResult, claim backend.ClaimRequest) (*backend.Task, error) {
	c := newHandOffClaim(claim)
	return b.completeActivity(ctx, r, &c)
}

func (b *Backend) completeActivity(ctx context.Context, r backend.ActivityResult, claim *handOffClaim) (*backend.Task, error) {
	kind := backend.EventActivityCompleted
	var data *string
	if r.Error != nil {
		kind = backend.EventActivityFailed
	} else {
		data = jsonArg(r.Result)
		if data == nil {
			null := "null"
			data = &null
		}
	}
	errv, err := errArg(r.Error)
	if err != nil {
		return nil, err
	}
	var cache *backend.CacheEntry
	if r.Cache != nil && r.Error == nil {
		c := *r.Cache
		if c.Key == "" {
			return nil, fmt.Errorf("completing activity task %d: caching a result: empty cache key", r.Task.ID)
		}
		if c.Activity == "" {
			c.Activity = r.Name
		}
		cache = &c
	}
	name := r.Name
	return b.takeTask(ctx, takeRequest{
		op:  fmt.Sprintf("completing activity task %d", r.Task.ID),
		ref: r.Task, executionID: r.ExecutionID, seq: r.Seq,
		kind: kind, name: &name, data: data, errv: errv, cacheHit: r.CacheHit, cache: cache, claim: claim,
	})
}

// handOffClaim is a ClaimRequest for a hand-off, with ClaimTasks' defaults applied.
type handOffClaim struct {
	worker string
	lease  time.Duration
	limit  int
	queues []string // nil: any
	kinds  []backend.TaskKind
	caps   map[string]int
	// route: claim only activity tasks of these activities (ClaimRequest.RouteActivities).
	route      bool
	activities []string
}

func newHandOffClaim(req backend.ClaimRequest) handOffClaim {
	c := handOffClaim{worker: req.WorkerID, lease: req.Lease, limit: req.Limit, kinds: req.Kinds,
		caps: req.MaxConcurrent, route: req.RouteActivities, activities: req.Activities}
	if c.lease <= 0 {
		c.lease = defaultLease
	}
	if c.limit <= 0 {
		c.limit = 1
	}
	if len(req.Queues) > 0 {
		c.queues = req.Queues
	}
	return c
}

func (c *handOffClaim) wants(kind backend.TaskKind) bool {
	return len(c.kinds) == 0 || slices.Contains(c.kinds, kind)
}

// FireTimer appends timer_fired (named like the timer_scheduled event of the same
// seq) for the timer task, deletes it and enqueues the execution's workflow task,
// atomically.
func (b *Backend) FireTimer(ctx context.Context, ref backend.TaskRef) error {
	_, err := b.takeTask(ctx, takeRequest{
		op:  fmt.Sprintf("firing timer task %d", ref.ID),
		ref: ref, kind: backend.EventTimerFired, needKind: backend.TaskTimer,
	})
	return err
}

const (
	sqlBeginWorkflowTask = `SELECT o_queue, o_requeued, o_version
		FROM stent_begin_workflow_task($1, $2, $3, $4, $5, $6)`
	sqlInsertEvents = `INSERT INTO events (execution_id, seq, kind, name, data, error, at)
		SELECT $1, seq, kind, name, data, error, $2
		FROM unnest($3::int[], $4::text[], $5::text[], $6::text[], $7::text[])
			WITH ORDINALITY AS e(seq, kind, name, data, error, ord)
		ORDER BY ord`
	// sqlInsertTasks creates tasks of an execution; an empty queue means the
	// execution's. Those flagged in $8 are created claimed for $9 until $10, as
	// ClaimTasks would claim them (a hand-off). $11 and $12 are the priorities and
	// activity names.
	sqlInsertTasks = `INSERT INTO tasks (kind, execution_id, seq, queue, run_at, attempt, payload, status,
			fence, lease_owner, lease_expires_at, priority, activity)
		SELECT u.kind, $1, u.seq, COALESCE(NULLIF(u.queue, ''), (SELECT x.queue FROM executions x WHERE x.id = $1)),
			u.run_at, u.attempt, u.payload, CASE WHEN u.c THEN 'claimed' ELSE 'pending' END,
			CASE WHEN u.c THEN 1 ELSE 0 END, CASE WHEN u.c THEN $9::text END, CASE WHEN u.c THEN $10::bigint END,
			u.priority, u.activity
		FROM unnest($2::text[], $3::int[], $4::text[], $5::bigint[], $6::int[], $7::text[], $8::boolean[],
				$11::int[], $12::text[])
			WITH ORDINALITY AS u(kind, seq, queue, run_at, attempt, payload, c, priority, activity, ord)
		ORDER BY u.ord
		RETURNING id, seq, queue, run_at, attempt, payload, status, fence, lease_owner, lease_expires_at`
	// sqlInsertTasksRanked is sqlInsertTasks for a hand-off that needs the execution's
	// queue, or the caps, to choose what to claim: up to $8 of the activity tasks due now
	// ($11) and on one of the queues $12 (NULL: any) are created claimed, the first ones
	// in sequence order; of an activity named in $15 with cap $16, at most the cap minus
	// the tasks of it claimed now (capLocksSQL must have locked it). $13 and $14 are the
	// priorities and activity names.
	sqlInsertTasksRanked = `INSERT INTO tasks (kind, execution_id, seq, queue, run_at, attempt, payload, status,
			fence, lease_owner, lease_expires_at, priority, activity)
		SELECT s.kind, $1, s.seq, s.q, s.run_at, s.attempt, s.payload,
			CASE WHEN s.c THEN 'claimed' ELSE 'pending' END, CASE WHEN s.c THEN 1 ELSE 0 END,
			CASE WHEN s.c THEN $9::text END, CASE WHEN s.c THEN $10::bigint END, s.priority, s.activity
		FROM (
			SELECT r.*, r.e2 AND row_number() OVER (PARTITION BY r.e2 ORDER BY r.seq, r.ord) <= $8 AS c
			FROM (
				SELECT t.*, t.e AND (cap.room IS NULL OR
					row_number() OVER (PARTITION BY t.e, t.activity ORDER BY t.seq, t.ord) <= cap.room) AS e2
				FROM (
					SELECT u.*, v.q, u.kind = 'activity' AND u.run_at <= $11
						AND ($12::text[] IS NULL OR v.q = ANY($12::text[])) AS e
					FROM unnest($2::text[], $3::int[], $4::text[], $5::bigint[], $6::int[], $7::text[], $13::int[],
							$14::text[])
						WITH ORDINALITY AS u(kind, seq, queue, run_at, attempt, payload, priority, activity, ord)
					CROSS JOIN LATERAL (SELECT COALESCE(NULLIF(u.queue, ''),
						(SELECT x.queue FROM executions x WHERE x.id = $1)) AS q) v
				) t
				LEFT JOIN (
					SELECT cu.n, GREATEST(cu.c - (SELECT count(*) FROM tasks ct
						WHERE ct.status = 'claimed' AND ct.activity = cu.n), 0) AS room
					FROM unnest($15::text[], $16::int[]) AS cu(n, c)
				) cap ON cap.n = t.activity
			) r
		) s
		ORDER BY s.ord
		RETURNING id, seq, queue, run_at, attempt, payload, status, fence, lease_owner, lease_expires_at`
	// sqlInsertLogs stores lines with the execution's current run.
	sqlInsertLogs = `INSERT INTO logs (execution_id, run, at, message)
		SELECT $1, (SELECT x.run FROM executions x WHERE x.id = $1), $2, m
		FROM unnest($3::text[]) WITH ORDINALITY AS l(m, ord) ORDER BY ord`
	sqlConsumeSignals = `UPDATE signals SET consumed_at = $3
		WHERE execution_id = $1 AND id = ANY($2::bigint[]) AND consumed_at IS NULL`
	// sqlCancelTimers deletes pending timers only: a claimed one is being fired.
	sqlCancelTimers = `DELETE FROM tasks
		WHERE execution_id = $1 AND kind = 'timer' AND seq = ANY($2::int[]) AND status = 'pending'`
	sqlFinish = `UPDATE executions SET status = $2, result = $3, error = $4, completed_at = $5,
		updated_at = $5, version = version + 1 WHERE id = $1 RETURNING version, awaited`
	sqlInsertEvent = `INSERT INTO events (execution_id, seq, kind, name, data, error, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`
	sqlDeleteExecTasks  = `DELETE FROM tasks WHERE execution_id = $1`
	sqlInsertDeadLetter = `INSERT INTO dead_letters (execution_id, seq, activity, payload, error, status,
		created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'open', $6, $6)`

	// Continue-as-new: a fresh history and task set (but the deadline task), new args,
	// the next run, a workflow task runnable now.
	sqlDeleteExecEvents           = `DELETE FROM events WHERE execution_id = $1`
	sqlDeleteExecTasksButDeadline = `DELETE FROM tasks WHERE execution_id = $1 AND kind <> 'deadline'`
	sqlContinueAsNew              = `UPDATE executions SET args = $2, run = run + 1, version = version + 1,
		updated_at = $3 WHERE id = $1 RETURNING version`
	sqlInsertWorkflowTask = `INSERT INTO tasks (kind, execution_id, seq, queue, run_at, attempt, status, priority)
		SELECT 'workflow', id, 0, queue, $2, 0, 'pending', priority FROM executions WHERE id = $1`

	// sqlNotifyParent appends child_completed to the parent of the ended child $1 and
	// enqueues the parent's workflow task, if the parent is still running the run
	// that started the child. The parent is locked after the child: locks always go
	// from descendant to ancestor.
	sqlNotifyParent = `
WITH c AS (SELECT parent_id, parent_seq, parent_run, entry FROM executions WHERE id = $1 AND parent_id <> ''),
p AS MATERIALIZED (
	SELECT e.id, e.queue, e.priority FROM executions e` + sqlParentRunning + `
),` + sqlChildCompletedEvent + `,
wt AS (
	INSERT INTO tasks (kind, execution_id, seq, queue, run_at, attempt, status, priority)
	SELECT 'workflow', p.id, 0, p.queue, $4::bigint, 0, 'pending', p.priority FROM p
	` + sqlEnqueueConflict + `
	RETURNING status
)
SELECT p.queue, wt.status FROM p, wt`
)

// sqlNotifyParentClaim is sqlNotifyParent for a step with a hand-off claim: the
// parent's workflow task is claimed for $5 (lease until $6) when it is then pending and
// on one of the queues $7 (any when NULL), as sqlTakeTask claims an execution's own.
// The worker that finished a child then runs its parent's next step at once, often from
// the parent's live run, with no claim of its own and no wake-up.
const sqlNotifyParentClaim = `
WITH c AS (SELECT parent_id, parent_seq, parent_run, entry FROM executions WHERE id = $1 AND parent_id <> ''),
p AS MATERIALIZED (
	SELECT e.id, e.queue, e.priority, ($7::text[] IS NULL OR e.queue = ANY($7::text[])) AS claim FROM executions e` +
	sqlParentRunning + `
),` + sqlChildCompletedEvent + `,
wt AS (
	INSERT INTO tasks (kind, execution_id, seq, queue, run_at, attempt, status, fence, lease_owner, lease_expires_at,
		priority)
	SELECT 'workflow', p.id, 0, p.queue, $4::bigint, 0, CASE WHEN p.claim THEN 'claimed' ELSE 'pending' END,
		CASE WHEN p.claim THEN 1 ELSE 0 END, CASE WHEN p.claim THEN $5::text END, CASE WHEN p.claim THEN $6::bigint END,
		p.priority
	FROM p
	` + sqlEnqueueAndClaimConflict + `
	RETURNING id, status, rerun, run_at, fence, lease_owner, lease_expires_at
)
SELECT p.id, p.queue, wt.id, wt.status, wt.rerun, wt.run_at, wt.fence, wt.lease_owner, wt.lease_expires_at FROM p, wt`

var _ backend.ParentHandOff = (*Backend)(nil)

// ClaimsParentWorkflowTasks marks the backend.ParentHandOff extension.
func (*Backend) ClaimsParentWorkflowTasks() {}

// queueNotifyParent queues the statement that tells the parent of the ending child,
// claiming the parent's workflow task when claim wants workflow tasks.
func queueNotifyParent(bt *pgx.Batch, child string, result, errv *string, now int64, claim *handOffClaim) (claiming bool) {
	if claim == nil || !claim.wants(backend.TaskWorkflow) {
		bt.Queue(sqlNotifyParent, child, result, errv, now)
		return false
	}
	bt.Queue(sqlNotifyParentClaim, child, result, errv, now, claim.worker, now+claim.lease.Milliseconds(), claim.queues)
	return true
}

// The parts sqlNotifyParent and sqlNotifyParentClaim share: the parent, locked, if it
// runs the run that started the child; the child_completed event appended to it.
const (
	sqlParentRunning = `
	WHERE e.id = (SELECT parent_id FROM c) AND e.status = 'running' AND e.run = (SELECT parent_run FROM c)
	FOR UPDATE`
	sqlChildCompletedEvent = `
ev AS (
	INSERT INTO events (execution_id, seq, kind, name, data, error, at)
	SELECT p.id, c.parent_seq, 'child_completed', c.entry, $2::text, $3::text, $4::bigint FROM p, c
)`
)

// readParentClaimed reads sqlNotifyParentClaim's answer: the parent's workflow task
// when this worker claimed it.
func readParentClaimed(row pgx.Row, s *txState, worker string) (*backend.Task, error) {
	var (
		parent, queue, status string
		id, runAt, fence      int64
		rerun                 bool
		owner                 *string
		expires               *int64
	)
	err := row.Scan(&parent, &queue, &id, &status, &rerun, &runAt, &fence, &owner, &expires)
	switch {
	case errors.Is(err, pgx.ErrNoRows): // a root, or the parent ended or moved to a later run
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("telling the parent: %w", err)
	case status == "pending":
		s.taskReady(queue)
	case status == "claimed" && !rerun && owner != nil && *owner == worker && expires != nil:
		return &backend.Task{ID: id, Kind: backend.TaskWorkflow, ExecutionID: parent, Queue: queue,
			RunAt: fromMS(runAt), Fence: fence, LeaseOwner: worker, LeaseExpiresAt: fromMS(*expires)}, nil
	}
	return nil, nil
}

// readParentNotified reads sqlNotifyParent's answer.
func readParentNotified(row pgx.Row, s *txState) error {
	var queue, status string
	err := row.Scan(&queue, &status)
	switch {
	case errors.Is(err, pgx.ErrNoRows): // a root, or the parent ended or moved to a later run
		return nil
	case err != nil:
		return fmt.Errorf("telling the parent: %w", err)
	case status == "pending":
		s.taskReady(queue)
	}
	return nil
}

// finishInfo is how an execution ends: its status, the result and error to store and
// the last event to append.
type finishInfo struct {
	status       backend.Status
	result, errv *string
	event        backend.NewEvent
}

func newFinishInfo(f backend.Finish) (finishInfo, error) {
	fi := finishInfo{status: f.Status}
	if f.Status == backend.StatusCompleted {
		result := f.Result
		if len(result) == 0 {
			result = json.RawMessage("null")
		}
		fi.result = jsonArg(result)
		fi.event = backend.NewEvent{Kind: backend.EventCompleted, Data: result}
		return fi, nil
	}
	info := f.Error
	if info == nil {
		info = &backend.ErrorInfo{Message: "execution " + string(f.Status), Type: string(f.Status)}
	}
	var err error
	if fi.errv, err = errArg(info); err != nil {
		return fi, err
	}
	fi.event = backend.NewEvent{Kind: backend.EventFailed, Error: info}
	return fi, nil
}

// activityOf returns the activity name of an activity task's payload (its "name"),
// nil when there is none.
func activityOf(payload json.RawMessage) *string {
	var p struct {
		Name string `json:"name"`
	}
	if len(payload) == 0 || json.Unmarshal(payload, &p) != nil || p.Name == "" {
		return nil
	}
	return &p.Name
}

// handOffFlags chooses the new tasks a workflow hand-off claims: up to claim.limit of
// the activity tasks due at now and on one of claim.queues, the first ones in sequence
// order. ok is false when that depends on the execution's queue (a task on it while
// claim names queues): sqlInsertTasksRanked then chooses.
func handOffFlags(tasks []backend.NewTask, runAts []int64, now int64, claim *handOffClaim) (flags []bool, ok bool) {
	flags = make([]bool, len(tasks))
	if claim == nil || !claim.wants(backend.TaskActivity) {
		return flags, true
	}
	var pick []int
	for i, nt := range tasks {
		if nt.Kind != backend.TaskActivity || runAts[i] > now {
			continue
		}
		if claim.route && !slices.Contains(claim.activities, backend.PayloadName(nt.Payload)) {
			continue
		}
		if claim.queues != nil {
			if nt.Queue == "" {
				return nil, false
			}
			if !slices.Contains(claim.queues, nt.Queue) {
				continue
			}
		}
		pick = append(pick, i)
	}
	slices.SortStableFunc(pick, func(a, b int) int { return cmp.Compare(tasks[a].Seq, tasks[b].Seq) })
	for _, i := range pick[:min(len(pick), claim.limit)] {
		flags[i] = true
	}
	return flags, true
}

// CompleteWorkflowTask commits a workflow task's output atomically and returns the
// execution's new version. The whole commit is one round trip: the checks and locks of
// stent_begin_workflow_task and every write, pipelined in one transaction.
func (b *Backend) CompleteWorkflowTask(ctx context.Context, r backend.WorkflowTaskResult) (int64, error) {
	v, _, err := b.completeWorkflow(ctx, r, nil, nil)
	return v, err
}

// CompleteWorkflowTaskAndClaim is CompleteWorkflowTask that also claims, in the same
// transaction, up to claim.Limit (1 when not positive) of the activity tasks it
// created that are due and on one of claim.Queues (any when empty; claim.Kinds, when
// given, must include activity tasks), in sequence order: they are created claimed.
// Nothing is claimed when the result finishes the execution or continues it as new.
// Like CompleteActivityTaskAndClaim it records no heartbeat.
func (b *Backend) CompleteWorkflowTaskAndClaim(ctx context.Context, r backend.WorkflowTaskResult, claim backend.ClaimRequest) (int64, []backend.Task, error) {
	c := newHandOffClaim(claim)
	return b.completeWorkflow(ctx, r, &c, nil)
}

// completeWorkflow commits r; with act, the commit opens with the activity's
// completion instead of the workflow task's removal (a fused step, see fused.go).
func (b *Backend) completeWorkflow(ctx context.Context, r backend.WorkflowTaskResult, claim *handOffClaim, act stepOpener) (int64, []backend.Task, error) {
	st, err := b.prepareStep(r, claim, act)
	if err != nil {
		return 0, nil, err
	}
	build := func(bt *pgx.Batch) error { return st.build(bt, toMS(b.now())) }
	if err := b.pipelined(ctx, st.op, build, st.read); err != nil {
		return 0, nil, err
	}
	return st.newVersion, st.claimed, nil
}

// pgStep is a step's commit, prepared: build queues its statements (at time now) and
// read reads their answers, setting newVersion and claimed. A child created with its
// first step (NewExecution.FirstStep) has a pgStep of its own, queued and read within
// its parent's, right after the children's creation.
type pgStep struct {
	op         string
	build      func(bt *pgx.Batch, now int64) error
	read       func(br pgx.BatchResults, s *txState) error
	newVersion int64
	claimed    []backend.Task
}

// childOpener opens the commit of a child's first step, in the transaction of its
// parent's step that creates it.
type childOpener struct{ id string }

func (c *childOpener) queue(bt *pgx.Batch, _ backend.WorkflowTaskResult, ending bool, now int64) {
	bt.Queue(sqlBeginCreatedStep, c.id, ending, now)
}

func (c *childOpener) read(br pgx.BatchResults, queue *string, version **int64, _ *txState) error {
	return br.QueryRow().Scan(queue, version)
}

func (b *Backend) prepareStep(r backend.WorkflowTaskResult, claim *handOffClaim, act stepOpener) (*pgStep, error) {
	st := &pgStep{}
	var op string
	switch a := act.(type) {
	case nil:
		op = fmt.Sprintf("completing workflow task %d of %s", r.Task.ID, r.ExecutionID)
	case *fusedActivity:
		op = fmt.Sprintf("completing activity task %d with the step of %s", a.ref.ID, r.ExecutionID)
	default:
		op = fmt.Sprintf("creating execution %s with its first step", r.ExecutionID)
	}
	f := r.Finish
	if f != nil && r.ContinueAsNew != nil {
		return nil, fmt.Errorf("%s: a workflow task result cannot both finish and continue as new", op)
	}
	if f != nil && (f.Status == "" || !f.Status.Terminal()) {
		return nil, fmt.Errorf("%s: finish status %q is not terminal", op, f.Status)
	}
	ending := f != nil || r.ContinueAsNew != nil // the workflow task goes, whatever its rerun flag
	// Events, tasks, children and logs, as parallel arrays.
	var (
		evSeqs           []int32
		evKinds, evNames []string
		evData, evErrs   []*string
	)
	for _, ev := range r.Events {
		errv, err := errArg(ev.Error)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		evSeqs = append(evSeqs, int32(ev.Seq))
		evKinds = append(evKinds, string(ev.Kind))
		evNames = append(evNames, ev.Name)
		evData = append(evData, jsonArg(ev.Data))
		evErrs = append(evErrs, errv)
	}
	createTasks := len(r.Tasks) > 0 && !ending // an ending execution's tasks would be deleted at once
	var (
		tkKinds, tkQueues              []string
		tkSeqs, tkAttempts, tkPriority []int32
		tkRunAts                       []int64
		tkPayloads, tkActivities       []*string
	)
	for _, nt := range r.Tasks {
		if nt.Kind != backend.TaskActivity && nt.Kind != backend.TaskTimer {
			return nil, fmt.Errorf("%s: cannot create a %q task through CompleteWorkflowTask (only activity and timer tasks)", op, nt.Kind)
		}
		attempt := int32(nt.Attempt)
		if attempt == 0 && nt.Kind == backend.TaskActivity {
			attempt = 1
		}
		tkKinds = append(tkKinds, string(nt.Kind))
		tkSeqs = append(tkSeqs, int32(nt.Seq))
		tkQueues = append(tkQueues, nt.Queue)
		tkAttempts = append(tkAttempts, attempt)
		tkPayloads = append(tkPayloads, jsonArg(nt.Payload))
		tkPriority = append(tkPriority, int32(nt.Priority))
		var activity *string
		if nt.Kind == backend.TaskActivity {
			activity = activityOf(nt.Payload)
		}
		tkActivities = append(tkActivities, activity)
	}
	var (
		children   newExecutions
		childSteps []*pgStep // of the children created with their first step, in order
	)
	for _, child := range r.Children {
		if child.ParentID == "" {
			child.ParentID = r.ExecutionID
		}
		if err := children.add(child, "", 0); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if fs := child.FirstStep; fs != nil {
			if fs.Finish != nil || fs.ContinueAsNew != nil {
				return nil, fmt.Errorf("%s: a child's first step taken with its parent's cannot end it (%s)", op, child.ID)
			}
			step := *fs
			step.ExecutionID = child.ID
			cst, err := b.prepareStep(step, nil, &childOpener{id: child.ID})
			if err != nil {
				return nil, err
			}
			childSteps = append(childSteps, cst)
		}
	}
	var fi finishInfo
	if f != nil {
		var err error
		if fi, err = newFinishInfo(*f); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	var (
		deadLetter       *backend.DeadLetter
		dlPayload, dlErr *string
		continueArgs     string
		consumedSignals  []int64
		cancelTimers     []int32
	)
	if r.DeadLetter != nil && f != nil && f.Status == backend.StatusFailed {
		d := *r.DeadLetter
		if d.ExecutionID == "" {
			d.ExecutionID = r.ExecutionID
		}
		info := d.Error
		if info == nil {
			info = f.Error
		}
		var err error
		if dlErr, err = errArg(info); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		dlPayload = jsonArg(d.Payload)
		deadLetter = &d
	}
	if r.ContinueAsNew != nil {
		continueArgs = string(r.ContinueAsNew)
		if continueArgs == "" {
			continueArgs = "[]"
		}
	}
	consumedSignals = r.ConsumedSignals
	for _, seq := range r.CancelTimers {
		cancelTimers = append(cancelTimers, int32(seq))
	}

	var (
		now         int64
		newVersion  int64
		awaited     bool // a waiter asked for the finish to be announced (backend.Awaiter)
		claimed     []backend.Task
		claimParent bool     // the parent's workflow task is claimed by its notification
		capNames    []string // capped activities the hand-off may claim, locked
		capLimits   []int32
	)
	st.op = op
	st.build = func(bt *pgx.Batch, n int64) error {
		now = n
		if act != nil {
			act.queue(bt, r, ending, now)
		} else {
			bt.Queue(sqlBeginWorkflowTask, r.ExecutionID, r.Task.ID, r.Task.Fence, r.ExpectedVersion, ending, now)
		}
		if len(r.Events) > 0 {
			bt.Queue(sqlInsertEvents, r.ExecutionID, now, evSeqs, evKinds, evNames, evData, evErrs)
		}
		if createTasks {
			tkRunAts = tkRunAts[:0]
			for _, nt := range r.Tasks {
				tkRunAts = append(tkRunAts, msOr(nt.RunAt, now))
			}
			var (
				owner   *string
				expires *int64
			)
			if claim != nil && claim.wants(backend.TaskActivity) {
				exp := now + claim.lease.Milliseconds()
				owner, expires = &claim.worker, &exp
			}
			capNames, capLimits = nil, nil
			if owner != nil && len(claim.caps) > 0 {
				capNames, capLimits = capsOf(claim.caps, func(name string) bool {
					for i, nt := range r.Tasks {
						if nt.Kind == backend.TaskActivity && tkRunAts[i] <= now && tkActivities[i] != nil &&
							*tkActivities[i] == name {
							return true
						}
					}
					return false
				})
			}
			switch flags, ok := handOffFlags(r.Tasks, tkRunAts, now, claim); {
			case owner == nil || (ok && len(capNames) == 0):
				bt.Queue(sqlInsertTasks, r.ExecutionID, tkKinds, tkSeqs, tkQueues, tkRunAts, tkAttempts, tkPayloads,
					flags, owner, expires, tkPriority, tkActivities)
			default:
				if len(capNames) > 0 {
					// After the execution's lock (taken by sqlBeginWorkflowTask): executions
					// are always locked before caps, and claims lock caps only.
					bt.Queue(capLocksSQL, b.schema, capNames)
				}
				bt.Queue(sqlInsertTasksRanked, r.ExecutionID, tkKinds, tkSeqs, tkQueues, tkRunAts, tkAttempts,
					tkPayloads, claim.limit, owner, expires, now, claim.queues, tkPriority, tkActivities,
					capNames, capLimits)
			}
		}
		if len(r.Children) > 0 {
			for i, at := range children.startAts {
				if at == 0 {
					children.startAts[i] = now
				}
			}
			bt.Queue(sqlCreateExecutions, children.params(now)...)
			for _, cst := range childSteps {
				if err := cst.build(bt, now); err != nil {
					return err
				}
			}
		}
		if len(r.Logs) > 0 {
			bt.Queue(sqlInsertLogs, r.ExecutionID, now, r.Logs)
		}
		if len(consumedSignals) > 0 {
			bt.Queue(sqlConsumeSignals, r.ExecutionID, consumedSignals, now)
		}
		if len(cancelTimers) > 0 && !ending {
			bt.Queue(sqlCancelTimers, r.ExecutionID, cancelTimers)
		}
		switch {
		case r.ContinueAsNew != nil:
			bt.Queue(sqlDeleteExecEvents, r.ExecutionID)
			bt.Queue(sqlDeleteExecTasksButDeadline, r.ExecutionID)
			bt.Queue(sqlContinueAsNew, r.ExecutionID, continueArgs, now)
			bt.Queue(sqlInsertEvent, r.ExecutionID, 0, string(backend.EventStarted), "", continueArgs, nil, now)
			bt.Queue(sqlInsertWorkflowTask, r.ExecutionID, now)
		case f != nil:
			bt.Queue(sqlFinish, r.ExecutionID, string(f.Status), fi.result, fi.errv, now)
			bt.Queue(sqlInsertEvent, r.ExecutionID, 0, string(fi.event.Kind), "", jsonArg(fi.event.Data), fi.errv, now)
			bt.Queue(sqlDeleteExecTasks, r.ExecutionID)
			if !r.NoParent {
				claimParent = queueNotifyParent(bt, r.ExecutionID, fi.result, fi.errv, now, claim)
			}
			if deadLetter != nil {
				bt.Queue(sqlInsertDeadLetter, deadLetter.ExecutionID, deadLetter.Seq, deadLetter.Activity,
					dlPayload, dlErr, now)
			}
		}
		return nil
	}
	exec := func(br pgx.BatchResults, what string) error {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	st.read = func(br pgx.BatchResults, s *txState) error {
		claimed = claimed[:0]
		defer func() { st.newVersion, st.claimed = newVersion, claimed }()
		var (
			queue    string
			requeued bool
			version  *int64
		)
		if act != nil {
			if err := act.read(br, &queue, &version, s); err != nil {
				return err
			}
		} else if err := br.QueryRow().Scan(&queue, &requeued, &version); err != nil {
			return err
		}
		if version != nil {
			newVersion = *version
		}
		if requeued {
			s.taskReady(queue)
		}
		if len(r.Events) > 0 {
			if err := exec(br, "appending events"); err != nil {
				return err
			}
		}
		if createTasks {
			if len(capNames) > 0 {
				if err := exec(br, "locking activity caps"); err != nil {
					return err
				}
			}
			rows, err := br.Query()
			if err != nil {
				return fmt.Errorf("creating tasks: %w", err)
			}
			for rows.Next() {
				var (
					tk             backend.Task
					payload, owner *string
					status         string
					runAt          int64
					expires        *int64
				)
				if err := rows.Scan(&tk.ID, &tk.Seq, &tk.Queue, &runAt, &tk.Attempt, &payload, &status, &tk.Fence,
					&owner, &expires); err != nil {
					rows.Close()
					return fmt.Errorf("creating tasks: %w", err)
				}
				switch {
				case status == "claimed":
					tk.Kind, tk.ExecutionID, tk.RunAt, tk.Payload = backend.TaskActivity, r.ExecutionID, fromMS(runAt), rawJSON(payload)
					tk.LeaseOwner, tk.LeaseExpiresAt = *owner, fromMS(*expires)
					claimed = append(claimed, tk)
				case runAt <= now:
					s.taskReady(tk.Queue)
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("creating tasks: %w", err)
			}
			slices.SortFunc(claimed, func(a, b backend.Task) int { return cmp.Or(cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.ID, b.ID)) })
		}
		if len(r.Children) > 0 {
			rows, err := br.Query()
			if err != nil {
				return fmt.Errorf("creating children: %w", err)
			}
			if _, err := scanCreated(rows, s, now); err != nil {
				return fmt.Errorf("creating children: %w", err)
			}
			for _, cst := range childSteps {
				if err := cst.read(br, s); err != nil {
					return err
				}
			}
		}
		if len(r.Logs) > 0 {
			if err := exec(br, "writing logs"); err != nil {
				return err
			}
		}
		if len(consumedSignals) > 0 {
			if err := exec(br, "consuming signals"); err != nil {
				return err
			}
		}
		if len(cancelTimers) > 0 && !ending {
			if err := exec(br, "cancelling timers"); err != nil {
				return err
			}
		}
		switch {
		case r.ContinueAsNew != nil:
			if err := exec(br, "deleting the history"); err != nil {
				return err
			}
			if err := exec(br, "deleting the tasks"); err != nil {
				return err
			}
			if err := br.QueryRow().Scan(&newVersion); err != nil {
				return fmt.Errorf("continuing as new: %w", err)
			}
			if err := exec(br, "appending the started event"); err != nil {
				return err
			}
			if err := exec(br, "creating the workflow task"); err != nil {
				return err
			}
			s.taskReady(queue)
		case f != nil:
			if err := br.QueryRow().Scan(&newVersion, &awaited); err != nil {
				return fmt.Errorf("finishing: %w", err)
			}
			if err := exec(br, "appending the "+string(fi.event.Kind)+" event"); err != nil {
				return err
			}
			if err := exec(br, "deleting tasks"); err != nil {
				return err
			}
			switch {
			case claimParent:
				tk, err := readParentClaimed(br.QueryRow(), s, claim.worker)
				if err != nil {
					return err
				}
				if tk != nil {
					claimed = append(claimed, *tk)
				}
			case !r.NoParent: // (a root queued no statement to tell a parent)
				if err := readParentNotified(br.QueryRow(), s); err != nil {
					return err
				}
			}
			if deadLetter != nil {
				if err := exec(br, "recording the dead letter"); err != nil {
					return err
				}
			}
			if awaited {
				s.executionFinished(r.ExecutionID)
			}
		}
		return nil
	}
	return st, nil
}
