package stent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stent-go/stent/activities"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/builtins"
	"github.com/stent-go/stent/interpreter"
)

// WorkerOptions configures Serve. Zero values take the defaults.
type WorkerOptions struct {
	// ID names the worker in leases (default: host-pid-random).
	ID string
	// Concurrency is how many tasks run at once (default 16).
	Concurrency int
	// Queues to serve (default: all queues).
	Queues []string
	// LeaseDuration is how long a claimed task stays with this worker without a renewal
	// (default 5 minutes). Leases of running activities are renewed by heartbeat.
	LeaseDuration time.Duration
	// PollInterval is the safety-net polling period (default 1s). Wake-ups within the
	// process (and LISTEN/NOTIFY or Redis across processes) make it rarely matter.
	PollInterval time.Duration
	// HeartbeatInterval is how often the worker records that it is alive (default 1s).
	HeartbeatInterval time.Duration
	// DeadWorkerGrace: tasks of a worker silent for longer are reclaimed (default 10s).
	DeadWorkerGrace time.Duration
	// ShutdownTimeout is how long a stopping worker lets running activities finish
	// before cancelling them and handing their tasks back (default 30s).
	ShutdownTimeout time.Duration
	// AwaitActivityWorkers makes a step whose activity no live worker runs wait for
	// one (a long-running `stent worker`); by default it fails at once, naming the
	// registered activities (`stent exec`, tests).
	AwaitActivityWorkers bool
	// Retention deletes executions that ended longer ago than this (0: keep them
	// forever), every RetentionInterval (default 10 minutes).
	Retention         time.Duration
	RetentionInterval time.Duration
}

func (o *WorkerOptions) setDefaults() {
	if o.ID == "" {
		host, _ := os.Hostname()
		o.ID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), newID()[16:])
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = 5 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = time.Second
	}
	if o.DeadWorkerGrace <= 0 {
		o.DeadWorkerGrace = 10 * time.Second
	}
	if o.DeadWorkerGrace < 2*o.HeartbeatInterval {
		o.DeadWorkerGrace = 2 * o.HeartbeatInterval
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.RetentionInterval <= 0 {
		o.RetentionInterval = 10 * time.Minute
	}
}

