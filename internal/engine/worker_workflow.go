package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/builtins"
	"github.com/stent-go/stent/interpreter"
)

func (w *worker) runWorkflowTask(ctx context.Context, t backend.Task) (*backend.Task, error) {
	e := w.e
	// Hot path: the execution's script is parked here. Its version is checked by the
	// commit, so no read of the execution is needed; if another worker advanced it
	// meanwhile the commit fails as stale and the task (still ours) takes the cold path.
	lr := e.cache.take(t.ExecutionID)
	e.tel.CacheLookup(lr != nil)
	if lr != nil {
		defer e.cache.release(lr, lr.out)
		next, err := w.advance(ctx, t, lr.ex, lr)
		if !errors.Is(err, backend.ErrStaleExecution) {
			return next, err
		}
	}
	ex, err := e.b.GetExecution(ctx, t.ExecutionID)
	if err != nil {
		return nil, fmt.Errorf("reading execution %s: %w", t.ExecutionID, err)
	}
	if ex.Status.Terminal() {
		return nil, e.b.DeleteTask(ctx, t.Ref())
	}
	if step := e.poisonPill(ex); step != nil {
		return w.commit(ctx, t, ex, ex.Version, nil, step)
	}
	lr, err = w.coldRun(ctx, ex)
	if err != nil {
		var se *startError
		if errors.As(err, &se) {
			return w.commit(ctx, t, ex, ex.Version, nil, &interpreter.Step{Done: true, Err: &backend.ErrorInfo{Type: "script", Message: se.Error()}})
		}
		return nil, err
	}
	return w.advance(ctx, t, ex, lr)
}

// advance feeds the execution's new events to its run and commits what it does.
func (w *worker) advance(ctx context.Context, t backend.Task, ex *backend.Execution, lr *liveRun) (_ *backend.Task, err error) {
	span := w.e.tel.StartWorkflowTask(ctx, t, ex, lr.lastEventID == 0 && ex.Version > 0, w.opts.ID)
	defer func() { span.End(err) }()
	events, err := w.e.b.History(ctx, ex.ID, lr.lastEventID)
	if err != nil {
		lr.run.Close()
		return nil, fmt.Errorf("reading history of %s: %w", ex.ID, err)
	}
	if len(events) > 0 {
		lr.lastEventID = events[len(events)-1].ID
	}
	step := lr.run.Advance(events)
	span.Step(events, step)
	return w.commit(ctx, t, ex, lr.version, lr, step)
}

type startError struct{ err error }

func (s *startError) Error() string { return s.err.Error() }

// pinnedProgram compiles (or finds compiled) a pinned bundle. A bundle that does not
// compile is a *startError.
func (e *Engine) pinnedProgram(ctx context.Context, b backend.Bundle) (*interpreter.Program, error) {
	key := bundleKey(b)
	if prog := e.programs.get(key); prog != nil {
		return prog, nil
	}
	sources := make(map[string][]byte, len(b.Files))
	for _, h := range b.Files {
		src, err := e.b.GetScript(ctx, h)
		if err != nil {
			return nil, fmt.Errorf("reading pinned script %s: %w", h, err)
		}
		sources[h] = src
	}
	prog, err := interpreter.CompileWith(b, sources, e.cfg.builtins)
	if err != nil {
		return nil, &startError{err}
	}
	e.programs.put(key, prog)
	return prog, nil
}

