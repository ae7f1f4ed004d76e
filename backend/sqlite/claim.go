package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/stent-go/stent/backend"
)

// claimedTask is a claimed task with its priority, for ordering.
type claimedTask struct {
	task     backend.Task
	priority int
}

// scanClaimed scans claimedColumns.
func scanClaimed(s backend.Scanner) (claimedTask, error) {
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

// claimedTasks orders claimed tasks as ClaimTasks does (highest priority first, then
// earliest run_at, then id) and returns them as backend tasks.
func claimedTasks(cs []claimedTask) []backend.Task {
	slices.SortFunc(cs, func(a, b claimedTask) int {
		return cmp.Or(cmp.Compare(b.priority, a.priority), a.task.RunAt.Compare(b.task.RunAt), cmp.Compare(a.task.ID, b.task.ID))
	})
	out := make([]backend.Task, len(cs))
	for i, c := range cs {
		out[i] = c.task
	}
	return out
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
	return claimedTasks(got), nil
}