// WaitUntilReady blocks until a worker of this engine has started serving.
func (e *Engine) WaitUntilReady(ctx context.Context) error {
	select {
	case <-e.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type inflight struct {
	ref         backend.TaskRef
	executionID string
	cancel      context.CancelFunc
}

type worker struct {
	e    *Engine
	opts WorkerOptions

	mu       sync.Mutex
	inflight map[int64]*inflight
	started  time.Time

	adopt adopter // first workflow tasks of executions dispatched in this process
}

// Serve runs a worker until ctx is cancelled, then stops claiming, lets running work
// finish (up to ShutdownTimeout), hands back what did not, and returns nil.
func (e *Engine) Serve(ctx context.Context, opts WorkerOptions) error {
	opts.setDefaults()
	w := &worker{e: e, opts: opts, inflight: map[int64]*inflight{}, started: e.clock.Now()}
	if opts.AwaitActivityWorkers {
		e.routing.await.Add(1)
		defer e.routing.await.Add(-1)
	}
	e.workersMu.Lock()
	e.workers[w] = struct{}{}
	e.workersMu.Unlock()
	defer func() {
		e.workersMu.Lock()
		delete(e.workers, w)
		e.workersMu.Unlock()
	}()
	if err := w.recordWorker(ctx); err != nil {
		return e.workerStartFailed(ctx, err)
	}
	defer w.removeWorker(context.WithoutCancel(ctx))
	if n, err := e.b.ReclaimTasks(ctx, opts.DeadWorkerGrace); err != nil {
		return e.workerStartFailed(ctx, err)
	} else if n > 0 {
		e.logger.Info("reclaimed tasks of stopped workers", "count", n, "worker_id", opts.ID)
		e.tel.reclaimed(n)
	}

	bgCtx, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBg()
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { defer bg.Done(); w.heartbeatLoop(bgCtx) }()
	bg.Add(1)
	go func() { defer bg.Done(); w.scheduleLoop(ctx) }()
	bg.Add(1)
	go func() { defer bg.Done(); w.retentionLoop(ctx) }()
	e.listen()
	e.readyMu.Do(func() { close(e.ready) })

	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	sem := make(chan struct{}, opts.Concurrency)
	slotFreed := make(chan struct{}, 1)
	var wg sync.WaitGroup
	w.startAdopting(ctx, workCtx, sem, slotFreed, &wg)
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		wakeC := e.wake.C()
		free := opts.Concurrency - len(sem)
		if free == 0 {
			select {
			case <-ctx.Done():
			case <-slotFreed:
			}
			continue
		}
		tasks, err := e.b.ClaimTasks(ctx, backend.ClaimRequest{WorkerID: opts.ID, Queues: opts.Queues, Limit: free, Lease: opts.LeaseDuration, MaxConcurrent: e.activityCaps(),
			RouteActivities: true, Activities: e.activityNames()})
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			e.logger.Error("claiming tasks", "worker_id", opts.ID, "err", err)
			sleepCtx(ctx, backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		for _, t := range tasks {
			sem <- struct{}{}
			wg.Add(1)
			go func(t backend.Task) {
				defer func() {
					<-sem
					select {
					case slotFreed <- struct{}{}:
					default:
					}
					wg.Done()
				}()
				w.runChain(ctx, workCtx, t)
			}(t)
		}
		if len(tasks) == free {
			continue
		}
		if len(tasks) == 0 && len(sem) == 0 && e.advanceVirtualTime(ctx, opts.Queues) {
			continue
		}
		timer := time.NewTimer(opts.PollInterval)
		select {
		case <-ctx.Done():
		case <-wakeC:
		case <-timer.C:
			e.tel.woken(wakePoll)
		}
		timer.Stop()
	}

	// Graceful shutdown: running tasks get ShutdownTimeout to finish.
	w.stopAdopting()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(opts.ShutdownTimeout):
		cancelWork()
		select {
		case <-done:
		case <-time.After(stopGrace):
			// A Go activity without a timeout runs on its task's goroutine; one that
			// ignores its context is left running. Its lease is no longer renewed, so
			// another worker takes the task over; its late outcome is refused.
			e.cfg.logger.Warn("stopping with tasks still running: their activities ignore cancellation (give them a timeout)",
				"worker_id", opts.ID, "tasks", w.inflightCount())
		}
	}
	stopBg()
	bg.Wait()
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// stopGrace is how long a stopping worker waits for its tasks after cancelling them.
const stopGrace = 5 * time.Second

// inflightCount is how many tasks this worker runs.
func (w *worker) inflightCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.inflight)
}

func (w *worker) track(t backend.Task, cancel context.CancelFunc) {
	w.mu.Lock()
	w.inflight[t.ID] = &inflight{ref: t.Ref(), executionID: t.ExecutionID, cancel: cancel}
	w.mu.Unlock()
}

// untrack forgets the task, unless its row is tracked again under a newer fence (a
// sequential step reuses the finished activity's row for the next one).
func (w *worker) untrack(ref backend.TaskRef) {
	w.mu.Lock()
	if f, ok := w.inflight[ref.ID]; ok && f.ref == ref {
		delete(w.inflight, ref.ID)
	}
	w.mu.Unlock()
}

func (w *worker) heartbeatLoop(ctx context.Context) {
	e := w.e
	tick := time.NewTicker(w.opts.HeartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := w.recordWorker(ctx); err != nil && ctx.Err() == nil {
			e.logger.Warn("worker heartbeat", "worker_id", w.opts.ID, "err", err)
		}
		// In virtual time the clock jumps while this (only) worker is idle, so heartbeats
		// would look stale to it: there is no one else's work to reclaim anyway.
		if e.cfg.virtual != nil {
			continue
		}
		w.failUnstarted(ctx)
		if n, err := e.b.ReclaimTasks(ctx, w.opts.DeadWorkerGrace); err == nil && n > 0 {
			e.logger.Info("reclaimed tasks of stopped workers", "count", n, "worker_id", w.opts.ID)
			e.tel.reclaimed(n)
			e.wake.Notify()
		}
		// Renewing every tick also tells a running activity within a second that its
		// task is gone (execution cancelled or lease taken over): its context is cancelled.
		w.extendLeases(ctx)
	}
}

func (w *worker) extendLeases(ctx context.Context) {
	w.mu.Lock()
	refs := make([]backend.TaskRef, 0, len(w.inflight))
	for _, f := range w.inflight {
		refs = append(refs, f.ref)
	}
	w.mu.Unlock()
	if len(refs) == 0 {
		return
	}
	lost, err := w.e.b.ExtendLeases(ctx, w.opts.ID, refs, w.opts.LeaseDuration)
	if err != nil {
		w.e.logger.Warn("extending leases", "worker_id", w.opts.ID, "err", err)
		return
	}
	w.leasesLost(lost)
}

