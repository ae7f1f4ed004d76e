package engine

import (
	"context"
	"time"

	"github.com/stent-go/stent/backend"
)

// strayMargin is how long a task a claim returned may take to be tracked (w.track) by
// the goroutine that runs it. Releasing stray tasks spares those claimed since: they
// may still be on their way.
const strayMargin = 5 * time.Second

// strays remembers that a claim, or a commit that claims, failed in a way that leaves
// open whether the database applied it (backend.Retryable): its tasks may be leased to
// this worker, which never received them.
type strays struct {
	last time.Time // the last such failure, zero when none is left to resolve
}

// claimUncertain notes err, from a call that claims tasks for this worker, when the
// call may have claimed them all the same. Only backends that can lose a claim's
// answer (backend.StrayTasks) are concerned.
func (w *worker) claimUncertain(err error) {
	if !backend.Retryable(err) {
		return
	}
	w.strayPossible()
}

// strayPossible notes that a task may be leased to this worker under a fence it does
// not know: a claim's answer was lost, or a lease was (after a failover that lost the
// commit that moved a task on, the store still leases it to this worker under the
// fence before).
func (w *worker) strayPossible() {
	if _, ok := w.e.b.(backend.StrayTasks); !ok {
		return
	}
	now := w.e.clock.Now()
	w.mu.Lock()
	if now.After(w.strays.last) {
		w.strays.last = now
	}
	w.mu.Unlock()
}

// releaseStrays, once strayMargin has passed since the last uncertain claim, gives
// back the tasks leased to this worker that it does not run and that were claimed
// before then: a lost claim's tasks are claimable again seconds after the database
// answers, not when their lease ends. The heartbeat calls it; while the database is
// unavailable it fails and is tried again at the next beat.
func (w *worker) releaseStrays(ctx context.Context) {
	st, ok := w.e.b.(backend.StrayTasks)
	if !ok {
		return
	}
	now := w.e.clock.Now()
	w.mu.Lock()
	last := w.strays.last
	if last.IsZero() || now.Sub(last) < strayMargin {
		w.mu.Unlock()
		return
	}
	held := make([]backend.TaskRef, 0, len(w.inflight))
	for _, f := range w.inflight {
		held = append(held, f.ref)
	}
	w.mu.Unlock()
	n, err := st.ReleaseStrayTasks(ctx, w.opts.ID, held, now.Add(-strayMargin+w.opts.LeaseDuration))
	if err != nil {
		if ctx.Err() == nil {
			w.e.logger.Warn("releasing the tasks of a claim whose answer was lost", "worker_id", w.opts.ID, "err", err)
		}
		return
	}
	w.mu.Lock()
	if w.strays.last.Equal(last) {
		w.strays.last = time.Time{}
	}
	w.mu.Unlock()
	if n > 0 {
		w.e.logger.Info("released tasks of a claim whose answer was lost", "count", n, "worker_id", w.opts.ID)
		w.e.wake.Notify()
	}
}
