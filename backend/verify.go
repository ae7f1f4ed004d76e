package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
)

// Verifier is an optional extension of Backend, implemented by both stores: `stent
// verify` reads the whole store in one consistent snapshot and checks the invariants
// the engine keeps (see Verify).
type Verifier interface {
	// VerifySnapshot calls fn with a query function that reads one consistent,
	// read-only snapshot of the store (a read transaction), taken while workers may go
	// on writing.
	VerifySnapshot(ctx context.Context, fn func(q PruneQuery) error) error
}

// Violation is one broken invariant of a store.
type Violation struct {
	ExecutionID string // empty for a task of no execution
	Problem     string
}

func (v Violation) String() string {
	if v.ExecutionID == "" {
		return v.Problem
	}
	return v.ExecutionID + ": " + v.Problem
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Executions int // executions checked
	Violations []Violation
}

// The reads of Verify: plain SQL that both stores run as they are (no parameters).
const (
	verifyExecutions = `SELECT id, parent_id, parent_seq, status FROM executions ORDER BY id`
	verifyTasks      = `SELECT id, execution_id, kind, seq FROM tasks ORDER BY execution_id, id`
	verifyEvents     = `SELECT execution_id, seq, kind, name, CASE WHEN kind = 'signal_wait' THEN data END
		FROM events ORDER BY execution_id, id`
)

type verifyExec struct {
	parentID  string
	parentSeq int
	status    Status
}

type verifyTask struct {
	kind TaskKind
	seq  int
}

// Verify checks a store's invariants in one snapshot of v:
//
//   - every running execution can make progress: it has a workflow task (claimable,
//     or leased: a lease that expired is reclaimed), or each step it waits for is
//     driven by something: an activity step or a sleep by its task, a signal wait by
//     the signal (and its timeout by its timer task), a child step by its child, which
//     exists (and runs, or the parent would have a workflow task to take its result);
//   - each history has one started event, and its steps are numbered 1..N, each
//     recorded once: no gap, no step scheduled twice;
//   - no running child whose parent does not exist, and no task of no execution.
func Verify(ctx context.Context, v Verifier) (VerifyReport, error) {
	var rep VerifyReport
	err := v.VerifySnapshot(ctx, func(q PruneQuery) error {
		rep = VerifyReport{}
		execs, children, err := readVerifyExecutions(q)
		if err != nil {
			return err
		}
		rep.Executions = len(execs)
		tasks, err := readVerifyTasks(q, execs, &rep)
		if err != nil {
			return err
		}
		histories := map[string][]Event{}
		if err := readVerifyEvents(q, func(id string, evs []Event) {
			if _, ok := execs[id]; !ok {
				return // history of an execution being pruned (or never created): not ours to judge
			}
			checkHistory(id, evs, &rep)
			if execs[id].status == StatusRunning {
				histories[id] = evs
			}
		}); err != nil {
			return err
		}
		ids := make([]string, 0, len(execs))
		for id := range execs {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			ex := execs[id]
			if ex.status != StatusRunning {
				continue
			}
			if ex.parentID != "" {
				if _, ok := execs[ex.parentID]; !ok {
					rep.add(id, "orphan child: its parent %s does not exist", ex.parentID)
				}
			}
			checkProgress(id, histories[id], tasks[id], children[id], execs, &rep)
		}
		return nil
	})
	if err != nil {
		return VerifyReport{}, fmt.Errorf("verifying the store: %w", err)
	}
	return rep, nil
}

func (r *VerifyReport) add(id, format string, args ...any) {
	r.Violations = append(r.Violations, Violation{ExecutionID: id, Problem: fmt.Sprintf(format, args...)})
}

