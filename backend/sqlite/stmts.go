package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/stent-go/stent/backend"
)

// taskColumns is the column list of a task.
const taskColumns = `id, kind, execution_id, seq, queue, run_at, attempt, payload, fence, lease_owner, lease_expires_at`

// claimedColumns is the column list scanned by scanClaimed: a task and its priority.
const claimedColumns = taskColumns + `, priority`

// Writer statements (prepared on the writer connection, used inside transactions).
const (
	sqlInsertExecution = `INSERT INTO executions (id, parent_id, parent_seq, parent_run, bundle, entry, args, queue, status,
		version, run, created_at, updated_at, start_at, deadline, priority)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', 0, 1, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`
	sqlInsertScript = `INSERT OR IGNORE INTO scripts (hash, source) VALUES (?, ?)`
	sqlInsertEvent  = `INSERT INTO events (execution_id, seq, kind, name, data, error, at) VALUES (?, ?, ?, ?, ?, ?, ?)`
	// sqlInsertEventIfRunning appends an event only while the execution is running.
	sqlInsertEventIfRunning = `INSERT INTO events (execution_id, seq, kind, name, data, error, at, cache_hit)
		SELECT id, ?2, ?3, ?4, ?5, ?6, ?7, ?8 FROM executions WHERE id = ?1 AND status = 'running'`
	// sqlInsertParentEvent appends a child's outcome to its parent, only while the parent
	// is running the run (?8) that started the child.
	sqlInsertParentEvent = `INSERT INTO events (execution_id, seq, kind, name, data, error, at)
		SELECT id, ?2, ?3, ?4, ?5, ?6, ?7 FROM executions WHERE id = ?1 AND status = 'running' AND run = ?8`
	// sqlInsertTask: priority, and the activity name of an activity task (else NULL).
	sqlInsertTask = `INSERT INTO tasks (kind, execution_id, seq, queue, run_at, attempt, payload, status, priority, activity)
		VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)`
	// Enqueueing the execution's workflow task: a new pending task, an earlier run_at
	// for a pending one, the rerun flag for a claimed one.
	sqlFindWorkflowTask = `SELECT id, status, run_at, rerun FROM tasks
		WHERE execution_id = ? AND kind = 'workflow' ORDER BY id LIMIT 1`
	// sqlInsertWorkflowTask creates the execution's workflow task, with its queue and
	// priority.
	sqlInsertWorkflowTask = `INSERT INTO tasks (kind, execution_id, seq, queue, run_at, attempt, status, priority)
		SELECT 'workflow', id, 0, queue, ?2, 0, 'pending', priority FROM executions WHERE id = ?1`
	sqlSetRerun = `UPDATE tasks SET rerun = 1 WHERE id = ?`
	// sqlSetRunAt pulls a pending workflow task's run_at to now (?1), but never before
	// its execution's start: a signal must not start a delayed execution early.
	sqlSetRunAt = `UPDATE tasks SET run_at = max(?1, (SELECT e.start_at FROM executions e WHERE e.id = tasks.execution_id))
		WHERE id = ?2 RETURNING run_at`
	sqlInsertLog = `INSERT INTO logs (execution_id, run, at, message) VALUES (?, ?, ?, ?)`

	// sqlWorkflowTaskForUpdate reads a claimed task (by id and fence) with its execution.
	sqlWorkflowTaskForUpdate = `SELECT t.kind, t.execution_id, t.rerun,
			e.status, e.version, e.parent_id, e.parent_seq, e.entry, e.queue, e.run, e.parent_run
		FROM tasks t JOIN executions e ON e.id = t.execution_id
		WHERE t.id = ? AND t.fence = ? AND t.status = 'claimed'`
	sqlBumpVersion = `UPDATE executions SET version = version + 1, updated_at = ? WHERE id = ? RETURNING version`
	sqlFinish      = `UPDATE executions SET status = ?, result = ?, error = ?, completed_at = ?, updated_at = ?,
		version = version + 1 WHERE id = ? RETURNING version`
	sqlDeleteExecTasks = `DELETE FROM tasks WHERE execution_id = ?`

	// Signals, timers, the result cache and dead letters.
	sqlExecStatus    = `SELECT status FROM executions WHERE id = ?`
	sqlInsertSignal  = `INSERT INTO signals (execution_id, name, payload, at) VALUES (?, ?, ?, ?)`
	sqlConsumeSignal = `UPDATE signals SET consumed_at = ? WHERE id = ? AND execution_id = ? AND consumed_at IS NULL`
	sqlCancelTimer   = `DELETE FROM tasks WHERE execution_id = ? AND kind = 'timer' AND seq = ? AND status = 'pending'`
	sqlUpsertCache   = `INSERT INTO cache (key, activity, result, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET activity = excluded.activity, result = excluded.result,
			created_at = excluded.created_at, expires_at = excluded.expires_at`
	sqlInsertDeadLetter = `INSERT INTO dead_letters (execution_id, seq, activity, payload, error, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, 'open', ?, ?)`

	// Continue-as-new: a fresh history and task set (but the deadline task), new args.
	sqlDeleteExecEvents       = `DELETE FROM events WHERE execution_id = ? AND id < ?`
	sqlDeleteExecTasksButDead = `DELETE FROM tasks WHERE execution_id = ? AND kind <> 'deadline'`
	sqlContinueAsNew          = `UPDATE executions SET args = ?, run = run + 1, version = version + 1, updated_at = ?
		WHERE id = ? RETURNING version`

	// Fenced task statements: they match only a task still claimed with that fence.
	sqlFencedDelete = `DELETE FROM tasks WHERE id = ? AND fence = ? AND status = 'claimed'
		RETURNING kind, execution_id, seq`
	sqlFencedRelease = `UPDATE tasks SET status = 'pending', run_at = ?, rerun = 0, lease_owner = NULL,
		lease_expires_at = NULL WHERE id = ? AND fence = ? AND status = 'claimed'`
	sqlFencedRetry = `UPDATE tasks SET status = 'pending', run_at = ?, attempt = ?, payload = ?, rerun = 0,
		lease_owner = NULL, lease_expires_at = NULL WHERE id = ? AND fence = ? AND status = 'claimed'`
	sqlFencedExtend = `UPDATE tasks SET lease_expires_at = ?
		WHERE id = ? AND fence = ? AND status = 'claimed' AND lease_owner = ?`
	sqlDeleteTask = `DELETE FROM tasks WHERE id = ?`
	sqlRerunTask  = `UPDATE tasks SET status = 'pending', run_at = ?, rerun = 0, lease_owner = NULL,
		lease_expires_at = NULL WHERE id = ?`

	sqlHeartbeat = `INSERT INTO workers (id, heartbeat_at) VALUES (?1, ?2)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at
		WHERE heartbeat_at < excluded.heartbeat_at`
	// sqlClaimHeartbeat is the heartbeat implied by a claim: it skips the write when the
	// last one is under a second old.
	sqlClaimHeartbeat = `INSERT INTO workers (id, heartbeat_at) VALUES (?1, ?2)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at
		WHERE heartbeat_at < excluded.heartbeat_at - 1000`
	// sqlReclaim finds the claimed tasks through both claim indexes (priority 0 and not).
	// An activity task's attempt grows with each reclaim: its worker's death counts as
	// an attempt against the retry policy.
	sqlReclaim = `UPDATE tasks SET status = 'pending', rerun = 0, lease_owner = NULL, lease_expires_at = NULL,
			attempt = attempt + (kind = 'activity')
		WHERE id IN (
			SELECT id FROM tasks WHERE kind IN ('workflow', 'activity', 'timer', 'deadline') AND status = 'claimed' AND priority = 0
			UNION ALL
			SELECT id FROM tasks WHERE kind IN ('workflow', 'activity', 'timer', 'deadline') AND status = 'claimed' AND priority <> 0)
		AND (lease_expires_at < ?1 OR (?2 IS NOT NULL AND NOT EXISTS (
			SELECT 1 FROM workers w WHERE w.id = tasks.lease_owner AND w.heartbeat_at >= ?2)))`
	// sqlClaimedActivities counts the claimed activity tasks of each activity named in
	// the JSON array ?1 (the MaxConcurrent caps of a claim).
	sqlClaimedActivities = `SELECT activity, count(*) FROM (
			SELECT activity FROM tasks WHERE kind = 'activity' AND status = 'claimed' AND priority = 0
			UNION ALL
			SELECT activity FROM tasks WHERE kind = 'activity' AND status = 'claimed' AND priority <> 0)
		WHERE activity IN (SELECT value FROM json_each(?1)) GROUP BY activity`
	// sqlCountCrashes counts a crash for each execution whose workflow task
	// sqlReclaim (same arguments) is about to reclaim: per step, by version.
	sqlCountCrashes = `UPDATE executions
		SET crashes = CASE WHEN crash_version = version THEN crashes + 1 ELSE 1 END, crash_version = version
		WHERE id IN (SELECT execution_id FROM tasks WHERE kind = 'workflow' AND status = 'claimed'
			AND (lease_expires_at < ?1 OR (?2 IS NOT NULL AND NOT EXISTS (
				SELECT 1 FROM workers w WHERE w.id = tasks.lease_owner AND w.heartbeat_at >= ?2))))`
	sqlPruneWorkers = `DELETE FROM workers WHERE heartbeat_at < ?`
	// sqlTimerName is the kind (timer_scheduled or signal_wait) and the name of the event
	// a timer task belongs to.
	sqlTimerName = `SELECT kind, name FROM events
		WHERE execution_id = ? AND seq = ? AND kind IN ('timer_scheduled', 'signal_wait') ORDER BY id DESC LIMIT 1`
)

