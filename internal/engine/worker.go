package engine

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/telemetry"
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
	strays   strays // guarded by mu
	started  time.Time

	adopt adopter // first workflow tasks of executions dispatched in this process

	// remote, for the worker of remote activities, hands its attempts to pollers.
	remote *RemoteActivities
}

// claimBackoffMax bounds the wait between claims that fail: a worker finds a database
// back (a restarted server, a promoted standby) within about a second, for the price of
// a connection attempt a second while it is away.
const claimBackoffMax = time.Second

// sleepOrWake waits for d, ctx's end or wake, whichever comes first.
func sleepOrWake(ctx context.Context, d time.Duration, wake <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-wake:
	}
}

// whileUnavailable runs fn again, with backoff, for as long as it fails because the
// database is unavailable (backend.Retryable) and ctx lasts: a worker starting during
// an outage waits for the database instead of giving up.
func whileUnavailable(ctx context.Context, fn func() error) error {
	backoff := 100 * time.Millisecond
	for {
		err := fn()
		if !backend.Retryable(err) || ctx.Err() != nil {
			return err
		}
		backend.Sleep(ctx, backoff)
		backoff = min(2*backoff, 5*time.Second)
	}
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
	if err := whileUnavailable(ctx, func() error { return w.recordWorker(ctx) }); err != nil {
		return e.workerStartFailed(ctx, err)
	}
	defer w.removeWorker(context.WithoutCancel(ctx))
	gone := w.reclaimGone(ctx)
	var n int
	if err := whileUnavailable(ctx, func() (err error) {
		n, err = e.b.ReclaimTasks(ctx, opts.DeadWorkerGrace)
		return err
	}); err != nil {
		return e.workerStartFailed(ctx, err)
	} else if n += gone; n > 0 {
		e.logger.Info("reclaimed tasks of stopped workers", "count", n, "worker_id", opts.ID)
		e.tel.Reclaimed(n)
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
			w.claimUncertain(err)
			// While the database is away a wake-up ends the backoff: after a failover
			// the listener's reconnection is the first sign it is back (see
			// claimBackoffMax). Other errors sleep it out, however busy the wake-ups.
			if !backend.Retryable(err) {
				wakeC = nil
			}
			sleepOrWake(ctx, backoff, wakeC)
			backoff = min(backoff*2, claimBackoffMax)
			continue
		}
		backoff = 50 * time.Millisecond
		for _, t := range tasks {
			// Held from now on, for releaseStrays; runChain tracks it with its context.
			w.track(t, func() {})
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
			e.tel.Woken(telemetry.WakePoll)
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