// coldRun builds a run of the execution from its pinned sources; Advance then replays.
func (w *worker) coldRun(ctx context.Context, ex *backend.Execution) (*liveRun, error) {
	e := w.e
	mark := e.cache.lossMark()
	prog, err := e.pinnedProgram(ctx, ex.Bundle)
	if err != nil {
		return nil, err
	}
	logs := 0
	if ex.Version > 0 { // a run that never committed has printed nothing yet
		lines, err := e.b.Logs(ctx, ex.ID)
		if err != nil {
			return nil, fmt.Errorf("reading logs of %s: %w", ex.ID, err)
		}
		for _, l := range lines {
			if l.Run == ex.Run {
				logs++
			}
		}
	}
	id := ex.ID
	run, err := prog.NewRun(ex.Entry, ex.Args, interpreter.Config{
		ExecutionID:   ex.ID,
		StepLimit:     e.cfg.stepLimit,
		MaxHistory:    e.cfg.maxHistory,
		MemoryLimit:   e.cfg.scriptMemory,
		CheckActivity: e.acceptActivity,
		Now:           e.clock.Now,
		LogsCommitted: logs,
		LoadSignals: func() ([]backend.Signal, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return e.b.PendingSignals(ctx, id)
		},
	})
	if err != nil {
		return nil, &startError{err}
	}
	return &liveRun{id: ex.ID, ex: ex, run: run, version: ex.Version, logs: logs, lossMark: mark}, nil
}

func (e *Engine) checkActivity(name string) error {
	if _, ok := e.reg.Lookup(name); ok {
		return nil
	}
	list := "none"
	if names := e.reg.Names(); len(names) > 0 {
		list = strings.Join(names, ", ")
	}
	return fmt.Errorf("unknown activity %q (registered: %s); register it with Engine.Register, or on the command line with --activity %s=COMMAND", name, list, name)
}

// commit turns a step into one atomic state change.
func (w *worker) commit(ctx context.Context, t backend.Task, ex *backend.Execution, expectedVersion int64, lr *liveRun, step *interpreter.Step) (*backend.Task, error) {
	e := w.e
	now := e.clock.Now()
	if checked := e.checkStepPayloads(step); checked != step {
		if lr != nil {
			lr.run.Close()
			lr = nil
		}
		step = checked
	}
	res, wakeTimes := e.stepResult(t.Ref(), ex, expectedVersion, lr, step, now)
	kids := w.startChildren(ctx, ex, &res, now, 0)
	var (
		version int64
		claimed []backend.Task
		err     error
	)
	cctx := e.cache.markCommit(ctx, lr)
	pf := w.fuseParent(ctx, ex, &res, now, 0)
	var extra []*slot
	for {
		if h, ok := w.handOff(); ok && w.claimsWithCommit(ex, &res, now) {
			var claim backend.ClaimRequest
			claim, extra = w.claimFor(&res, ex.Queue, now)
			version, claimed, err = h.CompleteWorkflowTaskAndClaim(cctx, res, claim)
		} else {
			version, err = e.b.CompleteWorkflowTask(cctx, res)
		}
		if pf == nil || !errors.Is(err, backend.ErrStaleParent) {
			break
		}
		// The parent moved on meanwhile: end the child the usual way.
		releaseSlots(extra)
		w.parentsDropped(pf, nil)
		pf, res.ParentStep, extra = nil, nil, nil
	}
	if err != nil {
		releaseSlots(extra)
		if lr != nil {
			lr.run.Close()
		}
		childrenDropped(kids)
		w.parentsDropped(pf, err)
		return nil, fmt.Errorf("committing workflow task of %s: %w", ex.ID, err)
	}
	next := w.committed(ex, lr, step, &res, version, claimed, wakeTimes)
	w.childrenCommitted(kids, claimed)
	if pn := w.parentsCommitted(pf); next == nil {
		next = pn
	}
	spread(append(slices.Clip(claimed), pf.claimed()...), extra)
	return next, nil
}