// leasesLost cancels the attempts whose leases are gone: only the one that held that
// fence, as the row may carry the next step's activity by now (a sequential step reuses
// it), to be renewed at the next tick.
func (w *worker) leasesLost(lost []backend.TaskRef) {
	w.mu.Lock()
	for _, r := range lost {
		if f, ok := w.inflight[r.ID]; ok && f.ref == r {
			f.cancel()
		}
	}
	w.mu.Unlock()
}

// runChain processes a claimed task and then, in the same goroutine and slot, each task
// handed off to it (the next step of the same execution, claimed by the commit).
func (w *worker) runChain(serveCtx, workCtx context.Context, t backend.Task) {
	for {
		tctx, cancel := context.WithCancel(workCtx)
		w.track(t, cancel)
		next := w.process(tctx, workCtx, t)
		cancel()
		w.untrack(t.Ref())
		if next == nil {
			return
		}
		if serveCtx.Err() != nil {
			// Stopping: give the handed-off task back for another worker.
			_ = w.e.b.ReleaseTask(context.WithoutCancel(workCtx), next.Ref(), w.e.clock.Now())
			return
		}
		t = *next
	}
}

// handOff returns the backend's HandOff extension, if it has one.
func (w *worker) handOff() (backend.HandOff, bool) {
	h, ok := w.e.b.(backend.HandOff)
	return h, ok && !w.e.cfg.noHandOff
}

// claimsWithCommit tells whether the commit of res has a task to claim for this
// worker: an activity it schedules that is due and that this worker runs, or, when it
// ends a child, the parent's workflow task (backend.ParentHandOff).
func (w *worker) claimsWithCommit(ex *backend.Execution, res *backend.WorkflowTaskResult, now time.Time) bool {
	if res.Finish != nil {
		_, parents := w.e.b.(backend.ParentHandOff)
		return parents && ex.ParentID != ""
	}
	return res.ContinueAsNew == nil && hasDueActivity(res.Tasks, now) && w.routes(res.Tasks, now)
}

// claimOne describes a claim of one task for this worker, used by hand-offs.
func (w *worker) claimOne() backend.ClaimRequest {
	return backend.ClaimRequest{WorkerID: w.opts.ID, Queues: w.opts.Queues, Limit: 1, Lease: w.opts.LeaseDuration, MaxConcurrent: w.e.activityCaps(),
		RouteActivities: true, Activities: w.e.activityNames()}
}

func (w *worker) process(ctx, workCtx context.Context, t backend.Task) (next *backend.Task) {
	var err error
	w.e.tel.taskStarted(t)
	switch t.Kind {
	case backend.TaskWorkflow:
		next, err = w.runWorkflowTask(workCtx, t)
	case backend.TaskActivity:
		next, err = w.runActivityTask(ctx, workCtx, t)
	case backend.TaskTimer:
		err = w.e.b.FireTimer(workCtx, t.Ref())
		if err == nil {
			w.e.taskReady(t.Queue)
		}
	case backend.TaskDeadline:
		err = w.runDeadlineTask(workCtx, t)
	default:
		err = fmt.Errorf("unknown task kind %q", t.Kind)
	}
	if err == nil || errors.Is(err, backend.ErrLeaseLost) || errors.Is(err, backend.ErrStaleExecution) {
		return next
	}
	w.e.logger.Error("task failed; handing it back", "task_id", t.ID, "kind", t.Kind, "execution_id", t.ExecutionID, "seq", t.Seq, "worker_id", w.opts.ID, "err", err)
	if rerr := w.giveBack(context.WithoutCancel(workCtx), t.Ref(), w.e.clock.Now().Add(time.Second)); rerr == nil {
		w.e.wakeAt(w.e.clock.Now().Add(time.Second))
	}
	return nil
}

// giveBack releases a task this worker could not finish, retrying while the database is
// unreachable: a task left claimed by a live worker would wait out its whole lease.
func (w *worker) giveBack(ctx context.Context, ref backend.TaskRef, at time.Time) error {
	deadline := time.Now().Add(w.opts.LeaseDuration)
	backoff := 50 * time.Millisecond
	for {
		err := w.e.b.ReleaseTask(ctx, ref, at)
		if err == nil || errors.Is(err, backend.ErrLeaseLost) || time.Now().After(deadline) {
			return err
		}
		w.e.logger.Warn("giving a task back", "task_id", ref.ID, "worker_id", w.opts.ID, "err", err)
		time.Sleep(backoff)
		backoff = min(2*backoff, 2*time.Second)
	}
}