// allKinds are the task kinds a claim without a Kinds filter covers.
var allKinds = []backend.TaskKind{backend.TaskWorkflow, backend.TaskActivity, backend.TaskTimer, backend.TaskDeadline}

// claimSelect selects, in claim order (highest priority first, then earliest run_at,
// then id), up to ?4 due pending tasks of nKinds kinds (at least one), optionally only
// on nQueues queues, returning cols. Each kind is read in order from two indexes, the
// (kind, status, run_at, id) one of priority 0 tasks, as a range that stops at now (?3),
// and the (kind, status, priority DESC, run_at, id) one of the others, so a backlog of
// one kind never slows down the claims of another, and tasks of priority 0 cost what
// they did before priorities. Arguments: ?1 owner, ?2 lease expiry, ?3 now, ?4 limit,
// then the kinds, then the queues, then, with exclude, a JSON array of activity names
// not to select, then, with route, a JSON array of the only activity names to select
// (activity routing: ClaimRequest.RouteActivities).
func claimSelect(nKinds, nQueues int, exclude, route bool, cols string) string {
	var extra strings.Builder
	if nQueues > 0 {
		extra.WriteString(" AND queue IN (")
		for i := 0; i < nQueues; i++ {
			if i > 0 {
				extra.WriteString(", ")
			}
			fmt.Fprintf(&extra, "?%d", 5+nKinds+i)
		}
		extra.WriteString(")")
	}
	if exclude {
		fmt.Fprintf(&extra, " AND (activity IS NULL OR activity NOT IN (SELECT value FROM json_each(?%d)))", 5+nKinds+nQueues)
	}
	if route {
		n := 5 + nKinds + nQueues
		if exclude {
			n++
		}
		// kind is in the claim indexes: rows of other kinds pass without a read of the
		// table row (SQLite seeks it only when a column outside the index is needed).
		fmt.Fprintf(&extra, " AND (kind <> 'activity' OR activity IN (SELECT value FROM json_each(?%d)))", n)
	}
	// Without exclude, the branches read their index only (the priority of the first
	// is the constant 0).
	act := ""
	if exclude {
		act = ", activity"
	}
	parts := make([]string, 0, 2*nKinds)
	for k := 0; k < nKinds; k++ {
		parts = append(parts,
			fmt.Sprintf(`SELECT * FROM (SELECT id, 0 AS priority, run_at%s FROM tasks
			WHERE kind = ?%d AND status = 'pending' AND priority = 0 AND run_at <= ?3%s
			ORDER BY run_at, id LIMIT ?4)`, act, 5+k, extra.String()),
			fmt.Sprintf(`SELECT * FROM (SELECT id, priority, run_at%s FROM tasks
			WHERE kind = ?%d AND status = 'pending' AND priority <> 0 AND run_at <= ?3%s
			ORDER BY priority DESC, run_at, id LIMIT ?4)`, act, 5+k, extra.String()))
	}
	return "SELECT " + cols + " FROM (" + strings.Join(parts, " UNION ALL ") + ") ORDER BY priority DESC, run_at, id LIMIT ?4"
}

