package backend

import "context"

// LossCounter is implemented by a store that can come back without commits it had
// acknowledged: a PostgreSQL standby promoted after a failover with asynchronous
// replication lacks the old primary's last commits. What a worker holds in memory
// from before (a parked script, its version and last event ID) may then describe a
// history the store no longer has, and the store may reach the same version again
// with other events.
//
// Losses counts the times the store found itself on another server than before (any
// change counts, a restart too: it cannot tell what was lost). A commit whose context
// carries WithLossMark(ctx, n), n being Losses() from before the caller read what it
// relies on, fails with ErrStaleExecution and writes nothing when Losses() is no
// longer n by the time it holds its connection.
type LossCounter interface {
	Losses() uint64
}

type lossMarkKey struct{}

// WithLossMark marks ctx's commits as relying on state read when the store's
// LossCounter said n.
func WithLossMark(ctx context.Context, n uint64) context.Context {
	return context.WithValue(ctx, lossMarkKey{}, n)
}

// LossMark returns the mark WithLossMark put on ctx.
func LossMark(ctx context.Context) (uint64, bool) {
	n, ok := ctx.Value(lossMarkKey{}).(uint64)
	return n, ok
}
