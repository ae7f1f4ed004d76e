package backend

import "context"

// FusedStep is an optional extension of Backend for the hot path of a sequential
// workflow: when the worker that finished an activity holds the execution's parked
// script, it feeds the outcome to the script itself and commits the activity's
// completion and the step the script then took as ONE transaction, with no workflow
// task in between (one durable commit per step instead of two, and no history read).
type FusedStep interface {
	// CompleteActivityAndStep, in one transaction: records the activity outcome r as
	// CompleteActivityTask does (its event appended, its task deleted, a successful
	// result with Cache stored in the result cache) but enqueues no workflow task, and
	// commits step as CompleteWorkflowTaskAndClaim does, with step.Task ignored (there is
	// no workflow task to remove; a workflow task the execution may have for other
	// reasons is left as it is). The execution must be running at
	// step.ExpectedVersion, else ErrStaleExecution; r.Task must be held with its fence,
	// else ErrLeaseLost. Either error writes nothing. Up to claim.Limit of the activity
	// tasks step creates that are due (and on one of claim.Queues, when given) are
	// claimed for claim.WorkerID, as CompleteWorkflowTaskAndClaim claims them.
	CompleteActivityAndStep(ctx context.Context, r ActivityResult, step WorkflowTaskResult, claim ClaimRequest) (StepCommit, error)
}

// FusedGathers is an optional extension of FusedStep: the completion of one of several
// activities a script awaits (a gather) is also committed with the step it lets the
// script take (WorkflowTaskResult.CheckSeen guards it). That pays where each separate
// commit would queue on the execution's row lock anyway (PostgreSQL). Without it the
// engine fuses only a completion the script awaits alone, and a gather's completions
// are recorded apart for one workflow task to take together: on a store with a single
// writer (SQLite) fused completions take the parked script one after the other, each
// for its own commit, and P1 and P2 (gathers of 10) ran about 26% slower.
type FusedGathers interface {
	FusesGathers()
}

// StepCommit is what CompleteActivityAndStep committed.
type StepCommit struct {
	// Version is the execution's version after the commit.
	Version int64
	// EventID is the ID of the activity's outcome event.
	EventID int64
	// Claimed are the new activity tasks claimed for the caller, in sequence order.
	Claimed []Task
}

// SequentialStep tells whether step is a sequential step that claim can take: an
// activity completes and the script, fed its outcome, asks for exactly one more
// activity, due now (nowMS, unix milliseconds), and nothing else. It returns that one
// new task. A backend commits such a step on the finished activity's own task row,
// which becomes the next activity's, claimed: fewer statements and fewer rows written.
func SequentialStep(step WorkflowTaskResult, claim ClaimRequest, nowMS int64) (NewTask, bool) {
	if step.CheckSeen || step.Finish != nil || step.ContinueAsNew != nil || step.DeadLetter != nil || len(step.Children) > 0 ||
		len(step.Logs) > 0 || len(step.ConsumedSignals) > 0 || len(step.CancelTimers) > 0 ||
		len(step.Tasks) != 1 || len(step.Events) != 1 || len(claim.MaxConcurrent) > 0 {
		return NewTask{}, false
	}
	nt, ev := step.Tasks[0], step.Events[0]
	if nt.Kind != TaskActivity || ev.Kind != EventActivityScheduled || ev.Seq != nt.Seq ||
		ev.Error != nil || (!nt.RunAt.IsZero() && nt.RunAt.UnixMilli() > nowMS) || len(nt.Payload) == 0 {
		return NewTask{}, false
	}
	return nt, true
}

// ParentSteps is an optional extension of FusedStep: a step that ends a child may carry
// the step its parent's script took with the child's outcome (WorkflowTaskResult's
// ParentStep), and the backend commits both in one transaction. The child's
// child_completed event is appended to the parent with the parent's step, instead of
// being appended apart with a workflow task enqueued for the parent to read it back:
// one commit, one task row and one history read fewer per generation of a tree that
// finishes.
type ParentSteps interface {
	FusesParentSteps()
}

// ParentStep is a parent's step committed with its child's end (ParentSteps). Step is
// the parent's WorkflowTaskResult (its Task is ignored: there is no workflow task). The
// parent must be running the run that started the child, at Step.ExpectedVersion, and
// have no event above Step.SeenThrough that its script did not write itself, else the
// commit fails with ErrStaleParent and writes nothing, the child's end included. A
// successful commit sets Version, EventID and Claimed.
type ParentStep struct {
	Step WorkflowTaskResult
	// Version is the parent's version after the commit.
	Version int64
	// EventID is the ID of the child_completed event appended to the parent.
	EventID int64
	// Claimed are the activity tasks the parent's step created that were claimed for
	// the caller.
	Claimed []Task
}