// ---- workflow tasks ----

func (w *worker) runWorkflowTask(ctx context.Context, t backend.Task) (*backend.Task, error) {
	e := w.e
	// Hot path: the execution's script is parked here. Its version is checked by the
	// commit, so no read of the execution is needed; if another worker advanced it
	// meanwhile the commit fails as stale and the task (still ours) takes the cold path.
	lr := e.cache.take(t.ExecutionID)
	e.tel.cacheLookup(lr != nil)
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
	span := w.e.tel.startWorkflowTask(ctx, t, ex, lr.lastEventID == 0 && ex.Version > 0, w.opts.ID)
	defer func() { span.end(err) }()
	events, err := w.e.b.History(ctx, ex.ID, lr.lastEventID)
	if err != nil {
		lr.run.Close()
		return nil, fmt.Errorf("reading history of %s: %w", ex.ID, err)
	}
	if len(events) > 0 {
		lr.lastEventID = events[len(events)-1].ID
	}
	step := lr.run.Advance(events)
	span.step(events, step)
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
	return &liveRun{id: ex.ID, ex: ex, run: run, version: ex.Version, logs: logs}, nil
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
	if h, ok := w.handOff(); ok && w.claimsWithCommit(ex, &res, now) {
		version, claimed, err = h.CompleteWorkflowTaskAndClaim(ctx, res, w.claimOne())
	} else {
		version, err = e.b.CompleteWorkflowTask(ctx, res)
	}
	if err != nil {
		if lr != nil {
			lr.run.Close()
		}
		childrenDropped(kids)
		return nil, fmt.Errorf("committing workflow task of %s: %w", ex.ID, err)
	}
	next := w.committed(ex, lr, step, &res, version, claimed, wakeTimes)
	w.childrenCommitted(kids)
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
			payload, _ := json.Marshal(backend.ActivityPayload{Name: s.Name, Args: s.Command.Args, Options: s.Command.Options, Trace: e.tel.traceOf(ex)})
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
				Bundle: e.tel.childBundle(ex, fmt.Sprintf("%s/%d", ex.ID, s.Seq)), Entry: s.Name, Args: s.Command.Args, Queue: queue, StartAt: now,
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
	e.tel.childrenStarted(res.Children)
	// Wake other workers for what this worker does not take itself. A finishing
	// child's commit may have claimed its parent's workflow task for this worker.
	parentTaken := res.Finish != nil && ex.ParentID != "" && slices.ContainsFunc(claimed, func(t backend.Task) bool {
		return t.Kind == backend.TaskWorkflow && t.ExecutionID == ex.ParentID
	})
	if len(res.Tasks) > len(claimed) || len(res.Children) > 0 || res.ContinueAsNew != nil || (res.Finish != nil && ex.ParentID != "" && !parentTaken) {
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
			e.tel.executionEnded(ex, res.Finish, res.DeadLetter)
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
		e.tel.executionTreeEnded(ctx, e.b, t.ExecutionID, backend.StatusTimedOut)
		e.endedLocally(t.ExecutionID)
	}
	if err := e.b.DeleteTask(ctx, t.Ref()); err != nil && !errors.Is(err, backend.ErrLeaseLost) {
		return err
	}
	return nil
}

// ---- activity tasks ----