// stepResult turns a step into the workflow task result that records it, and the
// times of the timers it starts.
func (e *Engine) stepResult(task backend.TaskRef, ex *backend.Execution, expectedVersion int64, lr *liveRun, step *interpreter.Step, now time.Time) (backend.WorkflowTaskResult, []time.Time) {
	res := backend.WorkflowTaskResult{
		Task: task, ExecutionID: ex.ID, ExpectedVersion: expectedVersion, Logs: step.Logs, NoParent: ex.ParentID == "",
	}
	var wakeTimes []time.Time
	for _, s := range step.Scheduled {
		res.Events = append(res.Events, backend.NewEvent{Seq: s.Seq, Kind: s.Kind, Name: s.Name, Data: s.Data})
		if s.Command == nil {
			continue
		}
		switch s.Command.Kind {
		case builtins.KindActivity:
			payload, _ := json.Marshal(backend.ActivityPayload{Name: s.Name, Args: s.Command.Args, Options: s.Command.Options, Trace: e.tel.TraceOf(ex)})
			call := callOptions(s.Command)
			res.Tasks = append(res.Tasks, backend.NewTask{Kind: backend.TaskActivity, Seq: s.Seq, RunAt: now, Attempt: 1, Payload: payload,
				Queue: call.Queue, Priority: call.Priority})
		case builtins.KindTimer:
			var o builtins.TimerOptions
			_ = json.Unmarshal(s.Command.Options, &o)
			at := now.Add(time.Duration(o.DurationMS) * time.Millisecond)
			res.Tasks = append(res.Tasks, backend.NewTask{Kind: backend.TaskTimer, Seq: s.Seq, RunAt: at})
			wakeTimes = append(wakeTimes, at)
		case builtins.KindSignal:
			var o builtins.SignalOptions
			_ = json.Unmarshal(s.Command.Options, &o)
			if o.TimeoutMS > 0 {
				at := now.Add(time.Duration(o.TimeoutMS) * time.Millisecond)
				res.Tasks = append(res.Tasks, backend.NewTask{Kind: backend.TaskTimer, Seq: s.Seq, RunAt: at})
				wakeTimes = append(wakeTimes, at)
			}
		case builtins.KindChild:
			call := callOptions(s.Command)
			queue := ex.Queue
			if call.Queue != "" {
				queue = call.Queue
			}
			res.Children = append(res.Children, backend.NewExecution{
				ID: fmt.Sprintf("%s/%d", ex.ID, s.Seq), ParentID: ex.ID, ParentSeq: s.Seq,
				Bundle: e.tel.ChildBundle(ex, fmt.Sprintf("%s/%d", ex.ID, s.Seq)), Entry: s.Name, Args: s.Command.Args, Queue: queue, StartAt: now,
				Deadline: ex.Deadline, Priority: call.Priority,
			})
		}
	}
	res.ConsumedSignals, res.CancelTimers = step.ConsumedSignals, step.CancelTimers
	switch {
	case step.Done && step.ContinueAsNew != nil:
		res.ContinueAsNew = step.ContinueAsNew
	case step.Done && step.Err != nil && step.Cancelled:
		res.Finish = &backend.Finish{Status: backend.StatusCancelled, Error: step.Err}
	case step.Done && step.Err != nil:
		res.Finish = &backend.Finish{Status: backend.StatusFailed, Error: step.Err}
		res.DeadLetter = deadLetter(ex.ID, lr, step.Err)
	case step.Done:
		res.Finish = &backend.Finish{Status: backend.StatusCompleted, Result: step.Result}
	}
	return res, wakeTimes
}

// committed does what follows a step's commit: wake-ups, the end of the execution or
// the run parked again at its new version. It returns the task the commit claimed for
// this worker, if any.
func (w *worker) committed(ex *backend.Execution, lr *liveRun, step *interpreter.Step, res *backend.WorkflowTaskResult, version int64, claimed []backend.Task, wakeTimes []time.Time) *backend.Task {
	e := w.e
	e.tel.ChildrenStarted(res.Children)
	// Wake other workers for what this worker does not take itself. A finishing
	// child's commit may have claimed its parent's workflow task for this worker.
	parentTaken := res.Finish != nil && ex.ParentID != "" && (res.ParentStep != nil || slices.ContainsFunc(claimed, func(t backend.Task) bool {
		return t.Kind == backend.TaskWorkflow && t.ExecutionID == ex.ParentID
	}))
	if len(res.Tasks) > claimedOf(claimed, ex.ID) || childrenWaiting(res.Children, claimed) || res.ContinueAsNew != nil ||
		(res.Finish != nil && ex.ParentID != "" && !parentTaken) {
		e.taskReady(ex.Queue)
	}
	var next *backend.Task
	if len(claimed) > 0 {
		next = &claimed[0]
	}
	for _, at := range wakeTimes {
		e.wakeAt(at)
	}
	if step.Done {
		if lr != nil {
			lr.run.Close()
			// Let the run go before delivering the result: a WaitFor that finds the run
			// held here waits for the delivery instead of reading the execution.
			e.cache.release(lr, lr.out)
		}
		if res.Finish != nil {
			e.tel.ExecutionEnded(ex, res.Finish, res.DeadLetter)
			e.deliverResult(ex.ID, res.Finish)
			e.executionFinished(ex.ID)
		}
		return next
	}
	if lr != nil {
		lr.version = version
		lr.logs += len(step.Logs)
		e.cache.put(lr)
	}
	return next
}