// readVerifyExecutions reads every execution, and the children of each by the step
// that awaits them.
func readVerifyExecutions(q PruneQuery) (map[string]verifyExec, map[string]map[int]string, error) {
	rows, done, err := q(verifyExecutions)
	if err != nil {
		return nil, nil, fmt.Errorf("reading executions: %w", err)
	}
	defer done()
	execs := map[string]verifyExec{}
	children := map[string]map[int]string{}
	for rows.Next() {
		var (
			id string
			ex verifyExec
			st string
		)
		if err := rows.Scan(&id, &ex.parentID, &ex.parentSeq, &st); err != nil {
			return nil, nil, fmt.Errorf("reading executions: %w", err)
		}
		ex.status = Status(st)
		execs[id] = ex
		if ex.parentID != "" {
			if children[ex.parentID] == nil {
				children[ex.parentID] = map[int]string{}
			}
			children[ex.parentID][ex.parentSeq] = id
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading executions: %w", err)
	}
	return execs, children, nil
}

// readVerifyTasks reads every task by execution, and reports the tasks of no
// execution.
func readVerifyTasks(q PruneQuery, execs map[string]verifyExec, rep *VerifyReport) (map[string][]verifyTask, error) {
	rows, done, err := q(verifyTasks)
	if err != nil {
		return nil, fmt.Errorf("reading tasks: %w", err)
	}
	defer done()
	tasks := map[string][]verifyTask{}
	for rows.Next() {
		var (
			id, seq    int64
			exID, kind string
		)
		if err := rows.Scan(&id, &exID, &kind, &seq); err != nil {
			return nil, fmt.Errorf("reading tasks: %w", err)
		}
		if _, ok := execs[exID]; !ok {
			rep.Violations = append(rep.Violations, Violation{Problem: fmt.Sprintf("task %d (%s) belongs to execution %s, which does not exist", id, kind, exID)})
			continue
		}
		tasks[exID] = append(tasks[exID], verifyTask{kind: TaskKind(kind), seq: int(seq)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading tasks: %w", err)
	}
	return tasks, nil
}

// readVerifyEvents reads every history, in order, and calls fn with each.
func readVerifyEvents(q PruneQuery, fn func(id string, evs []Event)) error {
	rows, done, err := q(verifyEvents)
	if err != nil {
		return fmt.Errorf("reading histories: %w", err)
	}
	defer done()
	var (
		cur string
		evs []Event
	)
	for rows.Next() {
		var (
			id, kind string
			ev       Event
			data     *string
		)
		if err := rows.Scan(&id, &ev.Seq, &kind, &ev.Name, &data); err != nil {
			return fmt.Errorf("reading histories: %w", err)
		}
		ev.Kind, ev.Data = EventKind(kind), rawJSON(data)
		if id != cur && evs != nil {
			fn(cur, evs)
			evs = nil
		}
		cur = id
		evs = append(evs, ev)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading histories: %w", err)
	}
	if evs != nil {
		fn(cur, evs)
	}
	return nil
}

// opens reports whether an event of kind records a step's first entry at its seq.
func opens(kind EventKind) bool {
	switch kind {
	case EventActivityScheduled, EventChildScheduled, EventTimerScheduled, EventSignalWait, EventSideEffect:
		return true
	}
	return false
}

// checkHistory checks one history: one started event, steps 1..N each opened once.
func checkHistory(id string, evs []Event, rep *VerifyReport) {
	started := 0
	opened := map[int]EventKind{}
	maxSeq := 0
	for _, ev := range evs {
		if ev.Kind == EventStarted {
			started++
			continue
		}
		if ev.Seq <= 0 {
			continue
		}
		prev, seen := opened[ev.Seq]
		switch {
		case opens(ev.Kind) && seen:
			rep.add(id, "history: step %d recorded twice (%s, then %s)", ev.Seq, prev, ev.Kind)
		case opens(ev.Kind), ev.Kind == EventSignalReceived && !seen: // a signal there already: no wait
			opened[ev.Seq] = ev.Kind
		}
		maxSeq = max(maxSeq, ev.Seq)
	}
	if started != 1 {
		rep.add(id, "history: %d started events, want 1", started)
	}
	for seq := 1; seq <= maxSeq; seq++ {
		if _, ok := opened[seq]; !ok {
			rep.add(id, "history: step %d is missing (steps go up to %d)", seq, maxSeq)
			break
		}
	}
}

// checkProgress checks that the running execution id can go on.
func checkProgress(id string, evs []Event, tasks []verifyTask, children map[int]string, execs map[string]verifyExec, rep *VerifyReport) {
	has := func(kind TaskKind, seq int) bool {
		for _, t := range tasks {
			if t.kind == kind && (kind == TaskWorkflow || t.seq == seq) {
				return true
			}
		}
		return false
	}
	if has(TaskWorkflow, 0) {
		return // it runs, or a worker will run it: claimable, leased, or reclaimed once its lease expires
	}
	pending := PendingSteps(evs)
	if len(pending) == 0 {
		rep.add(id, "running, but it has no workflow task and waits for no step: nothing will ever run it")
		return
	}
	for _, ev := range pending {
		switch ev.Kind {
		case EventActivityScheduled:
			if !has(TaskActivity, ev.Seq) {
				rep.add(id, "step %d (activity %s) waits for an attempt, but it has no activity task", ev.Seq, ev.Name)
			}
		case EventTimerScheduled:
			if !has(TaskTimer, ev.Seq) {
				rep.add(id, "step %d (sleep) has no timer task: it would never wake", ev.Seq)
			}
		case EventSignalWait:
			var d struct {
				Options struct {
					TimeoutMS int64 `json:"timeout_ms"`
				} `json:"options"`
			}
			_ = json.Unmarshal(ev.Data, &d)
			if d.Options.TimeoutMS > 0 && !has(TaskTimer, ev.Seq) {
				rep.add(id, "step %d (wait_signal %s) has a timeout but no timer task", ev.Seq, ev.Name)
			}
		case EventChildScheduled:
			child, ok := children[ev.Seq]
			switch {
			case !ok:
				rep.add(id, "step %d (child %s) has no child execution", ev.Seq, ev.Name)
			case execs[child].status.Terminal():
				rep.add(id, "step %d: child %s ended (%s), but no workflow task takes its result", ev.Seq, child, execs[child].status)
			}
		}
	}
}

// PendingSteps returns the scheduled events (activity, child, timer, signal wait)
// whose outcome is not in the history yet, in step order.
func PendingSteps(events []Event) []Event {
	scheduled := map[int]Event{}
	var order []int
	for _, ev := range events {
		switch ev.Kind {
		case EventActivityScheduled, EventChildScheduled, EventTimerScheduled, EventSignalWait:
			if _, seen := scheduled[ev.Seq]; !seen {
				order = append(order, ev.Seq)
			}
			scheduled[ev.Seq] = ev
		case EventActivityCompleted, EventActivityFailed, EventChildCompleted,
			EventTimerFired, EventSignalTimedOut, EventSignalReceived:
			delete(scheduled, ev.Seq)
		case EventDeadLetterReplayed, EventRetried:
			// The step runs again: it is pending once more (its scheduled event is
			// earlier in the history). A retried event of seq 0 names no step.
			for _, prev := range events {
				if ev.Seq != 0 && prev.Seq == ev.Seq && opens(prev.Kind) && prev.Kind != EventSideEffect {
					scheduled[ev.Seq] = prev
				}
			}
		}
	}
	var out []Event
	for _, seq := range order {
		if ev, ok := scheduled[seq]; ok {
			out = append(out, ev)
		}
	}
	return out
}
