package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/interpreter"
)

// Fix-and-resume: check a script against recorded histories (Replay), move executions
// onto a fixed script (Upgrade) and resume failed ones from their failure (Retry).

// ReplayReport is the outcome of replaying an execution's history against a script.
type ReplayReport struct {
	ExecutionID string
	// Script is the main script replayed: the pinned one, or the one given.
	Script string
	// OldHash and NewHash identify the pinned bundle and the bundle replayed (equal when
	// no script was given); see BundleHash.
	OldHash, NewHash string
	// Divergence is the first step where the script disagrees with the history; nil
	// means compatible.
	Divergence *interpreter.Divergence
	// Upgraded reports that Upgrade re-pinned the execution.
	Upgraded bool
}

// Compatible reports whether the script agrees with every recorded step.
func (r *ReplayReport) Compatible() bool { return r.Divergence == nil }

// BundleHash is a short content hash of a pinned bundle (main script and every file it
// loads): what `stent upgrade --script-hash` matches and upgraded events record.
func BundleHash(b backend.Bundle) string { return interpreter.Hash([]byte(bundleKey(b)))[:12] }

// Replay replays the recorded history of execution id against its pinned script, or
// against script (a path, with the files it loads) when not empty, and reports the first
// divergence. Nothing is written.
func (e *Engine) Replay(ctx context.Context, id, script string) (*ReplayReport, error) {
	rep, _, _, err := e.replay(ctx, id, script)
	return rep, err
}

func (e *Engine) replay(ctx context.Context, id, script string) (*ReplayReport, *backend.Execution, map[string][]byte, error) {
	ex, err := e.b.GetExecution(ctx, id)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("replaying %s: %w", id, err)
	}
	events, err := e.b.History(ctx, id, 0)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("replaying %s: reading history: %w", id, err)
	}
	rep := &ReplayReport{ExecutionID: id, Script: ex.Bundle.Main, OldHash: BundleHash(ex.Bundle), NewHash: BundleHash(ex.Bundle)}
	var (
		prog    *interpreter.Program
		sources map[string][]byte
	)
	if script == "" {
		prog, err = e.pinnedProgram(ctx, ex.Bundle)
	} else {
		var bundle backend.Bundle
		bundle, sources, err = interpreter.CollectBundle(script)
		if err == nil {
			prog, err = interpreter.CompileWith(bundle, sources, e.cfg.builtins)
			rep.Script, rep.NewHash = bundle.Main, BundleHash(bundle)
		}
	}
	if err != nil {
		return nil, nil, nil, &InputError{Err: fmt.Errorf("replaying %s: %w", id, err)}
	}
	div, err := prog.CheckHistory(ex.Entry, ex.Args, events)
	if err != nil {
		return nil, nil, nil, &InputError{Err: fmt.Errorf("replaying %s: %w", id, err)}
	}
	rep.Divergence = div
	if sources != nil {
		ex.Bundle = prog.Bundle
	}
	return rep, ex, sources, nil
}

// Upgrade re-pins execution id (running or failed) to script when its recorded history
// replays compatibly against it, appending an upgraded event with the old and new
// bundle hashes; an incompatible execution is left untouched and its report names the
// divergence. With dryRun nothing is written.
func (e *Engine) Upgrade(ctx context.Context, id, script string, dryRun bool) (*ReplayReport, error) {
	if script == "" {
		return nil, &InputError{Err: errors.New("upgrade: a script to upgrade to is required")}
	}
	for attempt := 0; ; attempt++ {
		rep, ex, sources, err := e.replay(ctx, id, script)
		if err != nil {
			return nil, err
		}
		if ex.Status != backend.StatusRunning && ex.Status != backend.StatusFailed {
			return nil, &InputError{Err: fmt.Errorf("upgrade: execution %s is %s; only running or failed executions can be upgraded", id, ex.Status)}
		}
		if !rep.Compatible() || dryRun || rep.OldHash == rep.NewHash {
			return rep, nil
		}
		r, ok := e.b.(backend.Repairer)
		if !ok {
			return nil, fmt.Errorf("upgrade: the %T backend cannot re-pin executions", e.b)
		}
		data, _ := json.Marshal(map[string]string{"old": rep.OldHash, "new": rep.NewHash, "script": rep.Script})
		err = r.UpgradeExecution(ctx, id, ex.Version, ex.Bundle, sources, data)
		if errors.Is(err, backend.ErrStaleExecution) && attempt < 5 {
			continue // it advanced while we replayed: check the longer history again
		}
		if err != nil {
			return nil, fmt.Errorf("upgrading %s: %w", id, err)
		}
		rep.Upgraded = true
		e.taskReady("")
		return rep, nil
	}
}

// Retry resumes a failed execution from its failure, keeping its history (a retried
// event is appended; nothing is deleted): the activity step whose failure failed it runs
// again (a child workflow step: the child is retried the same way), or, when the script
// itself failed, the script goes on from there, which is what an upgrade to a fixed
// script is for.
func (e *Engine) Retry(ctx context.Context, id string) error {
	r, ok := e.b.(backend.Repairer)
	if !ok {
		return fmt.Errorf("retry: the %T backend cannot retry executions", e.b)
	}
	ex, plan, err := e.planRetry(ctx, id)
	if err != nil {
		return err
	}
	data, _ := json.Marshal(map[string]any{"error": ex.Error})
	// The parent first: the child's result is only delivered to a running parent.
	if err := r.RetryExecution(ctx, id, plan.seq, data, plan.task); err != nil {
		if errors.Is(err, backend.ErrNotRunning) {
			return &InputError{Err: fmt.Errorf("retry: %w", err)}
		}
		return fmt.Errorf("retrying %s: %w", id, err)
	}
	e.taskReady("")
	if plan.child != "" {
		if err := e.Retry(ctx, plan.child); err != nil {
			return fmt.Errorf("retrying %s: its failed child: %w", id, err)
		}
	}
	return nil
}

