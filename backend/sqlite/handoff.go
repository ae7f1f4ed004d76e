package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/stent-go/stent/backend"
)

var _ backend.HandOff = (*Backend)(nil)

// claimSet leases tasks exactly as ClaimTasks does. Arguments: ?1 owner, ?2 lease
// expiry.
const claimSet = `UPDATE tasks SET status = 'claimed', fence = fence + 1, lease_owner = ?1, lease_expires_at = ?2, rerun = 0`

// claimByIDSQL claims the task ?4 if it is pending and due (?3 now), and with nQueues
// > 0 on one of the queues ?5, ?6, ...
func claimByIDSQL(nQueues int) string {
	var q strings.Builder
	q.WriteString(claimSet + ` WHERE id = ?4 AND status = 'pending' AND run_at <= ?3`)
	if nQueues > 0 {
		q.WriteString(" AND queue IN (")
		for i := 0; i < nQueues; i++ {
			if i > 0 {
				q.WriteString(", ")
			}
			fmt.Fprintf(&q, "?%d", 5+i)
		}
		q.WriteString(")")
	}
	q.WriteString(" RETURNING " + claimedColumns)
	return q.String()
}

// sqlClaimByIDs claims those of the tasks whose ids are in the JSON array ?4 that are
// pending and due (?3 now).
const sqlClaimByIDs = claimSet + ` WHERE id IN (SELECT value FROM json_each(?4)) AND status = 'pending' AND run_at <= ?3
	RETURNING ` + claimedColumns

// claimByIDStmt returns the statement of claimByIDSQL(nQueues), preparing it on first
// use. The caller holds the writer connection.
func (s *stmts) claimByIDStmt(ctx context.Context, p preparer, nQueues int) (*sql.Stmt, error) {
	if st := s.claimByID[nQueues]; st != nil {
		return st, nil
	}
	st, err := p.PrepareContext(ctx, claimByIDSQL(nQueues))
	if err != nil {
		return nil, err
	}
	if s.claimByID == nil {
		s.claimByID = map[int]*sql.Stmt{}
	}
	s.claimByID[nQueues] = st
	s.all = append(s.all, st)
	return st, nil
}

// claimByIDsStmt returns the statement of sqlClaimByIDs, preparing it on first use.
func (s *stmts) claimByIDsStmt(ctx context.Context, p preparer) (*sql.Stmt, error) {
	if s.claimByIDs == nil {
		st, err := p.PrepareContext(ctx, sqlClaimByIDs)
		if err != nil {
			return nil, err
		}
		s.claimByIDs = st
		s.all = append(s.all, st)
	}
	return s.claimByIDs, nil
}

// claimFor holds what a hand-off claim needs from a ClaimRequest, with ClaimTasks'
// defaults applied.
type claimFor struct {
	worker  string
	expires int64 // unix ms
	limit   int
	queues  []string
	kinds   []backend.TaskKind
	caps    map[string]int // MaxConcurrent
	// route: claim only activity tasks of these activities (ClaimRequest.RouteActivities).
	route      bool
	activities []string
}

func (t *wtx) claimFor(req backend.ClaimRequest) claimFor {
	lease := req.Lease
	if lease <= 0 {
		lease = DefaultLease
	}
	limit := req.Limit
	if limit <= 0 {
		limit = 1
	}
	return claimFor{worker: req.WorkerID, expires: t.now + lease.Milliseconds(), limit: limit,
		queues: req.Queues, kinds: req.Kinds, caps: req.MaxConcurrent, route: req.RouteActivities, activities: req.Activities}
}

// runs says whether the claimer may take an activity task of this activity.
func (c claimFor) runs(activity string) bool {
	return !c.route || slices.Contains(c.activities, activity)
}

func (c claimFor) wants(kind backend.TaskKind) bool {
	return len(c.kinds) == 0 || slices.Contains(c.kinds, kind)
}

func (c claimFor) onQueue(q string) bool {
	return len(c.queues) == 0 || slices.Contains(c.queues, q)
}

// claimTask claims the task id for c if it is pending, due and, when c names queues,
// on one of them. ok is false when it is not.
func (t *wtx) claimTask(c claimFor, id int64, checkQueue bool) (tk backend.Task, ok bool, err error) {
	nq := 0
	if checkQueue {
		nq = len(c.queues)
	}
	st, err := t.st.claimByIDStmt(t.ctx, t.conn, nq)
	if err != nil {
		return tk, false, err
	}
	var buf [8]any
	args := append(buf[:0], c.worker, c.expires, t.now, id)
	for _, q := range c.queues[:nq] {
		args = append(args, q)
	}
	c2, err := scanClaimed(t.queryRow(st, args...))
	tk = c2.task
	if errors.Is(err, sql.ErrNoRows) {
		return tk, false, nil
	}
	if err != nil {
		return tk, false, fmt.Errorf("claiming task %d: %w", id, err)
	}
	return tk, true, nil
}

