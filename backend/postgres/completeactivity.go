package postgres

import (
	"context"
	"fmt"

	"github.com/stent-go/stent/backend"
)

// takeTaskSQL builds the statement that deletes a claimed task and, if its execution
// is running, appends an event for it and enqueues the execution's workflow task, in
// one statement. The execution's row is locked first (p is evaluated before the
// DELETE's filter can pass), as in every writer. Parameters: $1 task, $2 fence, $3
// execution (” : the task's), $4 seq (0: the task's), $5 event kind, $6 event name
// (with timerName, NULL takes the name of the timer_scheduled or signal_wait event of
// the same seq, else "sleep"; after a signal_wait, the kind is signal_timed_out), $7 data, $8 error, $9 now, $10 required task kind (NULL: any), $11
// cache_hit, $12 claim the workflow task for $13 until $14 if it is pending on one of
// the queues $15 (NULL: any); with cache, $16 result cache key, $17 activity, $18
// expiry. The result is cached whenever the task was taken, even if the execution
// ended meanwhile: the activity did succeed. It returns the deleted task's kind and
// execution (NULL when nothing was deleted), the queue of an execution that got the
// event, and the workflow task as enqueued. Variants keep the plan (whose set-up is a
// good part of the statement's cost) to what is used.
func takeTaskSQL(timerName, cache bool) string {
	name, kind := `$6::text`, `$5::text`
	if timerName {
		name = `COALESCE($6::text, (SELECT e.name FROM events e
			WHERE e.execution_id = ok.execution_id AND e.seq = ok.seq AND e.kind IN ('timer_scheduled', 'signal_wait')
			ORDER BY e.id DESC LIMIT 1), 'sleep')`
		// The timeout of a wait_signal is recorded as signal_timed_out.
		kind = `COALESCE((SELECT CASE WHEN e.kind = 'signal_wait' THEN 'signal_timed_out' END FROM events e
			WHERE e.execution_id = ok.execution_id AND e.seq = ok.seq AND e.kind IN ('timer_scheduled', 'signal_wait')
			ORDER BY e.id DESC LIMIT 1), $5::text)`
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
	SELECT ok.execution_id, ok.seq, ` + kind + `, ` + name + `, $7::text, $8::text, $9::bigint, $11::boolean
	FROM ok
),
wt AS (
	INSERT INTO tasks (kind, execution_id, seq, queue, run_at, attempt, status, fence, lease_owner, lease_expires_at,
		priority)
	SELECT 'workflow', ok.execution_id, 0, ok.queue, GREATEST($9::bigint, ok.start_at), 0,
		CASE WHEN ok.claim THEN 'claimed' ELSE 'pending' END, CASE WHEN ok.claim THEN stent_fence(0) ELSE 0 END,
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

// FireTimer appends timer_fired (named like the timer_scheduled event of the same
// seq), or signal_timed_out for the timeout of a signal wait, for the timer task, deletes it and enqueues the execution's workflow task,
// atomically.
func (b *Backend) FireTimer(ctx context.Context, ref backend.TaskRef) error {
	_, err := b.takeTask(ctx, takeRequest{
		op:  fmt.Sprintf("firing timer task %d", ref.ID),
		ref: ref, kind: backend.EventTimerFired, needKind: backend.TaskTimer,
	})
	return err
}
