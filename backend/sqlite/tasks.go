package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/stent-go/stent/backend"
)

// Heartbeat records that a worker is alive.
func (b *Backend) Heartbeat(ctx context.Context, workerID string) error {
	return b.write(ctx, "heartbeat of worker "+workerID, func(t *wtx) error {
		_, err := t.exec(t.st.heartbeat, workerID, t.now)
		return err
	})
}

// ReclaimTasks makes claimable again every claimed task whose lease expired or whose
// owner sent no heartbeat within grace (grace <= 0 checks leases only). Worker rows
// silent for an hour are deleted along the way.
func (b *Backend) ReclaimTasks(ctx context.Context, grace time.Duration) (int, error) {
	var n int64
	err := b.write(ctx, "reclaiming tasks", func(t *wtx) error {
		var cutoff any
		if grace > 0 {
			cutoff = t.now - grace.Milliseconds()
		}
		if _, err := t.exec(t.st.countCrashes, t.now, cutoff); err != nil {
			return err
		}
		res, err := t.exec(t.st.reclaim, t.now, cutoff)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = t.exec(t.st.pruneWorkers, t.now-workerRetention.Milliseconds())
		return err
	})
	return int(n), err
}

// claimedTask is a claimed task with its priority, for ordering.
type claimedTask struct {
	task     backend.Task
	priority int
}

// scanClaimed scans claimedColumns.
func scanClaimed(s scanner) (claimedTask, error) {
	var (
		c       claimedTask
		kind    string
		runAt   int64
		payload []byte
		owner   sql.NullString
		expires sql.NullInt64
	)
	tk := &c.task
	if err := s.Scan(&tk.ID, &kind, &tk.ExecutionID, &tk.Seq, &tk.Queue, &runAt, &tk.Attempt, &payload,
		&tk.Fence, &owner, &expires, &c.priority); err != nil {
		return c, err
	}
	tk.Kind = backend.TaskKind(kind)
	tk.RunAt = fromMS(runAt)
	tk.Payload = rawJSON(payload)
	tk.LeaseOwner = owner.String
	if expires.Valid {
		tk.LeaseExpiresAt = fromMS(expires.Int64)
	}
	return c, nil
}