func (w *worker) runActivityTask(ctx, workCtx context.Context, t backend.Task) (*backend.Task, error) {
	e := w.e
	var p backend.ActivityPayload
	if err := json.Unmarshal(t.Payload, &p); err != nil {
		return nil, fmt.Errorf("decoding activity task %d: %w", t.ID, err)
	}
	ctx, span := e.tel.startActivity(ctx, t, &p, w.opts.ID)
	defer span.end()
	fail := func(err error, attempts int) (*backend.Task, error) {
		return w.completeActivity(workCtx, t, backend.ActivityResult{
			Task: t.Ref(), ExecutionID: t.ExecutionID, Seq: t.Seq, Name: p.Name,
			Error: &backend.ErrorInfo{Message: err.Error(), Type: activities.ErrorType(err), Activity: p.Name, Attempts: attempts},
		})
	}
	act, ok := e.reg.Lookup(p.Name)
	if !ok {
		return fail(e.checkActivity(p.Name), t.Attempt)
	}
	var call builtins.CallOptions
	if len(p.Options) > 0 {
		if err := json.Unmarshal(p.Options, &call); err != nil {
			return fail(fmt.Errorf("activity %q: bad options %s: %w", p.Name, p.Options, err), t.Attempt)
		}
	}
	policy := activities.DefaultRetryPolicy()
	if act.Options.Retry != nil {
		policy = *act.Options.Retry
	}
	if call.Retry != nil {
		policy = retryPolicyFromSpec(*call.Retry)
	}
	if err := e.activityCrashed(p.Name, t.Attempt, policy.MaxAttempts); err != nil {
		return fail(activities.NonRetryable(err), t.Attempt-1)
	}
	cached, cacheTTL := act.Options.Cached, act.Options.CacheTTL
	if call.Cached {
		cached = true
		if call.CacheTTLMS > 0 {
			cacheTTL = time.Duration(call.CacheTTLMS) * time.Millisecond
		}
	}
	var cacheKey string
	if cached {
		cacheKey = resultCacheKey(p.Name, act.Options.Version, p.Args)
		if hit, ok, err := e.b.CachedResult(workCtx, cacheKey); err != nil {
			e.logger.Warn("reading the result cache", "activity", p.Name, "execution_id", t.ExecutionID, "seq", t.Seq, "err", err)
		} else if ok {
			return w.completeActivity(workCtx, t, backend.ActivityResult{
				Task: t.Ref(), ExecutionID: t.ExecutionID, Seq: t.Seq, Name: p.Name, Result: hit, CacheHit: true,
			})
		}
	}
	actx, cancelAttempt := context.WithCancelCause(ctx)
	defer cancelAttempt(nil)
	actx = activities.WithInfo(actx, activities.Info{ExecutionID: t.ExecutionID, Seq: t.Seq, Attempt: t.Attempt, Name: p.Name, LastHeartbeat: p.Heartbeat})
	if call.TimeoutMS > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(actx, time.Duration(call.TimeoutMS)*time.Millisecond)
		defer cancel()
	}
	hbTimeout := act.Options.HeartbeatTimeout
	if call.HeartbeatTimeoutMS > 0 {
		hbTimeout = time.Duration(call.HeartbeatTimeoutMS) * time.Millisecond
	}
	beats := newHeartbeats(e.clock.Now())
	actx = activities.WithHeartbeatFunc(actx, beats.beat)
	if hbTimeout > 0 {
		actx = activities.Abandonable(actx) // the watchdog's cancellation must end the attempt at once
		stopWatch := beats.watch(hbTimeout, func() {
			cancelAttempt(&activities.Error{Type: "heartbeat_timeout", Message: fmt.Sprintf("activity %q sent no heartbeat for %s", p.Name, hbTimeout)})
		})
		defer stopWatch()
	}
	out, err := act.Invoke(actx, p.Args)
	span.attempted(err)
	if err == nil {
		err = e.checkPayload(fmt.Sprintf("activity %q: the result", p.Name), out)
		if err != nil {
			err = activities.NonRetryable(err)
		}
	}
	if err == nil {
		var entry *backend.CacheEntry
		if cached {
			entry = &backend.CacheEntry{Key: cacheKey, Activity: p.Name, Result: out}
			if cacheTTL > 0 {
				exp := e.clock.Now().Add(cacheTTL)
				entry.ExpiresAt = &exp
			}
		}
		return w.completeActivity(workCtx, t, backend.ActivityResult{
			Task: t.Ref(), ExecutionID: t.ExecutionID, Seq: t.Seq, Name: p.Name, Result: out, Cache: entry,
		})
	}
	if workCtx.Err() != nil {
		// The worker is shutting down: give the task back untouched.
		return nil, e.b.ReleaseTask(context.WithoutCancel(workCtx), t.Ref(), e.clock.Now())
	}
	var hbErr *activities.Error
	if cause := context.Cause(actx); errors.As(cause, &hbErr) && hbErr.Type == "heartbeat_timeout" {
		err = hbErr
	} else if ctx.Err() != nil {
		return nil, backend.ErrLeaseLost // the lease was lost (or the execution ended) while running
	} else if call.TimeoutMS > 0 && errors.Is(actx.Err(), context.DeadlineExceeded) {
		err = &activities.Error{Type: "timeout", Message: fmt.Sprintf("activity %q timed out after %s", p.Name, time.Duration(call.TimeoutMS)*time.Millisecond), Cause: err}
	}
	if details := beats.details(); details != nil {
		p.Heartbeat = details
	}
	if policy.ShouldRetry(t.Attempt, err) {
		at := e.clock.Now().Add(policy.Delay(t.Attempt + 1))
		payload, _ := json.Marshal(p)
		if rerr := e.b.RetryActivityTask(workCtx, t.Ref(), at, t.Attempt+1, payload); rerr != nil {
			return nil, rerr
		}
		e.logger.Debug("activity attempt failed; retrying", "activity", p.Name, "execution_id", t.ExecutionID, "seq", t.Seq, "task_id", t.ID, "worker_id", w.opts.ID, "attempt", t.Attempt, "next", at, "err", err)
		e.wakeAt(at)
		return nil, nil
	}
	return fail(err, t.Attempt)
}

