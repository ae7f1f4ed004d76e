package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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
	ex, err := e.b.GetExecution(ctx, id)
	if err != nil {
		return fmt.Errorf("retrying %s: %w", id, err)
	}
	if ex.Status != backend.StatusFailed {
		return &InputError{Err: fmt.Errorf("retry: execution %s is %s; only a failed execution can be retried", id, ex.Status)}
	}
	data, _ := json.Marshal(map[string]any{"error": ex.Error})
	seq := 0
	if ex.Error != nil {
		seq = ex.Error.Seq
	}
	var task *backend.NewTask
	child := ""
	if seq > 0 {
		events, err := e.b.History(ctx, id, 0)
		if err != nil {
			return fmt.Errorf("retrying %s: reading history: %w", id, err)
		}
		scheduled, ok := scheduledAt(events, seq)
		switch {
		case !ok:
			seq = 0 // not a step of this run: let the script go on
		case scheduled.Kind == backend.EventActivityScheduled:
			var d interpreter.ScheduledData
			if err := json.Unmarshal(scheduled.Data, &d); err != nil {
				return fmt.Errorf("retrying %s: step %d: %w", id, seq, err)
			}
			payload, _ := json.Marshal(backend.ActivityPayload{Name: scheduled.Name, Args: d.Args, Options: d.Options})
			task = &backend.NewTask{Kind: backend.TaskActivity, Seq: seq, Attempt: 1, Payload: payload}
			if len(d.Options) > 0 {
				var o struct {
					Queue    string `json:"queue"`
					Priority int    `json:"priority"`
				}
				_ = json.Unmarshal(d.Options, &o)
				task.Queue, task.Priority = o.Queue, o.Priority
			}
		case scheduled.Kind == backend.EventChildScheduled:
			child = fmt.Sprintf("%s/%d", id, seq)
		default:
			seq = 0
		}
	}
	// The parent first: the child's result is only delivered to a running parent.
	if err := r.RetryExecution(ctx, id, seq, data, task); err != nil {
		if errors.Is(err, backend.ErrNotRunning) {
			return &InputError{Err: fmt.Errorf("retry: %w", err)}
		}
		return fmt.Errorf("retrying %s: %w", id, err)
	}
	e.taskReady("")
	if child != "" {
		if err := e.Retry(ctx, child); err != nil {
			return fmt.Errorf("retrying %s: its failed child: %w", id, err)
		}
	}
	return nil
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
