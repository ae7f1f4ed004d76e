package backend

import (
	"context"
	"time"
)

// StrayTasks is an optional extension of Backend, for stores a worker reaches over a
// network. When a connection is cut after the database committed a claim but before
// the worker read the answer, the claimed tasks stay leased to a live worker that does
// not know it holds them; they would wait for their lease to end (5 minutes by
// default). A worker that saw such an ambiguous failure calls ReleaseStrayTasks once
// the database answers again, naming the tasks it does run.
//
// The PostgreSQL store implements it. SQLite does not need it: it runs in the worker's
// process, so a committed claim always reaches its caller.
type StrayTasks interface {
	// ReleaseStrayTasks makes pending again every task claimed by workerID whose ID is
	// not in held and whose lease ends before leaseBefore, leaving it otherwise as it
	// was (run_at, attempt, crash count: the worker never started it), and returns how
	// many it released. leaseBefore keeps the tasks of claims the worker is still
	// receiving: it is the lease end of a claim made a little before the call.
	ReleaseStrayTasks(ctx context.Context, workerID string, held []int64, leaseBefore time.Time) (int, error)
}
