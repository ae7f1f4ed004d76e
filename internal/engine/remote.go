package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stent-go/stent/activities"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/errs"
)

// Remote activities are run by processes that poll for them (the HTTP API's
// /activity-tasks, in any language). The process that answers the polls is their
// worker: a poll claims an activity task of one of the polled names for a worker of
// its own (RemoteActivities), which runs it through runActivityTask like any other;
// only the call of the activity differs: the attempt is handed to the poller under a
// random token and waits for the poller's answer (complete or fail). Retry policy,
// attempt_failed events, result cache, payload checks, dead letters and leases are
// therefore those of Go and command activities. A poller that stops heartbeating for
// the heartbeat timeout loses its attempt, which counts as failed (heartbeat_timeout)
// and is retried per the policy. Tokens live in this process only: when it stops, the
// attempts its pollers hold are handed back (a crash: reclaimed after the dead-worker
// grace), and their tokens are unknown to the next process.

// RemoteOptions configures RemoteActivities. Zero values take the defaults.
type RemoteOptions struct {
	// WorkerID names the worker holding remote attempts' leases (default:
	// host-pid-random-remote).
	WorkerID string
	// HeartbeatTimeout is how long a poller may hold an attempt without a heartbeat
	// (default 30s); a call's heartbeat_timeout option overrides it.
	HeartbeatTimeout time.Duration
	// Advertise is how long an activity name stays advertised (routing, `stent
	// workers`) after its last poll or heartbeat (default 1 minute).
	Advertise time.Duration
	// PollInterval, HeartbeatInterval, DeadWorkerGrace and LeaseDuration are those of
	// WorkerOptions.
	PollInterval, HeartbeatInterval, DeadWorkerGrace, LeaseDuration time.Duration
}

// RemotePoll is a poll for one remote activity attempt.
type RemotePoll struct {
	Activities []string      // the activity names the poller runs (at least one)
	Queue      string        // only tasks of this queue ("": any)
	Wait       time.Duration // how long to wait for a task
}

// RemoteTask is an attempt handed to a poller.
type RemoteTask struct {
	Token       string // identifies the attempt in Heartbeat, Complete and Fail
	Activity    string
	Args        json.RawMessage // JSON array
	Attempt     int             // 1 for the first attempt
	ExecutionID string
	Seq         int
	// Deadline is when the attempt is lost without a heartbeat (or its timeout).
	Deadline         time.Time
	HeartbeatTimeout time.Duration
	// LastHeartbeat holds the details of the previous attempt's last heartbeat.
	LastHeartbeat json.RawMessage
}

// RemoteHeartbeat answers a heartbeat.
type RemoteHeartbeat struct {
	Deadline time.Time
	// CancelRequested: the attempt was cancelled (its execution ended, its lease was
	// lost or this process is stopping); the poller should stop, its answer is refused.
	CancelRequested bool
}

var (
	// ErrRemoteTaskUnknown: no attempt has the token (never, or forgotten since).
	ErrRemoteTaskUnknown = errors.New("no such activity task")
	// ErrRemoteTaskEnded: the attempt was answered already, or was lost.
	ErrRemoteTaskEnded = errors.New("the activity task ended")
	// errUndelivered: the poll that claimed the task went away before taking it.
	errUndelivered = errors.New("remote attempt not delivered")
)

// RemoteActivities hands activity attempts to pollers; see NewRemoteActivities.
type RemoteActivities struct {
	e    *Engine
	w    *worker
	opts RemoteOptions

	mu      sync.Mutex
	tokens  map[string]*remoteTask
	names   map[string]*advert
	queues  map[string]*advert // "" for a poll of any queue
	serve   context.Context    // Run's context: no polls once done
	work    context.Context    // the attempts' context
	running bool
	stopped bool // Run is waiting for the attempts: no new ones
	wg      sync.WaitGroup

	recorded atomic.Bool // the worker's row exists
}

// advert is an advertised activity name or queue: polls waiting on it, last seen.
type advert struct {
	polls int
	last  time.Time
}

type remoteState int

const (
	remoteLive remoteState = iota
	remoteAnswered
	remoteEnded
)

// remoteTask is an attempt held by a poller.
type remoteTask struct {
	view   RemoteTask
	queue  string
	ctx    context.Context // the attempt's: heartbeats go to its watchdog
	hb     time.Duration
	answer chan remoteAnswer // buffered: the poller's answer

	state     remoteState // guarded by RemoteActivities.mu
	cancelled bool
	reason    string
	endedAt   time.Time

	recorded chan struct{} // closed once the attempt's outcome is committed (or not)
	recErr   error
}

