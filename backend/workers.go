package backend

import (
	"context"
	"time"
)

// WorkerInfo is what a worker records about itself with its heartbeat: where it runs
// and what it serves. Activity routing reads it: an activity task is only claimed by a
// worker that has its activity, and a step whose activity no live worker has waits.
type WorkerInfo struct {
	ID   string
	Host string
	PID  int
	// Queues the worker serves; empty: every queue.
	Queues []string
	// Activities the worker can run (sorted names).
	Activities  []string
	Concurrency int
	// InFlight is how many tasks it was running at its last heartbeat.
	InFlight    int
	StartedAt   time.Time
	HeartbeatAt time.Time
}

// ServesQueue reports whether the worker takes tasks of queue.
func (w WorkerInfo) ServesQueue(queue string) bool {
	if len(w.Queues) == 0 {
		return true
	}
	for _, q := range w.Queues {
		if q == queue {
			return true
		}
	}
	return false
}

// HasActivity reports whether the worker can run the activity.
func (w WorkerInfo) HasActivity(name string) bool {
	for _, a := range w.Activities {
		if a == name {
			return true
		}
	}
	return false
}

// WorkerRetention is how long both stores keep the row of a worker that stopped
// heartbeating (ReclaimTasks deletes it then): how long the web view shows it stopped.
const WorkerRetention = time.Hour

// ClaimedTasks is an optional extension of Backend, implemented by both stores: the
// tasks workers hold now, for the web view's workers page.
type ClaimedTasks interface {
	// ClaimedTasks lists up to limit claimed tasks, by lease owner, then ID.
	ClaimedTasks(ctx context.Context, limit int) ([]Task, error)
}

// PendingTask is a task of an execution not claimed yet, as Routing.PendingTasks
// reports it: enough to tell what the execution waits for.
type PendingTask struct {
	ID       int64
	Kind     TaskKind
	Seq      int
	Queue    string
	Activity string // activity tasks: the activity's name
	RunAt    time.Time
	Attempt  int
}

// Routing is an optional extension of Backend, implemented by both stores: the
// workers' registry that activity routing, `stent workers` and `stent status` read,
// and the claim of activity tasks whose schedule-to-start timeout passed.
type Routing interface {
	// RecordWorker records the worker's info and a heartbeat at the backend's now
	// (info.HeartbeatAt is ignored). It counts as Heartbeat(info.ID).
	RecordWorker(ctx context.Context, info WorkerInfo) error
	// RemoveWorker deletes a worker's row (a worker that stopped gracefully).
	RemoveWorker(ctx context.Context, workerID string) error
	// ListWorkers lists the workers whose last heartbeat is at or after since, by ID.
	ListWorkers(ctx context.Context, since time.Time) ([]WorkerInfo, error)
	// PendingTasks lists the execution's pending (unclaimed) tasks, by ID.
	PendingTasks(ctx context.Context, executionID string) ([]PendingTask, error)
	// ClaimStartTimeouts claims for req.WorkerID (with req.Lease) up to req.Limit
	// pending activity tasks, of any activity and queue, whose schedule-to-start
	// deadline (the task's RunAt plus the "schedule_to_start_ms" of its payload's
	// options) has passed, as ClaimTasks would claim them. The caller fails them.
	ClaimStartTimeouts(ctx context.Context, req ClaimRequest) ([]Task, error)
}