// claimSQL leases what claimSelect (without exclude) selects.
func claimSQL(nKinds, nQueues int, route bool) string {
	return claimSet + `
		WHERE id IN (` + claimSelect(nKinds, nQueues, false, route, "id") + `) RETURNING ` + claimedColumns
}

// claimShape keys the claim statements prepared so far.
type claimShape struct {
	kinds, queues int
	route         bool
}

// cappedSelectStmt returns the statement of claimSelect(nKinds, nQueues, true, route)
// returning id and activity (for claims with MaxConcurrent caps), preparing it on
// first use.
func (s *stmts) cappedSelectStmt(ctx context.Context, p preparer, nKinds, nQueues int, route bool) (*sql.Stmt, error) {
	k := claimShape{nKinds, nQueues, route}
	if st := s.cappedSelects[k]; st != nil {
		return st, nil
	}
	st, err := p.PrepareContext(ctx, claimSelect(nKinds, nQueues, true, route, "id, activity"))
	if err != nil {
		return nil, err
	}
	if s.cappedSelects == nil {
		s.cappedSelects = map[claimShape]*sql.Stmt{}
	}
	s.cappedSelects[k] = st
	s.all = append(s.all, st)
	return st, nil
}

// claimStmt returns the claim statement for the shape, preparing it on first use.
func (s *stmts) claimStmt(ctx context.Context, p preparer, nKinds, nQueues int, route bool) (*sql.Stmt, error) {
	k := claimShape{nKinds, nQueues, route}
	if st := s.claims[k]; st != nil {
		return st, nil
	}
	st, err := p.PrepareContext(ctx, claimSQL(nKinds, nQueues, route))
	if err != nil {
		return nil, err
	}
	if s.claims == nil {
		s.claims = map[claimShape]*sql.Stmt{}
	}
	s.claims[k] = st
	s.all = append(s.all, st)
	return st, nil
}

