package engine

import (
	"context"
	"os"
	"time"

	"github.com/stent-go/stent/backend"
)

// A worker that stops without a word (SIGKILL, a crash) keeps its leases until its
// silence passes the dead-worker grace. When its heartbeat says it ran on this host
// and its process is gone, nobody needs to wait: its tasks are reclaimed at once.

// goneHere reports whether w ran on this host in a process that no longer exists.
func goneHere(w backend.WorkerInfo, host string) bool {
	return w.Host != "" && w.Host == host && w.PID > 0 && w.PID != os.Getpid() && processGone(w.PID)
}

// thisHost is the host name workers record (WorkerInfo.Host).
func thisHost() string {
	host, _ := os.Hostname()
	return host
}

// reclaimGone reclaims the tasks of the workers of this host whose process is gone,
// forgetting their rows so that ReclaimTasks counts them as silent. It returns how
// many tasks it released.
func (w *worker) reclaimGone(ctx context.Context) int {
	e := w.e
	r, ok := e.b.(backend.Routing)
	if !ok {
		return 0
	}
	ws, err := r.ListWorkers(ctx, e.clock.Now().Add(-w.opts.DeadWorkerGrace))
	if err != nil {
		return 0
	}
	host := thisHost()
	gone := 0
	for _, dead := range ws {
		if dead.ID == w.opts.ID || !goneHere(dead, host) {
			continue
		}
		if err := r.RemoveWorker(ctx, dead.ID); err != nil {
			e.logger.Warn("forgetting a stopped worker", "worker_id", w.opts.ID, "stopped", dead.ID, "err", err)
			continue
		}
		gone++
		e.logger.Info("worker stopped: its process is gone", "worker_id", w.opts.ID, "stopped", dead.ID, "pid", dead.PID)
	}
	if gone == 0 {
		return 0
	}
	n, err := e.b.ReclaimTasks(ctx, w.opts.DeadWorkerGrace)
	if err != nil {
		e.logger.Warn("reclaiming the tasks of stopped workers", "worker_id", w.opts.ID, "err", err)
		return 0
	}
	return n
}

// stoppedHolder fills, for a wait whose task a worker holds, when that worker stopped
// heartbeating and when its work is reclaimed: its heartbeat is older than half the
// dead-worker grace, or it ran on this host in a process that is gone.
func (e *Engine) stoppedHolder(wt *Wait, workers map[string]backend.WorkerInfo, grace time.Duration, now time.Time) {
	if wt.Worker == "" {
		return
	}
	info, ok := workers[wt.Worker]
	if !ok || info.HeartbeatAt.IsZero() {
		return
	}
	host := thisHost()
	if now.Sub(info.HeartbeatAt) <= grace/2 && !goneHere(info, host) {
		return
	}
	stopped := info.HeartbeatAt
	reclaim := stopped.Add(grace)
	if wt.LeaseUntil != nil && wt.LeaseUntil.Before(reclaim) {
		reclaim = *wt.LeaseUntil
	}
	wt.StoppedAt, wt.ReclaimAt = &stopped, &reclaim
}

// workersByID reads every worker row of the last hour, by ID (none without the
// routing registry).
func (e *Engine) workersByID(ctx context.Context) map[string]backend.WorkerInfo {
	r, ok := e.b.(backend.Routing)
	if !ok {
		return nil
	}
	ws, err := r.ListWorkers(ctx, e.clock.Now().Add(-time.Hour))
	if err != nil {
		return nil
	}
	out := make(map[string]backend.WorkerInfo, len(ws))
	for _, w := range ws {
		out[w.ID] = w
	}
	return out
}
