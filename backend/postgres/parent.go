package postgres

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/backend"
)

const (
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
		CASE WHEN p.claim THEN stent_fence(0) ELSE 0 END, CASE WHEN p.claim THEN $5::text END, CASE WHEN p.claim THEN $6::bigint END,
		p.priority
	FROM p
	` + sqlEnqueueAndClaimConflict + `
	RETURNING id, status, rerun, run_at, fence, lease_owner, lease_expires_at
)
SELECT p.id, p.queue, wt.id, wt.status, wt.rerun, wt.run_at, wt.fence, wt.lease_owner, wt.lease_expires_at FROM p, wt`

var _ backend.ParentHandOff = (*Backend)(nil)

// ClaimsParentWorkflowTasks marks the backend.ParentHandOff extension.
func (*Backend) ClaimsParentWorkflowTasks() {}

var _ backend.FusedGathers = (*Backend)(nil)

// FusesGathers marks the backend.FusedGathers extension.
func (*Backend) FusesGathers() {}

// FusesParentSteps tells the engine a child's end may carry its parent's next step
// (backend.ParentSteps).
func (*Backend) FusesParentSteps() {}

// sqlBeginParentStep opens a parent's step committed with its child's end.
const sqlBeginParentStep = `SELECT o_queue, o_version, o_event
	FROM stent_begin_parent_step($1, $2, $3, $4, $5, $6, $7, $8)`

// parentOpener opens the commit of a parent's step in the transaction that ends its
// child: the child's outcome is the parent's child_completed event.
type parentOpener struct {
	child        string
	result, errv *string
	eventID      int64 // set by read
}

func (p *parentOpener) queue(bt *pgx.Batch, r backend.WorkflowTaskResult, ending bool, now int64) {
	bt.Queue(sqlBeginParentStep, p.child, r.ExecutionID, r.ExpectedVersion, r.SeenThrough, ending, now, p.result, p.errv)
}

func (p *parentOpener) read(br pgx.BatchResults, queue *string, version **int64, _ *txState) error {
	return br.QueryRow().Scan(queue, version, &p.eventID)
}

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
