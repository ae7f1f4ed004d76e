package backend

import "context"

// Listener is implemented by backends that can wake workers in other processes (for
// example PostgreSQL LISTEN/NOTIFY). Listen calls fn for every notification until ctx
// ends, reconnecting by itself; a lost notification may only cost latency.
type Listener interface {
	Listen(ctx context.Context, fn func(Notification)) error
}

// Awaiter is implemented by backends whose Listener announces an execution's end only
// to those who asked: after AwaitExecution returns, the end of execution id, if it has
// not ended yet, reaches every Listener as a "finished" notification (a lost one may
// only cost latency). Ends of executions no one awaited may go unannounced. The mark
// need not be durable: a waiter that lost it still polls.
type Awaiter interface {
	AwaitExecution(ctx context.Context, id string) error
}

// AnnouncedEnds is an Awaiter that also tells its own process which ends it announced:
// after a commit, in the process that committed, fn is called with each execution whose
// end the commit announced to the backend's listeners (one an AwaitExecution asked for,
// or one a cancellation or termination ended). A Notifier beside the backend then
// carries those ends alone, not every end: no one waits for the others.
type AnnouncedEnds interface {
	Awaiter
	OnAnnouncedEnd(fn func(id string))
}

// Notification tells that something happened in another process.
type Notification struct {
	// Kind is "task" (a task became runnable on Queue) or "finished" (ExecutionID ended).
	Kind        string
	Queue       string
	ExecutionID string
}

// Notifier carries wake-ups between processes (for example over Redis pub/sub), beside
// whatever the backend itself offers. Publish must not block for long: implementations
// queue and coalesce. A lost notification may only cost latency.
type Notifier interface {
	Listener
	// Publish announces a notification to every process.
	Publish(n Notification)
	// Close stops publishing and listening.
	Close() error
}

// ReadyReporter is an optional extension of Backend for a backend without
// notifications of its own (SQLite): fn is called, after the commit and in the process
// that committed, for each task a commit made runnable that the engine cannot see from
// the change it asked for: a workflow task put back in the queue because new results
// arrived while its holder ran it.
type ReadyReporter interface {
	OnTaskReady(fn func(queue string))
}
