package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/backend"
)

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
			CASE WHEN u.c THEN stent_fence(0) ELSE 0 END, CASE WHEN u.c THEN $9::text END, CASE WHEN u.c THEN $10::bigint END,
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
			CASE WHEN s.c THEN 'claimed' ELSE 'pending' END, CASE WHEN s.c THEN stent_fence(0) ELSE 0 END,
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
)

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
	build := func(bt *pgx.Batch) error {
		if claim != nil {
			claim.left = claim.limit
		}
		return st.build(bt, toMS(b.now()))
	}
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
	case *parentOpener:
		op = fmt.Sprintf("committing the step of %s with the end of its child %s", r.ExecutionID, a.child)
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
	// The children created with their first steps share the claim (what the steps
	// built before them left of it, claim.left): the activities a tree dispatched at
	// once ends in are claimed by the commit that creates them, for the worker that
	// took the steps, instead of going pending for a claim.
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
			cst, err := b.prepareStep(step, claim, &childOpener{id: child.ID})
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
	// The parent's step carried by this child's end, opened by the child's outcome.
	var (
		parent   *backend.ParentStep
		parentSt *pgStep
		parentOp *parentOpener
	)
	if ps := r.ParentStep; ps != nil && f != nil && !r.NoParent {
		parent, parentOp = ps, &parentOpener{child: r.ExecutionID, result: fi.result, errv: fi.errv}
		var err error
		if parentSt, err = b.prepareStep(ps.Step, claim, parentOp); err != nil {
			return nil, err
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
			if claim != nil && claim.left > 0 && claim.wants(backend.TaskActivity) {
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
				if owner != nil {
					claim.left -= countTrue(flags)
				}
			default:
				if len(capNames) > 0 {
					// After the execution's lock (taken by sqlBeginWorkflowTask): executions
					// are always locked before caps, and claims lock caps only.
					bt.Queue(capLocksSQL, b.schema, capNames)
				}
				bt.Queue(sqlInsertTasksRanked, r.ExecutionID, tkKinds, tkSeqs, tkQueues, tkRunAts, tkAttempts,
					tkPayloads, claim.left, owner, expires, now, claim.queues, tkPriority, tkActivities,
					capNames, capLimits)
				claim.left = 0 // the server chooses: the steps built after claim nothing
			}
		}
		if len(r.Children) > 0 {
			for i, at := range children.startAts {
				if at == 0 {
					children.startAts[i] = now
				}
			}
			sql, args := children.statement(now)
			bt.Queue(sql, args...)
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
			switch {
			case parentSt != nil:
				if err := parentSt.build(bt, now); err != nil {
					return err
				}
			case !r.NoParent:
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
				claimed = append(claimed, cst.claimed...)
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
			case parentSt != nil:
				if err := parentSt.read(br, s); err != nil {
					return err
				}
				parent.Version, parent.EventID, parent.Claimed = parentSt.newVersion, parentOp.eventID, parentSt.claimed
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
