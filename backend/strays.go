package backend

import (
	"context"
	"time"
)

// StrayTasks is an optional extension of Backend, for stores a worker reaches over a
// network. When a connection is cut after the database committed a claim but before
// the worker read the answer, the claimed tasks stay leased to a live worker that does
// not know it holds them; they would wait for their lease to end (5 minutes by
// default). So do the tasks a worker holds under another fence than the database
// says (a failover lost the commit that moved it on). A worker that saw such an
// ambiguous failure, or lost a lease, calls ReleaseStrayTasks once the database
// answers again, naming the tasks it does run, each with its fence.
//
// The PostgreSQL store implements it. SQLite does not need it: it runs in the worker's
// process, so a committed claim always reaches its caller.
type StrayTasks interface {
	// ReleaseStrayTasks makes pending again every task claimed by workerID under a
	// fence other than held names for it (or not in held at all) and whose lease ends
	// before leaseBefore, leaving it otherwise as it
	// was (run_at, attempt, crash count: the worker never started it), and returns how
	// many it released. leaseBefore keeps the tasks of claims the worker is still
	// receiving: it is the lease end of a claim made a little before the call.
	ReleaseStrayTasks(ctx context.Context, workerID string, held []TaskRef, leaseBefore time.Time) (int, error)
}
