package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stent-go/stent/backend"
)

// Activity routing: every worker records, with its heartbeat, the queues and the
// activities it serves (backend.Routing); a worker claims only the activity tasks of
// activities it has; a step whose activity this process does not have is scheduled
// when a live worker has it (or, with WorkerOptions.AwaitActivityWorkers, always: it
// waits for such a worker), and fails at once otherwise.

// liveWorkersTTL bounds how stale the list of live workers used to accept a step for
// an activity this process does not run may be.
const liveWorkersTTL = time.Second

// routingState is the engine's view of the other workers.
type routingState struct {
	// await is set while a worker with AwaitActivityWorkers serves.
	await atomic.Int32
	// names caches the registered activity names claims are routed by (nil: stale).
	names atomic.Pointer[[]string]

	mu      sync.Mutex
	live    []backend.WorkerInfo
	readAt  time.Time
	readErr error
}

// WorkerInfo describes a live worker, as `stent workers` shows it.
type WorkerInfo = backend.WorkerInfo

// liveGrace is how recent a worker's last heartbeat must be for it to count as
// alive: the dead-worker grace of this engine's workers (10s by default).
func (e *Engine) liveGrace() time.Duration {
	grace := 10 * time.Second
	e.workersMu.Lock()
	for w := range e.workers {
		grace = max(grace, w.opts.DeadWorkerGrace)
	}
	e.workersMu.Unlock()
	return grace
}

// DeadWorkerGrace is how long a worker may stay silent before it counts as stopped
// and its tasks are reclaimed: the largest grace of this engine's workers, at least
// the default 10s.
func (e *Engine) DeadWorkerGrace() time.Duration { return e.liveGrace() }

// Workers lists the live workers (a heartbeat within the dead-worker grace) of every
// process using this database, by ID. A backend without the routing registry lists
// none.
func (e *Engine) Workers(ctx context.Context) ([]WorkerInfo, error) {
	r, ok := e.b.(backend.Routing)
	if !ok {
		return nil, nil
	}
	ws, err := r.ListWorkers(ctx, e.clock.Now().Add(-e.liveGrace()))
	if err != nil {
		return nil, fmt.Errorf("listing workers: %w", err)
	}
	return ws, nil
}

// liveWorkers is Workers, cached for liveWorkersTTL.
func (e *Engine) liveWorkers(ctx context.Context) ([]WorkerInfo, error) {
	rs := &e.routing
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if now := time.Now(); rs.readAt.IsZero() || now.Sub(rs.readAt) > liveWorkersTTL {
		rs.live, rs.readErr = e.Workers(ctx)
		rs.readAt = now
	}
	return rs.live, rs.readErr
}

// workerInfo is what worker w records about itself.
func (w *worker) info() WorkerInfo {
	host, _ := os.Hostname()
	w.mu.Lock()
	inFlight := len(w.inflight)
	w.mu.Unlock()
	info := WorkerInfo{ID: w.opts.ID, Host: host, PID: os.Getpid(), Queues: w.opts.Queues,
		Activities: w.e.activityNames(), Concurrency: w.opts.Concurrency, InFlight: inFlight, StartedAt: w.started}
	if w.remote != nil {
		info.Activities, info.Queues = w.remote.advertised()
		info.Concurrency = max(1, inFlight)
	}
	return info
}

// recordWorker records the worker's info and heartbeat (a plain heartbeat on a backend
// without the routing registry).
func (w *worker) recordWorker(ctx context.Context) error {
	if r, ok := w.e.b.(backend.Routing); ok {
		return r.RecordWorker(ctx, w.info())
	}
	return w.e.b.Heartbeat(ctx, w.opts.ID)
}

// removeWorker deletes the worker's row when it stops gracefully, so that routing and
// `stent workers` stop counting it at once.
func (w *worker) removeWorker(ctx context.Context) {
	if r, ok := w.e.b.(backend.Routing); ok {
		if err := r.RemoveWorker(ctx, w.opts.ID); err != nil {
			w.e.logger.Warn("removing the worker's row", "worker", w.opts.ID, "err", err)
		}
	}
}

// routes reports whether the worker runs every due activity task of tasks, so that a
// hand-off (which claims them for this worker) never takes one it cannot run.
func (w *worker) routes(tasks []backend.NewTask, now time.Time) bool {
	for _, t := range tasks {
		if t.Kind != backend.TaskActivity || t.RunAt.After(now) {
			continue
		}
		var p struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(t.Payload, &p) != nil || w.remote != nil {
			return false
		}
		if _, ok := w.e.reg.Lookup(p.Name); !ok {
			return false
		}
	}
	return true
}