// collectClaimed appends the claimed tasks of rows to out and closes rows.
func collectClaimed(rows *sql.Rows, out []claimedTask) ([]claimedTask, error) {
	defer rows.Close()
	for rows.Next() {
		c, err := scanClaimed(rows)
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// sortClaimed orders claimed tasks as ClaimTasks does: highest priority first, then
// earliest run_at, then id.
func sortClaimed(cs []claimedTask) {
	slices.SortFunc(cs, func(a, b claimedTask) int {
		return cmp.Or(cmp.Compare(b.priority, a.priority), a.task.RunAt.Compare(b.task.RunAt), cmp.Compare(a.task.ID, b.task.ID))
	})
}

// activityName is the activity name stored with a task of the kind: the payload's name
// for an activity task, else NULL.
func activityName(kind backend.TaskKind, payload json.RawMessage) any {
	if kind != backend.TaskActivity || len(payload) == 0 {
		return nil
	}
	var p struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(payload, &p) != nil || p.Name == "" {
		return nil
	}
	return p.Name
}

// capRemaining returns, for each activity name capped by caps, how many more of its
// tasks may be claimed now (cap minus those claimed by anyone; at most 0 when full).
// Writes are serialised, so the count holds until the transaction commits.
func (t *wtx) capRemaining(caps map[string]int) (map[string]int, error) {
	names := make([]string, 0, len(caps))
	remaining := make(map[string]int, len(caps))
	for name, n := range caps {
		names = append(names, name)
		remaining[name] = n
	}
	js, err := json.Marshal(names)
	if err != nil {
		return nil, err
	}
	rows, err := t.query(t.st.claimedActivities, string(js))
	if err != nil {
		return nil, fmt.Errorf("counting claimed activity tasks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			name string
			n    int
		)
		if err := rows.Scan(&name, &n); err != nil {
			return nil, err
		}
		remaining[name] -= n
	}
	return remaining, rows.Err()
}

// claimCapped is the claim of ClaimTasks with MaxConcurrent caps on activity tasks. It
// selects candidates in claim order leaving out the activities at their cap, takes them
// while no cap is reached, and claims them; when a cap is reached in the middle of the
// candidates, it selects again without that activity. So it selects at most once per
// capped activity, plus once.
func (t *wtx) claimCapped(req backend.ClaimRequest, kinds []backend.TaskKind, limit int, expires int64, out []claimedTask) ([]claimedTask, error) {
	remaining, err := t.capRemaining(req.MaxConcurrent)
	if err != nil {
		return out, err
	}
	sel, err := t.st.cappedSelectStmt(t.ctx, t.conn, len(kinds), len(req.Queues), req.RouteActivities)
	if err != nil {
		return out, err
	}
	claimIDs, err := t.st.claimByIDsStmt(t.ctx, t.conn)
	if err != nil {
		return out, err
	}
	args := make([]any, 0, 5+len(kinds)+len(req.Queues))
	args = append(args, req.WorkerID, expires, t.now, 0)
	for _, k := range kinds {
		args = append(args, string(k))
	}
	for _, q := range req.Queues {
		args = append(args, q)
	}
	args = append(args, nil)
	excludeArg := len(args) - 1
	if req.RouteActivities {
		args = append(args, routedJSON(req.Activities))
	}
	for need := limit; need > 0; {
		full := make([]string, 0, len(remaining))
		for name, n := range remaining {
			if n <= 0 {
				full = append(full, name)
			}
		}
		js, err := json.Marshal(full)
		if err != nil {
			return out, err
		}
		args[3], args[excludeArg] = need, string(js)
		rows, err := t.query(sel, args...)
		if err != nil {
			return out, fmt.Errorf("selecting tasks to claim: %w", err)
		}
		ids := make([]byte, 0, 64)
		ids = append(ids, '[')
		took, capReached := 0, false
		for rows.Next() {
			var (
				id   int64
				name sql.NullString
			)
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return out, err
			}
			if n, capped := remaining[name.String]; name.Valid && capped {
				if n <= 0 {
					capReached = true
					break
				}
				remaining[name.String] = n - 1
			}
			if took > 0 {
				ids = append(ids, ',')
			}
			ids = strconv.AppendInt(ids, id, 10)
			took++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return out, err
		}
		if took > 0 {
			ids = append(ids, ']')
			rows, err := t.query(claimIDs, req.WorkerID, expires, t.now, string(ids))
			if err != nil {
				return out, fmt.Errorf("claiming tasks: %w", err)
			}
			if out, err = collectClaimed(rows, out); err != nil {
				return out, err
			}
		}
		need -= took
		if !capReached {
			break // the candidates ran out, or need is met
		}
	}
	return out, nil
}

// ClaimTasks leases up to req.Limit due pending tasks to req.WorkerID, highest priority
// first, then earliest, bumping each one's fence, and never an activity task past its
// req.MaxConcurrent cap. Claiming also counts as the worker's heartbeat.
func (b *Backend) ClaimTasks(ctx context.Context, req backend.ClaimRequest) ([]backend.Task, error) {
	limit := req.Limit
	if limit <= 0 {
		limit = 1
	}
	lease := req.Lease
	if lease <= 0 {
		lease = DefaultLease
	}
	kinds := req.Kinds
	if len(kinds) == 0 {
		kinds = allKinds
	}
	capped := len(req.MaxConcurrent) > 0 && slices.Contains(kinds, backend.TaskActivity)
	var args []any
	if !capped {
		args = make([]any, 0, 4+len(kinds)+len(req.Queues))
		args = append(args, req.WorkerID, nil, nil, limit)
		for _, k := range kinds {
			args = append(args, string(k))
		}
		for _, q := range req.Queues {
			args = append(args, q)
		}
		if req.RouteActivities {
			args = append(args, routedJSON(req.Activities))
		}
	}
	var got []claimedTask
	err := b.write(ctx, "claiming tasks", func(t *wtx) error {
		got = got[:0]
		if _, err := t.exec(t.st.claimHeartbeat, req.WorkerID, t.now); err != nil {
			return err
		}
		expires := t.now + lease.Milliseconds()
		if capped {
			var err error
			got, err = t.claimCapped(req, kinds, limit, expires, got)
			return err
		}
		claim, err := t.st.claimStmt(t.ctx, t.conn, len(kinds), len(req.Queues), req.RouteActivities)
		if err != nil {
			return err
		}
		args[1], args[2] = expires, t.now
		rows, err := t.query(claim, args...)
		if err != nil {
			return err
		}
		got, err = collectClaimed(rows, got)
		return err
	})
	if err != nil {
		return nil, err
	}
	sortClaimed(got)
	out := make([]backend.Task, len(got))
	for i, c := range got {
		out[i] = c.task
	}
	return out, nil
}

// ExtendLeases pushes the leases of tasks still held by the worker to now+lease and
// returns the refs it could not extend.
func (b *Backend) ExtendLeases(ctx context.Context, workerID string, refs []backend.TaskRef, lease time.Duration) ([]backend.TaskRef, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	if lease <= 0 {
		lease = DefaultLease
	}
	var lost []backend.TaskRef
	err := b.write(ctx, "extending leases of worker "+workerID, func(t *wtx) error {
		lost = lost[:0]
		st := t.st.fencedExtend
		for _, r := range refs {
			res, err := st.ExecContext(t.ctx, t.now+lease.Milliseconds(), r.ID, r.Fence, workerID)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			if n == 0 {
				lost = append(lost, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return lost, nil
}

// mustAffect turns "no row changed" into backend.ErrLeaseLost.
func mustAffect(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return backend.ErrLeaseLost
	}
	return nil
}

// ReleaseTask gives a claimed task back, runnable at runAt (now when zero).
func (b *Backend) ReleaseTask(ctx context.Context, ref backend.TaskRef, runAt time.Time) error {
	return b.write(ctx, fmt.Sprintf("releasing task %d", ref.ID), func(t *wtx) error {
		return mustAffect(t.exec(t.st.fencedRelease, msOr(runAt, t.now), ref.ID, ref.Fence))
	})
}

// RetryActivityTask schedules the next attempt of a claimed activity task.
func (b *Backend) RetryActivityTask(ctx context.Context, ref backend.TaskRef, runAt time.Time, attempt int, payload json.RawMessage) error {
	return b.write(ctx, fmt.Sprintf("retrying task %d", ref.ID), func(t *wtx) error {
		return mustAffect(t.exec(t.st.fencedRetry, msOr(runAt, t.now), attempt, jsonArg(payload), ref.ID, ref.Fence))
	})
}

// DeleteTask removes a claimed task without recording anything.
func (b *Backend) DeleteTask(ctx context.Context, ref backend.TaskRef) error {
	return b.write(ctx, fmt.Sprintf("deleting task %d", ref.ID), func(t *wtx) error {
		_, _, _, err := t.fencedDelete(ref)
		return err
	})
}

// fencedDelete deletes the claimed task and returns its execution and seq, or
// backend.ErrLeaseLost.
func (t *wtx) fencedDelete(ref backend.TaskRef) (kind, executionID string, seq int, err error) {
	err = t.queryRow(t.st.fencedDelete, ref.ID, ref.Fence).Scan(&kind, &executionID, &seq)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", 0, backend.ErrLeaseLost
	}
	return kind, executionID, seq, err
}

// CompleteActivityTask records an activity's final outcome, deletes its task and
// enqueues the execution's workflow task, atomically. A successful result with Cache
// set is stored in the result cache in the same transaction, even when the execution
// ended meanwhile (the activity did run and succeed).
func (b *Backend) CompleteActivityTask(ctx context.Context, r backend.ActivityResult) error {
	return b.write(ctx, fmt.Sprintf("completing activity task %d", r.Task.ID), func(t *wtx) error {
		_, _, err := t.completeActivity(r)
		return err
	})
}

// completeActivity is the transaction of CompleteActivityTask. When it enqueued the
// execution's workflow task, wfID is that task and pending tells that it is pending
// and due (it is not when its holder only got the rerun flag).
func (t *wtx) completeActivity(r backend.ActivityResult) (wfID int64, pending bool, err error) {
	_, execID, seq, err := t.fencedDelete(r.Task)
	if err != nil {
		return 0, false, err
	}
	if r.ExecutionID != "" && r.ExecutionID != execID {
		return 0, false, fmt.Errorf("task %d belongs to execution %s, not %s", r.Task.ID, execID, r.ExecutionID)
	}
	if r.Seq != 0 {
		seq = r.Seq
	}
	kind := backend.EventActivityCompleted
	var data any
	if r.Error != nil {
		kind = backend.EventActivityFailed
	} else {
		data = jsonArg(r.Result)
		if data == nil {
			data = "null"
		}
	}
	errv, err := errArg(r.Error)
	if err != nil {
		return 0, false, err
	}
	if r.Cache != nil && r.Error == nil {
		if err := t.putCache(*r.Cache, r.Name, data); err != nil {
			return 0, false, err
		}
	}
	res, err := t.exec(t.st.insertEventIfRunning, execID, seq, string(kind), r.Name, data, errv, t.now, r.CacheHit)
	if err != nil {
		return 0, false, fmt.Errorf("appending %s event: %w", kind, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, false, err
	} else if n == 0 {
		return 0, false, nil // the execution ended meanwhile: the task is just dropped
	}
	return t.enqueueWorkflowTask(execID)
}

// FireTimer appends timer_fired for the timer task, deletes it and enqueues the
// execution's workflow task, atomically.
func (b *Backend) FireTimer(ctx context.Context, ref backend.TaskRef) error {
	return b.write(ctx, fmt.Sprintf("firing timer task %d", ref.ID), func(t *wtx) error {
		kind, execID, seq, err := t.fencedDelete(ref)
		if err != nil {
			return err
		}
		if kind != string(backend.TaskTimer) {
			return fmt.Errorf("task %d is a %s task, not a timer", ref.ID, kind)
		}
		// timer_fired carries the name of the timer_scheduled event of the same seq.
		name := "sleep"
		err = t.queryRow(t.st.timerName, execID, seq).Scan(&name)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		res, err := t.exec(t.st.insertEventIfRunning, execID, seq, string(backend.EventTimerFired), name, nil, nil, t.now, false)
		if err != nil {
			return fmt.Errorf("appending timer_fired event: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return nil
		}
		return t.enqueueWorkflow(execID)
	})
}

// CompleteWorkflowTask commits a workflow task's output atomically and returns the
// execution's new version.
func (b *Backend) CompleteWorkflowTask(ctx context.Context, r backend.WorkflowTaskResult) (int64, error) {
	var newVersion int64
	err := b.write(ctx, fmt.Sprintf("completing workflow task %d of %s", r.Task.ID, r.ExecutionID), func(t *wtx) error {
		return t.completeWorkflow(r, &newVersion, nil)
	})
	if err != nil {
		return 0, err
	}
	return newVersion, nil
}

// createdTask is a task created by completeWorkflow.
type createdTask struct {
	id    int64
	kind  backend.TaskKind
	seq   int
	queue string
	runAt int64 // unix ms
	// activity is an activity task's activity name.
	activity string
}

// completeWorkflow is the transaction of CompleteWorkflowTask. It sets *newVersion
// and, when created is not nil, appends the tasks it created (r.Tasks, in order).
func (t *wtx) completeWorkflow(r backend.WorkflowTaskResult, newVersion *int64, created *[]createdTask) error {
	st := t.st
	var (
		kind, execID, status, parentID, entry, queue string
		rerun, parentSeq, run, parentRun             int
		version                                      int64
	)
	if r.Finish != nil && r.ContinueAsNew != nil {
		return errors.New("a workflow task result cannot both finish and continue as new")
	}
	err := t.queryRow(st.workflowTaskForUpdate, r.Task.ID, r.Task.Fence).Scan(&kind, &execID, &rerun,
		&status, &version, &parentID, &parentSeq, &entry, &queue, &run, &parentRun)
	if errors.Is(err, sql.ErrNoRows) {
		return backend.ErrLeaseLost
	}
	if err != nil {
		return err
	}
	if kind != string(backend.TaskWorkflow) || execID != r.ExecutionID {
		return fmt.Errorf("task %d is a %s task of execution %s, not the workflow task of %s",
			r.Task.ID, kind, execID, r.ExecutionID)
	}
	if status != string(backend.StatusRunning) || version != r.ExpectedVersion {
		return fmt.Errorf("execution %s is %s at version %d, expected running at version %d: %w",
			r.ExecutionID, status, version, r.ExpectedVersion, backend.ErrStaleExecution)
	}
	return t.applyWorkflowResult(r, stepTarget{task: r.Task.ID, rerun: rerun != 0, parentID: parentID, entry: entry,
		queue: queue, parentSeq: parentSeq, run: run, parentRun: parentRun}, newVersion, created)
}

// stepTarget is what applyWorkflowResult needs to know of the execution a step
// advances, and of its workflow task (task 0: there is none, see CompleteActivityAndStep).
type stepTarget struct {
	task                      int64
	rerun                     bool
	parentID, entry, queue    string
	parentSeq, run, parentRun int
}

// applyWorkflowResult writes a checked workflow task result: events, tasks, children,
// logs, signals, timers, then the version bump (and the workflow task's removal or
// rerun), the finish or the restart.
func (t *wtx) applyWorkflowResult(r backend.WorkflowTaskResult, w stepTarget, newVersion *int64, created *[]createdTask) error {
	st := t.st
	queue, run := w.queue, w.run
	for _, ev := range r.Events {
		if err := t.appendEvent(r.ExecutionID, ev); err != nil {
			return err
		}
	}
	for _, nt := range r.Tasks {
		if nt.Kind != backend.TaskActivity && nt.Kind != backend.TaskTimer {
			return fmt.Errorf("cannot create a %q task through CompleteWorkflowTask (only activity and timer tasks)", nt.Kind)
		}
		q := nt.Queue
		if q == "" {
			q = queue
		}
		attempt := nt.Attempt
		if attempt == 0 && nt.Kind == backend.TaskActivity {
			attempt = 1
		}
		runAt := msOr(nt.RunAt, t.now)
		activity := activityName(nt.Kind, nt.Payload)
		res, err := t.exec(st.insertTask, string(nt.Kind), r.ExecutionID, nt.Seq, q, runAt, attempt, jsonArg(nt.Payload),
			nt.Priority, activity)
		if err != nil {
			return fmt.Errorf("creating %s task for seq %d: %w", nt.Kind, nt.Seq, err)
		}
		if created != nil {
			id, err := res.LastInsertId()
			if err != nil {
				return err
			}
			name, _ := activity.(string)
			*created = append(*created, createdTask{id: id, kind: nt.Kind, seq: nt.Seq, queue: q, runAt: runAt, activity: name})
		}
	}
	for _, child := range r.Children {
		if child.ParentID == "" {
			child.ParentID = r.ExecutionID
		}
		if _, err := t.createExecution(child, queue, run); err != nil {
			return err
		}
	}
	for _, line := range r.Logs {
		if _, err := t.exec(st.insertLog, r.ExecutionID, run, t.now, line); err != nil {
			return fmt.Errorf("writing log line: %w", err)
		}
	}
	for _, id := range r.ConsumedSignals {
		if _, err := t.exec(st.consumeSignal, t.now, id, r.ExecutionID); err != nil {
			return fmt.Errorf("consuming signal %d: %w", id, err)
		}
	}
	for _, seq := range r.CancelTimers {
		if _, err := t.exec(st.cancelTimer, r.ExecutionID, seq); err != nil {
			return fmt.Errorf("cancelling the timer at seq %d: %w", seq, err)
		}
	}

	if r.ContinueAsNew != nil {
		return t.continueAsNew(r.ExecutionID, r.ContinueAsNew, newVersion)
	}
	if r.Finish == nil {
		if err := t.queryRow(st.bumpVersion, t.now, r.ExecutionID).Scan(newVersion); err != nil {
			return err
		}
		var err error
		switch {
		case w.task == 0:
		case w.rerun:
			_, err = t.exec(st.rerunTask, t.now, w.task)
			t.requeued = append(t.requeued, w.queue)
		default:
			_, err = t.exec(st.deleteTask, w.task)
		}
		return err
	}
	if err := t.finish(r.ExecutionID, *r.Finish, w.parentID, w.parentSeq, w.parentRun, w.entry, newVersion); err != nil {
		return err
	}
	if r.DeadLetter != nil && r.Finish.Status == backend.StatusFailed {
		return t.insertDeadLetter(r.ExecutionID, *r.DeadLetter, r.Finish.Error)
	}
	return nil
}

// finish ends an execution: status, result and event, removal of its tasks, and the
// parent's child_completed event and workflow task.
func (t *wtx) finish(execID string, f backend.Finish, parentID string, parentSeq, parentRun int, entry string, newVersion *int64) error {
	st := t.st
	if f.Status == "" || !f.Status.Terminal() {
		return fmt.Errorf("finishing %s: status %q is not terminal", execID, f.Status)
	}
	var result json.RawMessage
	errInfo := f.Error
	ev := backend.NewEvent{Kind: backend.EventFailed}
	if f.Status == backend.StatusCompleted {
		result = f.Result
		if len(result) == 0 {
			result = json.RawMessage("null")
		}
		errInfo = nil
		ev = backend.NewEvent{Kind: backend.EventCompleted, Data: result}
	} else {
		if errInfo == nil {
			errInfo = &backend.ErrorInfo{Message: "execution " + string(f.Status), Type: string(f.Status)}
		}
		ev.Error = errInfo
	}
	errv, err := errArg(errInfo)
	if err != nil {
		return err
	}
	if err := t.queryRow(st.finish, string(f.Status), jsonArg(result), errv, t.now, t.now, execID).Scan(newVersion); err != nil {
		return fmt.Errorf("finishing %s: %w", execID, err)
	}
	if err := t.appendEvent(execID, ev); err != nil {
		return err
	}
	if _, err := t.exec(st.deleteExecTasks, execID); err != nil {
		return fmt.Errorf("deleting tasks of %s: %w", execID, err)
	}
	return t.notifyParent(parentID, parentSeq, parentRun, entry, jsonArg(result), errv)
}

// notifyParent appends a child's child_completed event to its parent and enqueues the
// parent's workflow task, unless there is no parent, it ended, or it continued as new
// since it started the child (parentRun).
func (t *wtx) notifyParent(parentID string, parentSeq, parentRun int, entry string, result, errv any) error {
	if parentID == "" {
		return nil
	}
	res, err := t.exec(t.st.insertParentEvent, parentID, parentSeq, string(backend.EventChildCompleted), entry,
		result, errv, t.now, parentRun)
	if err != nil {
		return fmt.Errorf("appending child_completed to parent %s: %w", parentID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return nil // the parent ended already (or is in a later run)
	}
	return t.enqueueWorkflow(parentID)
}

// continueAsNew restarts the execution under the same ID: a fresh history (one
// started event with args) and task set (but its deadline task), Run incremented, a
// workflow task runnable now. Logs and pending signals are kept.
func (t *wtx) continueAsNew(execID string, args json.RawMessage, newVersion *int64) error {
	st := t.st
	if len(args) == 0 {
		args = json.RawMessage("[]")
	}
	// The fresh history's started event is appended before the old history is
	// deleted: event ids are rowids (largest + 1), so appending first keeps this
	// execution's ids growing for whoever follows its history.
	started, err := t.appendEventID(execID, backend.NewEvent{Kind: backend.EventStarted, Data: args})
	if err != nil {
		return err
	}
	if _, err := t.exec(st.deleteExecEvents, execID, started); err != nil {
		return fmt.Errorf("deleting the history of %s: %w", execID, err)
	}
	if _, err := t.exec(st.deleteExecTasksButDead, execID); err != nil {
		return fmt.Errorf("deleting the tasks of %s: %w", execID, err)
	}
	if err := t.queryRow(st.continueAsNew, string(args), t.now, execID).Scan(newVersion); err != nil {
		return fmt.Errorf("continuing %s as new: %w", execID, err)
	}
	// The new workflow task has the execution's queue and priority.
	if _, err := t.exec(st.insertWorkflowTask, execID, t.now); err != nil {
		return fmt.Errorf("creating workflow task of %s: %w", execID, err)
	}
	return nil
}
