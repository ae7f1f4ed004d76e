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

// DispatchStep is an optional extension of Backend: a dispatch that commits the new
// execution's first workflow step with it, in the same transaction. The dispatching
// process runs the script's first step before anything is written; the execution,
// its started event and what that step did are then one durable commit (no workflow
// task is ever created for it, and no second commit follows).
type DispatchStep interface {
	// CreateExecutionAndStep is CreateExecution, except that no workflow task is
	// created: step, the new execution's first step, is committed in its place, as
	// CompleteWorkflowTaskAndClaim commits a workflow task's result (step.Task and
	// step.ExpectedVersion are ignored), and up to claim.Limit of the activity tasks it
	// creates that are due (and on one of claim.Queues, when given) are claimed for
	// claim.WorkerID. When the ID exists already nothing is written, created is false
	// and step is dropped.
	CreateExecutionAndStep(ctx context.Context, e NewExecution, step WorkflowTaskResult, claim ClaimRequest) (created bool, out StepCommit, err error)
}