type remoteAnswer struct {
	result json.RawMessage
	err    error
}

// offer carries a claimed task from the attempt's goroutine to the poll that claimed it.
type offer struct {
	got  chan *remoteTask // the attempt, once handed over
	gone chan struct{}    // closed when the poll gave up before taking it
	done chan struct{}    // closed when the attempt's processing ended
	rt   *remoteTask
}

type offerKey struct{}

// NewRemoteActivities returns the engine's worker for remote activities. It claims
// nothing until Run runs.
func (e *Engine) NewRemoteActivities(opts RemoteOptions) *RemoteActivities {
	if opts.HeartbeatTimeout <= 0 {
		opts.HeartbeatTimeout = 30 * time.Second
	}
	if opts.Advertise <= 0 {
		opts.Advertise = time.Minute
	}
	wo := WorkerOptions{ID: opts.WorkerID, Concurrency: 1, PollInterval: opts.PollInterval, HeartbeatInterval: opts.HeartbeatInterval,
		DeadWorkerGrace: opts.DeadWorkerGrace, LeaseDuration: opts.LeaseDuration}
	if wo.ID == "" {
		host, _ := os.Hostname()
		wo.ID = fmt.Sprintf("%s-%d-%s-remote", host, os.Getpid(), newID()[16:])
	}
	wo.setDefaults()
	r := &RemoteActivities{e: e, opts: opts, tokens: map[string]*remoteTask{}, names: map[string]*advert{}, queues: map[string]*advert{}}
	r.w = &worker{e: e, opts: wo, inflight: map[int64]*inflight{}, started: e.clock.Now(), remote: r}
	return r
}

// WorkerID is the ID of the worker holding remote attempts.
func (r *RemoteActivities) WorkerID() string { return r.w.opts.ID }

// Run records the worker and renews its attempts' leases until ctx is cancelled; it
// then answers polls with nothing, hands the attempts pollers hold back (runnable at
// once, not counted as attempts) and returns.
func (r *RemoteActivities) Run(ctx context.Context) error {
	e, w := r.e, r.w
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	r.mu.Lock()
	if r.running {
		r.mu.Unlock()
		return errors.New("remote activities: Run called twice")
	}
	r.running, r.serve, r.work = true, ctx, workCtx
	r.mu.Unlock()
	e.workersMu.Lock()
	e.workers[w] = struct{}{}
	e.workersMu.Unlock()
	defer func() {
		e.workersMu.Lock()
		delete(e.workers, w)
		e.workersMu.Unlock()
	}()
	defer func() {
		if r.recorded.Load() {
			w.removeWorker(context.WithoutCancel(ctx))
		}
	}()
	e.listen()
	// Other workers reclaim what dead workers held; this one records itself (once a
	// poll came) and renews its attempts' leases, which also tells an attempt within a
	// tick that its execution ended.
	tick := time.NewTicker(w.opts.HeartbeatInterval)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			r.prune()
			if err := r.record(ctx, false); err != nil && ctx.Err() == nil {
				e.logger.Warn("remote activities worker heartbeat", "worker_id", w.opts.ID, "err", err)
			}
			w.extendLeases(ctx)
		}
	}
	tick.Stop()
	// The pollers cannot answer a stopping server: give their attempts back now.
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
	cancelWork()
	finished := make(chan struct{})
	go func() { r.wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(stopGrace):
		e.logger.Warn("remote activities: stopping with attempts still being handed back", "worker_id", w.opts.ID)
	}
	return nil
}

// record records the worker's info and heartbeat, once a poll came (a server whose
// API no poller uses shows no worker).
func (r *RemoteActivities) record(ctx context.Context, polled bool) error {
	if !polled && !r.recorded.Load() {
		return nil
	}
	if err := r.w.recordWorker(ctx); err != nil {
		return fmt.Errorf("recording the remote activities worker: %w", err)
	}
	r.recorded.Store(true)
	return nil
}

// tombstone is how long an ended attempt's token is remembered, so that a late answer
// gets "ended" rather than "unknown".
const tombstone = 10 * time.Minute

// prune forgets old tokens and names no longer polled.
func (r *RemoteActivities) prune() {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for tok, rt := range r.tokens {
		if rt.state != remoteLive && !rt.endedAt.IsZero() && now.Sub(rt.endedAt) > tombstone {
			delete(r.tokens, tok)
		}
	}
	for _, m := range []map[string]*advert{r.names, r.queues} {
		for k, a := range m {
			if a.polls == 0 && now.Sub(a.last) > r.opts.Advertise {
				delete(m, k)
			}
		}
	}
}

