package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/builtins"
)

// WaitKind names what a running execution is waiting for.
type WaitKind string

const (
	// WaitStart: a delayed execution waits for its start time (At).
	WaitStart WaitKind = "start"
	// WaitActivity: an activity attempt runs on Worker, or the next attempt is due At.
	WaitActivity WaitKind = "activity"
	// WaitTimer: a sleep() fires At.
	WaitTimer WaitKind = "timer"
	// WaitSignal: wait_signal(Name) times out At (zero: no timeout).
	WaitSignal WaitKind = "signal"
	// WaitChild: a child execution (ChildID, ChildStatus) has not reported yet.
	WaitChild WaitKind = "child"
	// WaitWorkflow: the script has results to go on with and waits for a worker to run
	// its next workflow task (or one runs it now, on Worker).
	WaitWorkflow WaitKind = "workflow"
)

// Wait is one thing a running execution waits for, as shown by `stent status`.
type Wait struct {
	Kind WaitKind `json:"kind"`
	// Seq is the step (0 for start and workflow).
	Seq int `json:"seq,omitempty"`
	// Name is the activity name, the signal name or the child's entry function.
	Name string `json:"name,omitempty"`
	// Attempt and MaxAttempts count an activity's attempts; MaxAttempts is 0 when the
	// policy is not known here (the activity's defaults live in the worker's registry).
	Attempt     int `json:"attempt,omitempty"`
	MaxAttempts int `json:"max_attempts,omitempty"`
	// Worker holds the task now (activity attempt or workflow task), with its lease
	// until LeaseUntil.
	Worker     string     `json:"worker,omitempty"`
	LeaseUntil *time.Time `json:"lease_until,omitempty"`
	// StoppedAt is set when Worker stopped heartbeating (its last heartbeat), and
	// ReclaimAt when its work is reclaimed: the task is not running any more.
	StoppedAt *time.Time `json:"stopped_at,omitempty"`
	ReclaimAt *time.Time `json:"reclaim_at,omitempty"`
	// At: start time, next attempt, timer due time or signal timeout.
	At *time.Time `json:"at,omitempty"`
	// ChildID and ChildStatus describe a child execution.
	ChildID     string         `json:"child_id,omitempty"`
	ChildStatus backend.Status `json:"child_status,omitempty"`
}

// String renders the wait as one line: "activity charge attempt 2/3: next attempt at …".
func (w Wait) String() string {
	at := func(t *time.Time) string { return t.UTC().Format(time.RFC3339) }
	switch w.Kind {
	case WaitStart:
		return "start at " + at(w.At)
	case WaitActivity:
		s := fmt.Sprintf("activity %s (step %d) attempt %d", w.Name, w.Seq, w.Attempt)
		if w.MaxAttempts > 0 {
			s += fmt.Sprintf("/%d", w.MaxAttempts)
		}
		switch {
		case w.StoppedAt != nil:
			s += ", " + w.stopped()
		case w.Worker != "":
			s += ", running on worker " + w.Worker + " (lease until " + at(w.LeaseUntil) + ")"
		case w.At != nil:
			s += ", next attempt at " + at(w.At)
		}
		return s
	case WaitTimer:
		return fmt.Sprintf("timer (step %d) until %s", w.Seq, at(w.At))
	case WaitSignal:
		s := fmt.Sprintf("signal %s (step %d)", w.Name, w.Seq)
		if w.At != nil {
			s += ", timeout at " + at(w.At)
		}
		return s
	case WaitChild:
		return fmt.Sprintf("child %s (%s, step %d): %s", w.ChildID, w.Name, w.Seq, w.ChildStatus)
	case WaitWorkflow:
		if w.StoppedAt != nil {
			return "its next step: " + w.stopped()
		}
		if w.Worker != "" {
			return "its next step, running on worker " + w.Worker
		}
		return "a worker to run its next step"
	}
	return string(w.Kind)
}

// Stopped says, for a wait whose worker stopped heartbeating, when and when its work
// is reclaimed; "" otherwise.
func (w Wait) Stopped() string {
	if w.StoppedAt == nil {
		return ""
	}
	return w.stopped()
}

func (w Wait) stopped() string {
	s := "worker " + w.Worker + " stopped heartbeating at " + w.StoppedAt.UTC().Format(time.RFC3339)
	if w.ReclaimAt != nil {
		s += "; its work is reclaimed at " + w.ReclaimAt.UTC().Format(time.RFC3339)
	}
	return s
}

// Waits says what a running execution waits for, one entry per pending step (in step
// order), or its start time when it is scheduled. An execution that ended waits for
// nothing. It reads the execution's history, tasks and children; the result is a
// snapshot (a step may finish while it is read).
func (e *Engine) Waits(ctx context.Context, ex *backend.Execution) ([]Wait, error) {
	if ex.Status != backend.StatusRunning {
		return nil, nil
	}
	if ex.StatusAt(e.clock.Now()) == backend.StatusScheduled {
		start := ex.StartAt
		return []Wait{{Kind: WaitStart, At: &start}}, nil
	}
	events, err := e.b.History(ctx, ex.ID, 0)
	if err != nil {
		return nil, fmt.Errorf("describing %s: %w", ex.ID, err)
	}
	return e.waits(ctx, ex, events)
}