// retryPlan is what a retry of a failed execution does.
type retryPlan struct {
	seq   int              // the step that runs again (0: the script goes on from its error)
	task  *backend.NewTask // the activity attempt that runs it, for an activity step
	child string           // the failed child retried in turn, for a child workflow step
}

// activity is the name of the activity the plan runs again ("" when none).
func (p retryPlan) activity() string {
	if p.task == nil {
		return ""
	}
	var a backend.ActivityPayload
	_ = json.Unmarshal(p.task.Payload, &a)
	return a.Name
}

// planRetry reads failed execution id and decides what its retry does. Nothing is
// written.
func (e *Engine) planRetry(ctx context.Context, id string) (*backend.Execution, retryPlan, error) {
	var plan retryPlan
	ex, err := e.b.GetExecution(ctx, id)
	if err != nil {
		return nil, plan, fmt.Errorf("retrying %s: %w", id, err)
	}
	if ex.Status != backend.StatusFailed {
		return nil, plan, &InputError{Err: fmt.Errorf("retry: execution %s is %s; only a failed execution can be retried", id, ex.Status)}
	}
	if ex.Error == nil || ex.Error.Seq <= 0 {
		return ex, plan, nil
	}
	seq := ex.Error.Seq
	events, err := e.b.History(ctx, id, 0)
	if err != nil {
		return nil, plan, fmt.Errorf("retrying %s: reading history: %w", id, err)
	}
	scheduled, ok := scheduledAt(events, seq)
	switch {
	case !ok:
		// not a step of this run: let the script go on
	case scheduled.Kind == backend.EventActivityScheduled:
		var d interpreter.ScheduledData
		if err := json.Unmarshal(scheduled.Data, &d); err != nil {
			return nil, plan, fmt.Errorf("retrying %s: step %d: %w", id, seq, err)
		}
		payload, _ := json.Marshal(backend.ActivityPayload{Name: scheduled.Name, Args: d.Args, Options: d.Options})
		plan.seq, plan.task = seq, &backend.NewTask{Kind: backend.TaskActivity, Seq: seq, Attempt: 1, Payload: payload}
		if len(d.Options) > 0 {
			var o struct {
				Queue    string `json:"queue"`
				Priority int    `json:"priority"`
			}
			_ = json.Unmarshal(d.Options, &o)
			plan.task.Queue, plan.task.Priority = o.Queue, o.Priority
		}
	case scheduled.Kind == backend.EventChildScheduled:
		plan.seq, plan.child = seq, fmt.Sprintf("%s/%d", id, seq)
	}
	return ex, plan, nil
}

// CheckRunnable reports, as an InputError naming them, the activities that serving
// execution id in this process needs first and that neither this process nor a live
// worker runs: for a failed execution the activity its retry runs again (for a failed
// child, the child's), for a running one those of its pending steps. Called before
// Retry and Serve, it lets a command that serves one execution fail at once, having
// changed nothing, instead of waiting for a worker that does not exist.
func (e *Engine) CheckRunnable(ctx context.Context, id string) error {
	ex, err := e.b.GetExecution(ctx, id)
	if err != nil {
		return fmt.Errorf("checking %s: %w", id, err)
	}
	var needs []string
	switch ex.Status {
	case backend.StatusFailed:
		for next := id; next != ""; {
			_, plan, err := e.planRetry(ctx, next)
			if err != nil {
				return err
			}
			if name := plan.activity(); name != "" {
				needs = append(needs, name)
			}
			next = plan.child
		}
	case backend.StatusRunning:
		r, ok := e.b.(backend.Routing)
		if !ok {
			return nil
		}
		pending, err := r.PendingTasks(ctx, id)
		if err != nil {
			return fmt.Errorf("checking %s: %w", id, err)
		}
		for _, p := range pending {
			if p.Kind == backend.TaskActivity && !slices.Contains(needs, p.Activity) {
				needs = append(needs, p.Activity)
			}
		}
	}
	var missing []string
	for _, name := range needs {
		if e.acceptActivity(name) != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	flags := make([]string, len(missing))
	for i, name := range missing {
		flags[i] = "--activity " + name + "=COMMAND"
	}
	return &InputError{Err: fmt.Errorf("execution %s needs %s, which neither this process nor a live worker runs; register %s with Engine.Register, or on the command line with %s",
		id, quotedList(missing), pronoun(len(missing)), strings.Join(flags, " "))}
}

// quotedList is names quoted and joined: "a", "a" and "b", "a", "b" and "c".
func quotedList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	if len(q) == 1 {
		return "activity " + q[0]
	}
	return "activities " + strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}

func pronoun(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// scheduledAt finds the scheduled event of a step in a history.
func scheduledAt(events []backend.Event, seq int) (backend.Event, bool) {
	for _, ev := range events {
		if ev.Seq == seq && (ev.Kind == backend.EventActivityScheduled || ev.Kind == backend.EventChildScheduled ||
			ev.Kind == backend.EventTimerScheduled || ev.Kind == backend.EventSignalWait) {
			return ev, true
		}
	}
	return backend.Event{}, false
}