// CompleteActivityTaskAndClaim is CompleteActivityTask that also claims the
// execution's workflow task for claim.WorkerID, in the same transaction, when that
// task is then pending and due and on one of claim.Queues (any when empty; claim.Kinds,
// when given, must include workflow tasks). It returns nil when it claimed nothing:
// the execution ended, the workflow task is held by another worker (which got the
// rerun flag) or it is filtered out. Unlike ClaimTasks it does not record a heartbeat
// for the worker, which already holds the activity task.
func (b *Backend) CompleteActivityTaskAndClaim(ctx context.Context, r backend.ActivityResult, claim backend.ClaimRequest) (*backend.Task, error) {
	var out *backend.Task
	err := b.write(ctx, fmt.Sprintf("completing activity task %d", r.Task.ID), func(t *wtx) error {
		out = nil
		id, pending, err := t.completeActivity(r)
		if err != nil {
			return err
		}
		c := t.claimFor(claim)
		if !pending || !c.wants(backend.TaskWorkflow) {
			return nil
		}
		tk, ok, err := t.claimTask(c, id, true)
		if ok {
			out = &tk
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CompleteWorkflowTaskAndClaim is CompleteWorkflowTask that also claims, in the same
// transaction, up to claim.Limit (1 when not positive) of the activity tasks it
// created that are due and on one of claim.Queues (any when empty; claim.Kinds, when
// given, must include activity tasks), in sequence order. Nothing is claimed when the
// result finishes the execution or continues it as new. Like
// CompleteActivityTaskAndClaim it records no heartbeat.
func (b *Backend) CompleteWorkflowTaskAndClaim(ctx context.Context, r backend.WorkflowTaskResult, claim backend.ClaimRequest) (int64, []backend.Task, error) {
	var (
		newVersion int64
		out        []backend.Task
	)
	err := b.write(ctx, fmt.Sprintf("completing workflow task %d of %s", r.Task.ID, r.ExecutionID), func(t *wtx) error {
		out = nil
		var created []createdTask
		if err := t.completeWorkflow(r, &newVersion, &created); err != nil {
			return err
		}
		c := t.claimFor(claim)
		if r.Finish != nil || r.ContinueAsNew != nil || !c.wants(backend.TaskActivity) {
			return nil
		}
		var err error
		out, err = t.claimCreated(c, created)
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	return newVersion, out, nil
}

// claimCreated claims for c up to c.limit of the activity tasks a workflow result
// created that are due and on one of c's queues, in sequence order, leaving out those
// at their MaxConcurrent cap.
func (t *wtx) claimCreated(c claimFor, created []createdTask) ([]backend.Task, error) {
	var out []backend.Task
	err := func() error {
		// The candidates, in r.Tasks order; keep the first c.limit by seq.
		pick := created[:0]
		for _, ct := range created {
			if ct.kind == backend.TaskActivity && ct.runAt <= t.now && c.onQueue(ct.queue) && c.runs(ct.activity) {
				pick = append(pick, ct)
			}
		}
		slices.SortStableFunc(pick, func(a, b createdTask) int { return cmp.Compare(a.seq, b.seq) })
		if len(c.caps) > 0 && len(pick) > 0 {
			// Leave out the activities at their MaxConcurrent cap, as ClaimTasks does.
			remaining, err := t.capRemaining(c.caps)
			if err != nil {
				return err
			}
			kept := pick[:0]
			for _, ct := range pick {
				if n, capped := remaining[ct.activity]; ct.activity != "" && capped {
					if n <= 0 {
						continue
					}
					remaining[ct.activity] = n - 1
				}
				kept = append(kept, ct)
				if len(kept) == c.limit {
					break
				}
			}
			pick = kept
		}
		if len(pick) > c.limit {
			pick = pick[:c.limit]
		}
		switch len(pick) {
		case 0:
			return nil
		case 1:
			tk, ok, err := t.claimTask(c, pick[0].id, false)
			if ok {
				out = []backend.Task{tk}
			}
			return err
		}
		st, err := t.st.claimByIDsStmt(t.ctx, t.conn)
		if err != nil {
			return err
		}
		ids := make([]byte, 0, 1+12*len(pick))
		ids = append(ids, '[')
		for i, ct := range pick {
			if i > 0 {
				ids = append(ids, ',')
			}
			ids = strconv.AppendInt(ids, ct.id, 10)
		}
		ids = append(ids, ']')
		rows, err := t.query(st, c.worker, c.expires, t.now, string(ids))
		if err != nil {
			return fmt.Errorf("claiming the new activity tasks: %w", err)
		}
		got, err := collectClaimed(rows, make([]claimedTask, 0, len(pick)))
		if err != nil {
			return err
		}
		out = make([]backend.Task, len(got))
		for i, c := range got {
			out[i] = c.task
		}
		slices.SortFunc(out, func(a, b backend.Task) int {
			return cmp.Or(cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.ID, b.ID))
		})
		return nil
	}()
	return out, err
}
