package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/stent-go/stent/backend"
)

// The sequential step: an activity completes and the script, fed its outcome, asks for
// exactly one more activity, which this worker takes. CompleteActivityAndStep commits
// it in three statements instead of seven, and writes fewer pages:
//
//   - the version bump checks the execution (running, at the expected version);
//   - the completed activity's task row becomes the next activity's, claimed (same row
//     and execution, so the tasks_execution index is untouched; the fence moves on, so
//     a stale holder of the old task can no longer complete it);
//   - both events (the completion and the next step's scheduling) in one insert.
//
// Whenever one of them finds something unusual (a stale execution, a lost lease, a task
// that is not this execution's activity), the transaction rolls back and the general
// path runs and says what it is.

// errFastMiss rolls a fast step back for the general path.
var errFastMiss = errors.New("not a sequential step")

const (
	sqlFastBump = `UPDATE executions SET version = version + 1, updated_at = ?1
		WHERE id = ?2 AND status = 'running' AND version = ?3 RETURNING version, queue`
	// The row keeps its run_at and priority, so its entry in the claim indexes (kind,
	// status, run_at, id; partial on priority) stays where it is: one page fewer per
	// step. No claim reads a claimed task's run_at; the claimed task is returned with
	// the new one. A next activity of another priority is not a sequential step.
	sqlFastNextTask = `UPDATE tasks SET seq = ?1, queue = ?2, attempt = 1, payload = ?4,
		activity = ?6, fence = fence + 1, lease_owner = ?7, lease_expires_at = ?8, rerun = 0
		WHERE id = ?9 AND fence = ?10 AND status = 'claimed' AND kind = 'activity' AND execution_id = ?11 AND priority = ?5
		RETURNING `
	sqlFastEvents = `INSERT INTO events (execution_id, seq, kind, name, data, error, at, cache_hit)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8), (?1, ?9, ?10, ?11, ?12, NULL, ?7, 0) RETURNING id`
)

// sqlFastNextTaskReturning is sqlFastNextTask with the claimed columns, run_at given
// as the new one (?3) rather than the row's.
var sqlFastNextTaskReturning = sqlFastNextTask + strings.Replace(claimedColumns, "run_at", "?3", 1)

// fastStmts are the fast step's statements, prepared on first use on the writer.
type fastStmts struct{ bump, next, events *sql.Stmt }

func (s *stmts) fastStmts(ctx context.Context, p preparer) (*fastStmts, error) {
	if s.fast != nil {
		return s.fast, nil
	}
	f := &fastStmts{}
	for _, x := range []struct {
		dst **sql.Stmt
		q   string
	}{{&f.bump, sqlFastBump}, {&f.next, sqlFastNextTaskReturning}, {&f.events, sqlFastEvents}} {
		st, err := p.PrepareContext(ctx, x.q)
		if err != nil {
			return nil, err
		}
		*x.dst = st
		s.all = append(s.all, st)
	}
	s.fast = f
	return f, nil
}

// fastStep commits a sequential step (see above), or returns errFastMiss having
// written nothing that the rollback does not undo.
func (t *wtx) fastStep(r backend.ActivityResult, ev backend.NewEvent, step backend.WorkflowTaskResult, nt backend.NewTask, c claimFor, out *backend.StepCommit) error {
	if !c.wants(backend.TaskActivity) || r.Seq == 0 || msOr(nt.RunAt, t.now) > t.now {
		return errFastMiss
	}
	activity, _ := activityName(nt.Kind, nt.Payload).(string)
	if activity == "" || !c.runs(activity) || (nt.Queue != "" && !c.onQueue(nt.Queue)) {
		return errFastMiss
	}
	f, err := t.st.fastStmts(t.ctx, t.conn)
	if err != nil {
		return err
	}
	var queue string
	err = t.queryRow(f.bump, t.now, step.ExecutionID, step.ExpectedVersion).Scan(&out.Version, &queue)
	if errors.Is(err, sql.ErrNoRows) {
		return errFastMiss
	}
	if err != nil {
		return err
	}
	if nt.Queue != "" {
		queue = nt.Queue
	}
	if !c.onQueue(queue) {
		return errFastMiss
	}
	claimed, err := scanClaimed(t.queryRow(f.next, nt.Seq, queue, msOr(nt.RunAt, t.now), string(nt.Payload), nt.Priority,
		activity, c.worker, c.expires, r.Task.ID, r.Task.Fence, step.ExecutionID))
	if errors.Is(err, sql.ErrNoRows) {
		return errFastMiss
	}
	if err != nil {
		return err
	}
	errv, err := t.cacheCompletion(r, ev)
	if err != nil {
		return err
	}
	// RETURNING gives the rows in no set order: the completion's id is the smaller.
	sched := step.Events[0]
	rows, err := t.query(f.events, step.ExecutionID, ev.Seq, string(ev.Kind), ev.Name, jsonArg(ev.Data), errv, t.now, r.CacheHit,
		sched.Seq, string(sched.Kind), sched.Name, jsonArg(sched.Data))
	if err != nil {
		return fmt.Errorf("appending %s and %s events: %w", ev.Kind, sched.Kind, err)
	}
	out.EventID = 0
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		if out.EventID == 0 || id < out.EventID {
			out.EventID = id
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("appending %s and %s events: %w", ev.Kind, sched.Kind, err)
	}
	out.Claimed = []backend.Task{claimed.task}
	return nil
}