// Reader statements.
const (
	sqlGetExecution = `SELECT ` + backend.ExecutionColumns + ` FROM executions WHERE id = ?`
	sqlHistory      = `SELECT id, seq, kind, name, data, error, at, cache_hit FROM events
		WHERE execution_id = ? AND id > ? ORDER BY id`
	sqlLogs           = `SELECT execution_id, run, at, message FROM logs WHERE execution_id = ? ORDER BY id`
	sqlGetScript      = `SELECT source FROM scripts WHERE hash = ?`
	sqlPendingSignals = `SELECT id, name, payload, at FROM signals
		WHERE execution_id = ? AND consumed_at IS NULL ORDER BY id`
	sqlCachedResult  = `SELECT result FROM cache WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)`
	sqlGetDeadLetter = `SELECT ` + backend.DeadLetterColumns + ` FROM dead_letters WHERE id = ?`
	// sqlCustomStatus names the kind and name as literals, so that the partial index
	// events_custom_status serves it.
	sqlCustomStatus = `SELECT data FROM events WHERE execution_id = ? AND kind = '` + string(backend.EventSideEffect) +
		`' AND name = '` + backend.CustomStatusName + `' ORDER BY id DESC LIMIT 1`
)

// stmts holds the prepared statements of a Backend.
type stmts struct {
	insertExecution, insertScript, insertEvent, insertEventIfRunning, insertTask,
	insertParentEvent, findWorkflowTask, insertWorkflowTask, setRerun, setRunAt, insertLog, workflowTaskForUpdate, bumpVersion, finish, deleteExecTasks,
	execStatus, insertSignal, consumeSignal, cancelTimer, upsertCache, insertDeadLetter,
	deleteExecEvents, deleteExecTasksButDead, continueAsNew,
	fencedDelete, fencedRelease, fencedRetry, fencedExtend, deleteTask, rerunTask,
	heartbeat, claimHeartbeat, reclaim, countCrashes, pruneWorkers, claimedActivities *sql.Stmt

	getExecution, history, logs, getScript, pendingSignals, cachedResult, getDeadLetter, customStatus *sql.Stmt

	timerName, begin, commit *sql.Stmt

	claims map[claimShape]*sql.Stmt // writer only, guarded by Backend.sem
	// Candidate selects of claims with MaxConcurrent caps; writer only.
	cappedSelects map[claimShape]*sql.Stmt
	// Hand-off claims (handoff.go), prepared on first use; writer only.
	claimByID  map[int]*sql.Stmt // by number of queues
	claimByIDs *sql.Stmt
	// prepared on first use by fused.go
	executionForStep *sql.Stmt
	fast             *fastStmts // fastpath.go, prepared on first use

	all []*sql.Stmt
}

