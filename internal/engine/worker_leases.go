package engine

import (
	"context"
	"time"

	"github.com/stent-go/stent/backend"
)

func (w *worker) heartbeatLoop(ctx context.Context) {
	e := w.e
	tick := time.NewTicker(w.opts.HeartbeatInterval)
	defer tick.Stop()
	var heartbeatFailed time.Time // this worker's last heartbeat that did not reach the database
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := w.recordWorker(ctx); err != nil && ctx.Err() == nil {
			heartbeatFailed = e.clock.Now()
			e.logger.Warn("worker heartbeat", "worker_id", w.opts.ID, "err", err)
		}
		// In virtual time the clock jumps while this (only) worker is idle, so heartbeats
		// would look stale to it: there is no one else's work to reclaim anyway.
		if e.cfg.virtual != nil {
			continue
		}
		w.failUnstarted(ctx)
		gone := w.reclaimGone(ctx)
		// Workers silent while this one could not reach the database either were cut
		// off by the same outage (a failover), not stopped: until they have had the
		// grace to heartbeat again, only expired leases are reclaimed, or every attempt
		// in flight would run again.
		grace := w.opts.DeadWorkerGrace
		if !heartbeatFailed.IsZero() && e.clock.Now().Sub(heartbeatFailed) < grace+w.opts.HeartbeatInterval {
			grace = 0
		}
		if n, err := e.b.ReclaimTasks(ctx, grace); err == nil && n+gone > 0 {
			n += gone
			e.logger.Info("reclaimed tasks of stopped workers", "count", n, "worker_id", w.opts.ID)
			e.tel.Reclaimed(n)
			e.wake.Notify()
		}
		// Renewing every tick also tells a running activity within a second that its
		// task is gone (execution cancelled or lease taken over): its context is cancelled.
		w.extendLeases(ctx)
		w.releaseStrays(ctx)
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
	if len(lost) > 0 {
		w.strayPossible()
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
