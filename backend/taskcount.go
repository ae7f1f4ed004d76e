package backend

import "context"

// TaskCount is how many pending tasks of one kind wait on one queue.
type TaskCount struct {
	Kind  TaskKind
	Queue string
	Count int
}

// TaskCounter is an optional extension of Backend for monitoring (the
// stent.tasks.pending metric): a cheap count of the tasks not claimed by any worker.
type TaskCounter interface {
	// CountPendingTasks counts the pending (unclaimed) tasks, due or not, by kind and
	// queue, ordered by kind then queue. Kinds and queues with none are left out.
	CountPendingTasks(ctx context.Context) ([]TaskCount, error)
}