// Poll waits up to p.Wait for an attempt of one of p.Activities, claims it and hands
// it over. It returns nil when the wait passes (or the worker stops) with nothing.
func (r *RemoteActivities) Poll(ctx context.Context, p RemotePoll) (*RemoteTask, error) {
	if len(p.Activities) == 0 {
		return nil, &errs.InputError{Err: errors.New(`a poll names the activities it runs: "activities": ["charge", ...]`)}
	}
	r.mu.Lock()
	serve := r.serve
	r.mu.Unlock()
	if serve == nil || serve.Err() != nil {
		return nil, nil
	}
	if r.advertise(p, +1) || !r.recorded.Load() {
		if err := r.record(ctx, true); err != nil {
			r.e.logger.Warn("recording the remote activities worker", "worker_id", r.w.opts.ID, "err", err)
		}
	}
	defer r.advertise(p, -1)
	wait, cancel := context.WithTimeout(ctx, p.Wait)
	defer cancel()
	req := backend.ClaimRequest{WorkerID: r.w.opts.ID, Kinds: []backend.TaskKind{backend.TaskActivity}, Limit: 1, Lease: r.w.opts.LeaseDuration,
		MaxConcurrent: r.e.activityCaps(), RouteActivities: true, Activities: p.Activities}
	if p.Queue != "" {
		req.Queues = []string{p.Queue}
	}
	backoff := 50 * time.Millisecond
	for wait.Err() == nil && serve.Err() == nil {
		wakeC := r.e.wake.C()
		tasks, err := r.e.b.ClaimTasks(wait, req)
		if err != nil {
			if wait.Err() != nil {
				break
			}
			r.e.logger.Error("claiming remote activity tasks", "worker_id", r.w.opts.ID, "err", err)
			r.w.claimUncertain(err)
			backend.Sleep(wait, backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		if len(tasks) > 0 {
			if rt := r.start(ctx, tasks[0]); rt != nil {
				return r.view(rt), nil
			}
			continue
		}
		timer := time.NewTimer(r.w.opts.PollInterval)
		select {
		case <-wait.Done():
		case <-serve.Done():
		case <-wakeC:
		case <-timer.C:
		}
		timer.Stop()
	}
	return nil, nil
}

// advertise counts a poll in (+1) or out (-1) of the advertised names and queues. It
// reports whether a name or queue is new.
func (r *RemoteActivities) advertise(p RemotePoll, delta int) (added bool) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	bump := func(m map[string]*advert, k string) {
		a := m[k]
		if a == nil {
			a = &advert{}
			m[k] = a
			added = true
		}
		a.polls += delta
		a.last = now
	}
	for _, n := range p.Activities {
		bump(r.names, n)
	}
	bump(r.queues, p.Queue)
	return added
}

// seen keeps the name and queue of an attempt held by a poller advertised.
func (r *RemoteActivities) seen(rt *remoteTask) {
	now := time.Now()
	for _, x := range []struct {
		m map[string]*advert
		k string
	}{{r.names, rt.view.Activity}, {r.queues, rt.queue}} {
		if a := x.m[x.k]; a != nil {
			a.last = now
		} else {
			x.m[x.k] = &advert{last: now}
		}
	}
}

// advertised returns the sorted activity names and the queues (nil: every queue) the
// pollers of this process run.
func (r *RemoteActivities) advertised() (names, queues []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for n := range r.names {
		names = append(names, n)
	}
	sort.Strings(names)
	if _, any := r.queues[""]; !any {
		for q := range r.queues {
			queues = append(queues, q)
		}
		sort.Strings(queues)
	}
	return names, queues
}

// runs reports whether a poller of this process runs activity name.
func (r *RemoteActivities) runs(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.names[name]
	return ok
}

// start runs the claimed task t on a goroutine of its own and waits for its attempt to
// be handed over. nil: the task ended without one (a cached result, bad options...) or
// the poll went away; its attempt is then given back untouched.
func (r *RemoteActivities) start(ctx context.Context, t backend.Task) *remoteTask {
	o := &offer{got: make(chan *remoteTask), gone: make(chan struct{}), done: make(chan struct{})}
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		if err := r.e.b.ReleaseTask(context.WithoutCancel(ctx), t.Ref(), r.e.clock.Now()); err != nil {
			r.e.logger.Warn("handing back an activity task claimed while stopping", "task_id", t.ID, "err", err)
		}
		return nil
	}
	r.wg.Add(1)
	r.mu.Unlock()
	go r.run(o, t)
	select {
	case rt := <-o.got:
		return rt
	case <-o.done:
		return nil
	case <-ctx.Done():
		close(o.gone)
		return nil
	}
}