// acceptActivity decides whether a script may schedule a step of activity name: this
// process runs it, a live worker runs it, or a worker of this process waits for one
// (AwaitActivityWorkers). Otherwise the step fails at once, naming the registered
// activities.
func (e *Engine) acceptActivity(name string) error {
	if _, ok := e.reg.Lookup(name); ok {
		return nil
	}
	if e.routing.await.Load() > 0 || e.remoteRuns(name) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, err := e.liveWorkers(ctx)
	if err != nil {
		e.logger.Warn("listing live workers", "err", err)
	}
	for _, w := range ws {
		if w.HasActivity(name) {
			return nil
		}
	}
	return e.checkActivity(name)
}

// remoteRuns reports whether a poller of this process runs activity name.
func (e *Engine) remoteRuns(name string) bool {
	e.workersMu.Lock()
	defer e.workersMu.Unlock()
	for w := range e.workers {
		if w.remote != nil && w.remote.runs(name) {
			return true
		}
	}
	return false
}

// WaitingFor describes what keeps an execution's pending tasks from being claimed:
// an activity no live worker runs, or a queue no live worker serves, one line each
// (for example `waiting for a worker that runs "charge" (none alive)`). Nothing when
// every pending task has a live worker able to take it.
func (e *Engine) WaitingFor(ctx context.Context, executionID string) ([]string, error) {
	r, ok := e.b.(backend.Routing)
	if !ok {
		return nil, nil
	}
	pending, err := r.PendingTasks(ctx, executionID)
	if err != nil || len(pending) == 0 {
		return nil, err
	}
	ws, err := e.Workers(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	now := e.clock.Now()
	for _, p := range pending {
		if p.RunAt.After(now) {
			continue // not due yet: nothing waits for it
		}
		var capable []WorkerInfo
		for _, w := range ws {
			if p.Kind != backend.TaskActivity || w.HasActivity(p.Activity) {
				capable = append(capable, w)
			}
		}
		var msg string
		switch {
		case p.Kind == backend.TaskActivity && len(capable) == 0:
			msg = fmt.Sprintf("waiting for a worker that runs %q (none alive)", p.Activity)
		case !slices.ContainsFunc(capable, func(w WorkerInfo) bool { return w.ServesQueue(p.Queue) }):
			if p.Kind == backend.TaskActivity {
				msg = fmt.Sprintf("waiting for a worker that runs %q on queue %q (none alive)", p.Activity, p.Queue)
			} else {
				msg = fmt.Sprintf("waiting for a worker that serves queue %q (none alive)", p.Queue)
			}
		}
		if msg != "" && !seen[msg] {
			seen[msg] = true
			out = append(out, msg)
		}
	}
	sort.Strings(out)
	return out, nil
}

// activityNames returns the registered activity names, which this process's claims
// are routed by.
func (e *Engine) activityNames() []string {
	if p := e.routing.names.Load(); p != nil {
		return *p
	}
	names := e.reg.Names()
	e.routing.names.Store(&names)
	return names
}

// failUnstarted fails the activity steps whose schedule-to-start timeout passed
// before any worker started them: each is claimed (by whichever worker gets there
// first) and completed with an error of type "timeout".
func (w *worker) failUnstarted(ctx context.Context) {
	e := w.e
	r, ok := e.b.(backend.Routing)
	if !ok {
		return
	}
	tasks, err := r.ClaimStartTimeouts(ctx, backend.ClaimRequest{WorkerID: w.opts.ID, Limit: 16, Lease: w.opts.LeaseDuration})
	if err != nil {
		if ctx.Err() == nil {
			e.logger.Warn("claiming activity tasks past their schedule-to-start timeout", "err", err)
		}
		return
	}
	for _, t := range tasks {
		var p backend.ActivityPayload
		_ = json.Unmarshal(t.Payload, &p)
		var o struct {
			ScheduleToStartMS int64 `json:"schedule_to_start_ms"`
		}
		_ = json.Unmarshal(p.Options, &o)
		msg := fmt.Sprintf("activity %q was not started within %s (schedule_to_start_timeout)", p.Name,
			time.Duration(o.ScheduleToStartMS)*time.Millisecond)
		if ws, err := e.liveWorkers(ctx); err == nil && !slices.ContainsFunc(ws, func(w WorkerInfo) bool { return w.HasActivity(p.Name) }) {
			msg += fmt.Sprintf(": no live worker runs %q", p.Name)
		}
		err := e.b.CompleteActivityTask(ctx, backend.ActivityResult{Task: t.Ref(), ExecutionID: t.ExecutionID, Seq: t.Seq,
			Name: p.Name, Error: &backend.ErrorInfo{Message: msg, Type: "timeout", Activity: p.Name, Attempts: t.Attempt}})
		if err != nil {
			e.logger.Warn("failing an activity step past its schedule-to-start timeout", "execution", t.ExecutionID, "err", err)
			continue
		}
		e.logger.Info("activity step not started in time", "execution_id", t.ExecutionID, "activity", p.Name)
		e.taskReady(t.Queue)
	}
}