// claimedOf counts the claimed tasks of execution id.
func claimedOf(claimed []backend.Task, id string) int {
	n := 0
	for _, t := range claimed {
		if t.ExecutionID == id {
			n++
		}
	}
	return n
}

// childrenWaiting tells whether a commit that created children left a task for a
// worker to claim: a child's first workflow task, or a task of a child's first step
// (NewExecution.FirstStep) that the commit did not claim for this worker.
func childrenWaiting(children []backend.NewExecution, claimed []backend.Task) bool {
	for _, c := range children {
		fs := c.FirstStep
		if fs == nil || len(fs.Tasks) > claimedOf(claimed, c.ID) || childrenWaiting(fs.Children, claimed) {
			return true
		}
	}
	return false
}

func callOptions(c *builtins.Command) builtins.CallOptions {
	var o builtins.CallOptions
	if len(c.Options) > 0 {
		_ = json.Unmarshal(c.Options, &o)
	}
	return o
}

func hasDueActivity(tasks []backend.NewTask, now time.Time) bool {
	for _, t := range tasks {
		if t.Kind == backend.TaskActivity && !t.RunAt.After(now) {
			return true
		}
	}
	return false
}

// deadLetter describes the activity whose failure failed the execution, if one did.
func deadLetter(executionID string, lr *liveRun, info *backend.ErrorInfo) *backend.DeadLetter {
	if info.Type == poisonPillType {
		return &backend.DeadLetter{ExecutionID: executionID, Error: info}
	}
	if lr == nil || info.Activity == "" || info.Seq == 0 {
		return nil
	}
	ev, ok := lr.run.Recorded(info.Seq)
	if !ok || ev.Kind != backend.EventActivityScheduled {
		return nil
	}
	var d interpreter.ScheduledData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return nil
	}
	payload, _ := json.Marshal(backend.ActivityPayload{Name: ev.Name, Args: d.Args, Options: d.Options})
	return &backend.DeadLetter{ExecutionID: executionID, Seq: info.Seq, Activity: ev.Name, Payload: payload, Error: info}
}

// runDeadlineTask ends an execution that ran past its max duration.
func (w *worker) runDeadlineTask(ctx context.Context, t backend.Task) error {
	e := w.e
	if bytes.Equal(t.Payload, backend.CancelGracePayload) {
		return w.endAfterCancelGrace(ctx, t)
	}
	msg := "execution exceeded its max duration"
	if ex, err := e.b.GetExecution(ctx, t.ExecutionID); err == nil && ex.Deadline != nil {
		msg = fmt.Sprintf("execution exceeded its max duration of %s (deadline %s)", ex.Deadline.Sub(ex.StartAt).Round(time.Millisecond), ex.Deadline.UTC().Format(time.RFC3339))
	}
	ended, err := e.b.EndExecution(ctx, t.ExecutionID, backend.StatusTimedOut, &backend.ErrorInfo{Type: "timeout", Message: msg})
	if err != nil && !errors.Is(err, backend.ErrNotFound) {
		return fmt.Errorf("timing out execution %s: %w", t.ExecutionID, err)
	}
	if ended {
		e.tel.ExecutionTreeEnded(ctx, e.b, t.ExecutionID, backend.StatusTimedOut)
		e.endedLocally(t.ExecutionID)
	}
	if err := e.b.DeleteTask(ctx, t.Ref()); err != nil && !errors.Is(err, backend.ErrLeaseLost) {
		return err
	}
	return nil
}