// run processes a claimed activity task as a worker does, then whatever its completion
// hands off (the execution's next workflow task).
func (r *RemoteActivities) run(o *offer, t backend.Task) {
	defer r.wg.Done()
	w := r.w
	r.mu.Lock()
	serve, work := r.serve, r.work
	r.mu.Unlock()
	tctx, cancel := context.WithCancel(context.WithValue(work, offerKey{}, o))
	w.track(t, cancel)
	w.e.tel.TaskStarted(t)
	next, err := w.runActivityTask(tctx, work, t)
	cancel()
	w.untrack(t.Ref())
	if rt := o.rt; rt != nil {
		rt.recErr = err
		close(rt.recorded)
	}
	close(o.done)
	if err != nil {
		next = w.afterError(work, t, err)
	}
	if next != nil {
		w.runChain(serve, work, *next)
	}
}

// invoke is the call of a remote activity: the attempt is handed to the poll that
// claimed its task, then waits for the poller's answer or the end of ctx (heartbeat
// timeout, timeout, lost lease, cancelled execution, stopping worker).
func (r *RemoteActivities) invoke(ctx context.Context, t backend.Task, p *backend.ActivityPayload, hb time.Duration) (json.RawMessage, error) {
	o, _ := ctx.Value(offerKey{}).(*offer)
	if o == nil {
		return nil, fmt.Errorf("remote activity %q: attempt outside a poll", p.Name)
	}
	rt := &remoteTask{
		view: RemoteTask{Token: newToken(), Activity: p.Name, Args: p.Args, Attempt: t.Attempt, ExecutionID: t.ExecutionID, Seq: t.Seq,
			HeartbeatTimeout: hb, LastHeartbeat: p.Heartbeat},
		queue: t.Queue, ctx: ctx, hb: hb, answer: make(chan remoteAnswer, 1), recorded: make(chan struct{}),
	}
	if len(rt.view.Args) == 0 {
		rt.view.Args = json.RawMessage("[]")
	}
	rt.view.Deadline = rt.deadline(time.Now())
	r.mu.Lock()
	r.tokens[rt.view.Token] = rt
	r.mu.Unlock()
	o.rt = rt
	select {
	case o.got <- rt:
	case <-o.gone:
		r.end(rt, "the poll that claimed it went away", false)
		return nil, errUndelivered
	case <-ctx.Done():
		r.end(rt, "it was cancelled before a poller took it", true)
		return nil, fmt.Errorf("remote activity %q: %w", p.Name, ctx.Err())
	}
	select {
	case a := <-rt.answer:
		return a.result, a.err
	case <-ctx.Done():
	}
	r.mu.Lock()
	if rt.state == remoteAnswered { // the answer came with the cancellation: it wins
		r.mu.Unlock()
		a := <-rt.answer
		return a.result, a.err
	}
	r.mu.Unlock()
	var hbErr *activities.Error
	if errors.As(context.Cause(ctx), &hbErr) && hbErr.Type == "heartbeat_timeout" {
		r.end(rt, fmt.Sprintf("no heartbeat came for %s: the attempt counts as failed", hb), false)
	} else if _, ok := ctx.Deadline(); ok && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		r.end(rt, "its timeout passed: the attempt counts as failed", false)
	} else {
		r.end(rt, "it was cancelled: its execution ended, its lease was lost or the server is stopping", true)
	}
	return nil, fmt.Errorf("remote activity %q: %w", p.Name, ctx.Err())
}

// end marks rt ended without an answer.
func (r *RemoteActivities) end(rt *remoteTask, reason string, cancelled bool) {
	r.mu.Lock()
	if rt.state == remoteLive {
		rt.state, rt.reason, rt.cancelled, rt.endedAt = remoteEnded, reason, cancelled, time.Now()
	}
	r.mu.Unlock()
}

// activity stands for a remote activity in runActivityTask: no function, the
// default heartbeat timeout.
func (r *RemoteActivities) activity(name string) *activities.Activity {
	return &activities.Activity{Name: name, Options: activities.Options{HeartbeatTimeout: r.opts.HeartbeatTimeout}}
}
