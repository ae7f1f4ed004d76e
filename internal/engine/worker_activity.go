package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stent-go/stent/activities"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/builtins"
	"github.com/stent-go/stent/interpreter"
)

func (w *worker) runActivityTask(ctx, workCtx context.Context, t backend.Task) (*backend.Task, error) {
	e := w.e
	var p backend.ActivityPayload
	if err := json.Unmarshal(t.Payload, &p); err != nil {
		return nil, fmt.Errorf("decoding activity task %d: %w", t.ID, err)
	}
	ctx, span := e.tel.StartActivity(ctx, t, &p, w.opts.ID)
	defer span.End()
	fail := func(err error, attempts int) (*backend.Task, error) {
		return w.completeActivity(workCtx, t, backend.ActivityResult{
			Task: t.Ref(), ExecutionID: t.ExecutionID, Seq: t.Seq, Name: p.Name,
			Error: &backend.ErrorInfo{Message: err.Error(), Type: activities.ErrorType(err), Activity: p.Name, Attempts: attempts},
		})
	}
	act, ok := w.activity(p.Name)
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
	started := e.clock.Now()
	var (
		out json.RawMessage
		err error
	)
	if w.remote != nil {
		out, err = w.remote.invoke(actx, t, &p, hbTimeout)
	} else {
		out, err = act.Invoke(actx, p.Args)
	}
	span.Attempted(err)
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
	if workCtx.Err() != nil || errors.Is(err, errUndelivered) {
		// The worker is shutting down (or no poller took the remote attempt): give the
		// task back untouched.
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
		at := e.clock.Now().Add(policy.DelayAfter(t.Attempt+1, err))
		payload, _ := json.Marshal(p)
		failed := backend.AttemptFailedEvent(t.Seq, p.Name,
			backend.AttemptData{Attempt: t.Attempt, Worker: w.opts.ID, StartedAt: started, EndedAt: e.clock.Now()},
			interpreter.BoundError(&backend.ErrorInfo{Message: err.Error(), Type: activities.ErrorType(err), Activity: p.Name}))
		if rerr := e.b.RetryActivityTask(workCtx, t.Ref(), at, t.Attempt+1, payload, failed); rerr != nil {
			return nil, rerr
		}
		e.logger.Debug("activity attempt failed; retrying", "activity", p.Name, "execution_id", t.ExecutionID, "seq", t.Seq, "task_id", t.ID, "worker_id", w.opts.ID, "attempt", t.Attempt, "next", at, "err", err)
		e.wakeAt(at)
		return nil, nil
	}
	return fail(err, t.Attempt)
}

// activity returns what runs the activity name for this worker: a registered one, or
// for the worker of remote activities one that a poller runs.
func (w *worker) activity(name string) (*activities.Activity, bool) {
	if w.remote != nil {
		return w.remote.activity(name), true
	}
	return w.e.reg.Lookup(name)
}

// completeActivity records an activity's outcome and, where the backend can, claims the
// execution's workflow task in the same transaction to go on with it in this goroutine.
//
// The activity has run: when the database is unavailable (backend.Retryable), the
// outcome is recorded again with backoff, for as long as the lease lasts, rather than
// the task handed back, which would run the activity again. A retry after a commit
// whose answer was lost fails with ErrLeaseLost: the outcome is recorded.
func (w *worker) completeActivity(ctx context.Context, t backend.Task, r backend.ActivityResult) (*backend.Task, error) {
	r.Error = interpreter.BoundError(r.Error)
	next, err := w.completeActivityOnce(ctx, t, r, true)
	deadline := time.Now().Add(w.opts.LeaseDuration)
	for backoff := 100 * time.Millisecond; backend.Retryable(err) && ctx.Err() == nil && time.Now().Before(deadline); {
		w.claimUncertain(err) // the commit may have claimed the execution's next task
		backend.Sleep(ctx, backoff)
		backoff = min(2*backoff, 2*time.Second)
		next, err = w.completeActivityOnce(ctx, t, r, false)
	}
	return next, err
}

func (w *worker) completeActivityOnce(ctx context.Context, t backend.Task, r backend.ActivityResult, fused bool) (*backend.Task, error) {
	// After a failed fused commit (which closed the run) the plain way replays from history.
	if fused {
		if next, done, err := w.completeActivityFused(ctx, t, r); done {
			return next, err
		}
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