// waits is Waits for a running execution whose history is events.
func (e *Engine) waits(ctx context.Context, ex *backend.Execution, events []backend.Event) ([]Wait, error) {
	tasks, err := e.b.ExecutionTasks(ctx, ex.ID)
	if err != nil {
		return nil, fmt.Errorf("describing %s: %w", ex.ID, err)
	}
	pending := backend.PendingSteps(events)
	var children map[int]backend.Execution
	for _, ev := range pending {
		if ev.Kind == backend.EventChildScheduled && children == nil {
			if children, err = e.childrenBySeq(ctx, ex.ID); err != nil {
				return nil, err
			}
		}
	}
	taskAt := map[int]backend.Task{}
	var workflowTask *backend.Task
	for i, t := range tasks {
		switch t.Kind {
		case backend.TaskActivity, backend.TaskTimer:
			taskAt[t.Seq] = t
		case backend.TaskWorkflow:
			workflowTask = &tasks[i]
		}
	}
	var workers map[string]backend.WorkerInfo
	for _, t := range tasks {
		if t.LeaseOwner != "" {
			workers = e.workersByID(ctx)
			break
		}
	}
	grace, now := e.liveGrace(), e.clock.Now()
	var out []Wait
	for _, ev := range pending {
		w := Wait{Seq: ev.Seq, Name: ev.Name}
		var d struct {
			Options json.RawMessage `json:"options"`
		}
		_ = json.Unmarshal(ev.Data, &d)
		switch ev.Kind {
		case backend.EventActivityScheduled:
			w.Kind = WaitActivity
			w.MaxAttempts = e.maxAttempts(ev.Name, d.Options)
			if t, ok := taskAt[ev.Seq]; ok {
				w.Attempt = t.Attempt
				holdTask(&w, t)
				e.stoppedHolder(&w, workers, grace, now)
			}
		case backend.EventTimerScheduled:
			w.Kind, w.Name = WaitTimer, ""
			if t, ok := taskAt[ev.Seq]; ok {
				w.At = &t.RunAt
			}
		case backend.EventSignalWait:
			w.Kind = WaitSignal
			var o builtins.SignalOptions
			_ = json.Unmarshal(d.Options, &o)
			if o.TimeoutMS > 0 {
				t := ev.At.Add(time.Duration(o.TimeoutMS) * time.Millisecond)
				w.At = &t
			}
		case backend.EventChildScheduled:
			w.Kind = WaitChild
			if c, ok := children[ev.Seq]; ok {
				w.ChildID, w.ChildStatus = c.ID, c.StatusAt(e.clock.Now())
			}
		}
		out = append(out, w)
	}
	if workflowTask != nil && (len(out) == 0 || workflowTask.LeaseOwner != "") {
		w := Wait{Kind: WaitWorkflow}
		holdTask(&w, *workflowTask)
		w.At = nil
		e.stoppedHolder(&w, workers, grace, now)
		out = append(out, w)
	}
	return out, nil
}

// holdTask fills who holds a task, or when it is due.
func holdTask(w *Wait, t backend.Task) {
	if t.LeaseOwner != "" {
		w.Worker = t.LeaseOwner
		lease := t.LeaseExpiresAt
		w.LeaseUntil = &lease
		return
	}
	runAt := t.RunAt
	w.At = &runAt
}

// maxAttempts is the attempt budget of an activity step: its script's retry policy,
// else the policy it was registered with here, else 0 (unknown).
func (e *Engine) maxAttempts(name string, options json.RawMessage) int {
	var o builtins.CallOptions
	if json.Unmarshal(options, &o) == nil && o.Retry != nil {
		return max(1, o.Retry.MaxAttempts)
	}
	if a, ok := e.reg.Lookup(name); ok {
		if a.Options.Retry != nil {
			return max(1, a.Options.Retry.MaxAttempts)
		}
		return 1
	}
	return 0
}

// childrenBySeq returns the children of an execution by the parent step awaiting them.
func (e *Engine) childrenBySeq(ctx context.Context, id string) (map[int]backend.Execution, error) {
	out := map[int]backend.Execution{}
	after := ""
	for {
		page, err := e.b.ListExecutions(ctx, backend.ListFilter{ParentID: id, Limit: 500, After: after})
		if err != nil {
			return nil, fmt.Errorf("listing the children of %s: %w", id, err)
		}
		for _, c := range page {
			out[c.ParentSeq] = c
		}
		if len(page) < 500 {
			return out, nil
		}
		after = backend.ListCursor(&page[len(page)-1])
	}
}

// Description is what `stent status` shows of an execution beside its row: what it
// waits for, its custom status and tags, the live workers it lacks, and the resets
// that link it to other executions.
type Description struct {
	Waits        []Wait
	CustomStatus json.RawMessage
	Tags         map[string]string
	NeedsWorker  []string // while it runs (see WaitingFor)
	ResetFrom    *backend.ResetLink
	ResetInto    []backend.ResetLink
}

// Describe reads ex's Description, its history once (Waits, CustomStatus and
// ResetLinks each read it on their own).
func (e *Engine) Describe(ctx context.Context, ex *backend.Execution) (*Description, error) {
	events, err := e.b.History(ctx, ex.ID, 0)
	if err != nil {
		return nil, fmt.Errorf("describing %s: %w", ex.ID, err)
	}
	d := &Description{}
	switch ex.StatusAt(e.clock.Now()) {
	case backend.StatusScheduled:
		start := ex.StartAt
		d.Waits = []Wait{{Kind: WaitStart, At: &start}}
	case backend.StatusRunning:
		if d.Waits, err = e.waits(ctx, ex, events); err != nil {
			return nil, err
		}
		if d.NeedsWorker, err = e.WaitingFor(ctx, ex.ID); err != nil {
			return nil, err
		}
	}
	for _, ev := range slices.Backward(events) {
		if ev.Kind == backend.EventSideEffect && ev.Name == backend.CustomStatusName {
			d.CustomStatus = ev.Data
			break
		}
	}
	if d.Tags, err = e.Tags(ctx, ex.ID); err != nil {
		return nil, err
	}
	if d.ResetFrom, d.ResetInto, err = resetLinks(ex.ID, events); err != nil {
		return nil, err
	}
	return d, nil
}