// preparer is a *sql.DB or a *sql.Conn.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// prepare prepares the reader statements on p, and with writer also the writer
// statements.
func prepare(ctx context.Context, p preparer, writer bool) (*stmts, error) {
	s := &stmts{}
	var err error
	do := func(dst **sql.Stmt, q string) {
		if err != nil {
			return
		}
		var st *sql.Stmt
		st, err = p.PrepareContext(ctx, q)
		if err != nil {
			err = fmt.Errorf("%w in %s", err, q)
			return
		}
		*dst = st
		s.all = append(s.all, st)
	}
	if writer {
		do(&s.insertExecution, sqlInsertExecution)
		do(&s.insertScript, sqlInsertScript)
		do(&s.insertEvent, sqlInsertEvent)
		do(&s.insertEventIfRunning, sqlInsertEventIfRunning)
		do(&s.insertParentEvent, sqlInsertParentEvent)
		do(&s.insertTask, sqlInsertTask)
		do(&s.findWorkflowTask, sqlFindWorkflowTask)
		do(&s.insertWorkflowTask, sqlInsertWorkflowTask)
		do(&s.setRerun, sqlSetRerun)
		do(&s.setRunAt, sqlSetRunAt)
		do(&s.insertLog, sqlInsertLog)
		do(&s.workflowTaskForUpdate, sqlWorkflowTaskForUpdate)
		do(&s.bumpVersion, sqlBumpVersion)
		do(&s.finish, sqlFinish)
		do(&s.deleteExecTasks, sqlDeleteExecTasks)
		do(&s.execStatus, sqlExecStatus)
		do(&s.insertSignal, sqlInsertSignal)
		do(&s.consumeSignal, sqlConsumeSignal)
		do(&s.cancelTimer, sqlCancelTimer)
		do(&s.upsertCache, sqlUpsertCache)
		do(&s.insertDeadLetter, sqlInsertDeadLetter)
		do(&s.deleteExecEvents, sqlDeleteExecEvents)
		do(&s.deleteExecTasksButDead, sqlDeleteExecTasksButDead)
		do(&s.continueAsNew, sqlContinueAsNew)
		do(&s.fencedDelete, sqlFencedDelete)
		do(&s.fencedRelease, sqlFencedRelease)
		do(&s.fencedRetry, sqlFencedRetry)
		do(&s.fencedExtend, sqlFencedExtend)
		do(&s.deleteTask, sqlDeleteTask)
		do(&s.rerunTask, sqlRerunTask)
		do(&s.heartbeat, sqlHeartbeat)
		do(&s.claimHeartbeat, sqlClaimHeartbeat)
		do(&s.reclaim, sqlReclaim)
		do(&s.countCrashes, sqlCountCrashes)
		do(&s.pruneWorkers, sqlPruneWorkers)
		do(&s.claimedActivities, sqlClaimedActivities)
		do(&s.timerName, sqlTimerName)
		do(&s.begin, "BEGIN IMMEDIATE")
		do(&s.commit, "COMMIT")
	}
	do(&s.getExecution, sqlGetExecution)
	do(&s.history, sqlHistory)
	do(&s.logs, sqlLogs)
	do(&s.getScript, sqlGetScript)
	do(&s.pendingSignals, sqlPendingSignals)
	do(&s.cachedResult, sqlCachedResult)
	do(&s.getDeadLetter, sqlGetDeadLetter)
	do(&s.customStatus, sqlCustomStatus)
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *stmts) close() {
	for _, st := range s.all {
		st.Close()
	}
	s.all = nil
}
