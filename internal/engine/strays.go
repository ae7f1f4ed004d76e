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
//
// Faults may come faster than strayMargin (a network cutting connections every few
// hundred milliseconds): the release does not wait for them to stop. Each release
// resolves the failures up to its cut-off (now - strayMargin); one after it is resolved
// by a later one.
type strays struct {
	first time.Time // the earliest such failure not yet resolved, zero when none
	last  time.Time // the latest such failure
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
	if w.strays.first.IsZero() {
		w.strays.first = now
	}
	if now.After(w.strays.last) {
		w.strays.last = now
	}
	w.mu.Unlock()
}

// releaseStrays, once strayMargin has passed since the earliest uncertain claim not yet
// resolved, gives back the tasks leased to this worker that it does not run and that
// were claimed strayMargin or more ago: a lost claim's tasks are claimable again
// seconds after the database answers, not when their lease ends. The heartbeat calls
// it; while the database is unavailable it fails and is tried again at the next beat.
func (w *worker) releaseStrays(ctx context.Context) {
	st, ok := w.e.b.(backend.StrayTasks)
	if !ok {
		return
	}
	now := w.e.clock.Now()
	cutoff := now.Add(-strayMargin)
	w.mu.Lock()
	first := w.strays.first
	if first.IsZero() || first.After(cutoff) {
		w.mu.Unlock()
		return
	}
	held := make([]backend.TaskRef, 0, len(w.inflight))
	for _, f := range w.inflight {
		held = append(held, f.ref)
	}
	w.mu.Unlock()
	n, err := st.ReleaseStrayTasks(ctx, w.opts.ID, held, cutoff.Add(w.opts.LeaseDuration))
	if err != nil {
		if ctx.Err() == nil {
			w.e.logger.Warn("releasing the tasks of a claim whose answer was lost", "worker_id", w.opts.ID, "err", err)
		}
		return
	}
	// What failed by cutoff is resolved. A failure since (its time is not kept) may
	// have claimed tasks this release spared: the next beat releases again.
	w.mu.Lock()
	if w.strays.last.After(cutoff) {
		w.strays.first = cutoff
	} else {
		w.strays.first = time.Time{}
	}
	w.mu.Unlock()
	if n > 0 {
		w.e.logger.Info("released tasks of a claim whose answer was lost", "count", n, "worker_id", w.opts.ID)
		w.e.wake.Notify()
	}
}
