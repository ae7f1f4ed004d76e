package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/backend"
)

// taskColumns is the column list scanned by scanClaimed (prefixed with the alias t).
const taskColumns = `t.id, t.kind, t.execution_id, t.seq, t.queue, t.run_at, t.attempt, t.payload,
	t.fence, t.lease_owner, t.lease_expires_at`

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
	q += `UPDATE tasks t SET status = 'claimed', fence = stent_fence(t.fence), lease_owner = $1, lease_expires_at = $2,
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
