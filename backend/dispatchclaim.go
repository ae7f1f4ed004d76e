package backend

import "context"

// DispatchClaim is an optional extension of Backend: a dispatch that also claims the
// new execution's first workflow task, in the same transaction, for a worker of the
// dispatching process, which then runs it at once (no claim round trip, and no read
// of what it just wrote).
type DispatchClaim interface {
	// CreateExecutionAndClaim is CreateExecution; in addition, when the execution was
	// created and its first workflow task is due now and on one of claim.Queues (any
	// queue when empty), that task is claimed for claim.WorkerID with claim.Lease, as
	// ClaimTasks would claim it, and returned. It returns a nil task otherwise.
	CreateExecutionAndClaim(ctx context.Context, e NewExecution, claim ClaimRequest) (created bool, task *Task, err error)
}