// completeActivity records an activity's outcome and, where the backend can, claims the
// execution's workflow task in the same transaction to go on with it in this goroutine.
func (w *worker) completeActivity(ctx context.Context, t backend.Task, r backend.ActivityResult) (*backend.Task, error) {
	r.Error = interpreter.BoundError(r.Error)
	if next, done, err := w.completeActivityFused(ctx, t, r); done {
		return next, err
	}
	if h, ok := w.handOff(); ok {
		next, err := h.CompleteActivityTaskAndClaim(ctx, r, w.claimOne())
		if err != nil {
			return nil, err
		}
		if next == nil {
			w.e.taskReady(t.Queue)
		}
		return next, nil
	}
	if err := w.e.b.CompleteActivityTask(ctx, r); err != nil {
		return nil, err
	}
	w.e.taskReady(t.Queue)
	return nil, nil
}

func retryPolicyFromSpec(s builtins.RetrySpec) activities.RetryPolicy {
	return activities.RetryPolicy{
		MaxAttempts:   s.MaxAttempts,
		InitialDelay:  time.Duration(s.InitialDelayMS) * time.Millisecond,
		BackoffFactor: s.BackoffFactor,
		MaxDelay:      time.Duration(s.MaxDelayMS) * time.Millisecond,
		Jitter:        s.Jitter,
		NonRetryable:  s.NonRetryable,
	}
}

// heartbeats records an activity attempt's heartbeats.
type heartbeats struct {
	mu   sync.Mutex
	last time.Time
	data json.RawMessage
}

func newHeartbeats(now time.Time) *heartbeats { return &heartbeats{last: now} }

func (h *heartbeats) beat(details any) {
	var raw json.RawMessage
	if details != nil {
		if b, err := json.Marshal(details); err == nil {
			raw = b
		}
	}
	h.mu.Lock()
	h.last = time.Now()
	if raw != nil {
		h.data = raw
	}
	h.mu.Unlock()
}

func (h *heartbeats) details() json.RawMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.data
}

// watch calls expired once when no heartbeat arrives for timeout.
func (h *heartbeats) watch(timeout time.Duration, expired func()) (stop func()) {
	h.mu.Lock()
	h.last = time.Now()
	h.mu.Unlock()
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(max(timeout/10, 10*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				h.mu.Lock()
				silent := time.Since(h.last)
				h.mu.Unlock()
				if silent > timeout {
					expired()
					return
				}
			}
		}
	}()
	return func() { close(done) }
}

// resultCacheKey identifies a cached activity result: the activity's name and version
// and its arguments in canonical JSON (object keys sorted).
func resultCacheKey(name, version string, args json.RawMessage) string {
	canon := args
	var v any
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.UseNumber()
	if err := dec.Decode(&v); err == nil {
		if b, err := json.Marshal(v); err == nil {
			canon = b
		}
	}
	sum := sha256.Sum256([]byte(name + "\x00" + version + "\x00" + string(canon)))
	return name + ":" + hex.EncodeToString(sum[:16])
}

// activityCaps returns the registered activities' max_concurrent limits, which hold
// across every worker claiming from the database.
func (e *Engine) activityCaps() map[string]int {
	e.capsMu.Lock()
	defer e.capsMu.Unlock()
	if e.capsValid {
		return e.caps
	}
	var caps map[string]int
	for _, name := range e.reg.Names() {
		if a, ok := e.reg.Lookup(name); ok && a.Options.MaxConcurrent > 0 {
			if caps == nil {
				caps = map[string]int{}
			}
			caps[name] = a.Options.MaxConcurrent
		}
	}
	e.caps, e.capsValid = caps, true
	return caps
}
