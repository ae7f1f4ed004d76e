package sqlite

import (
	"context"
	"errors"

	"github.com/stent-go/stent/backend"
)

var _ backend.DispatchClaim = (*Backend)(nil)

// CreateExecutionAndClaim is CreateExecution that also claims the new execution's
// first workflow task for claim.WorkerID when it is due and on one of claim.Queues
// (see backend.DispatchClaim).
func (b *Backend) CreateExecutionAndClaim(ctx context.Context, e backend.NewExecution, claim backend.ClaimRequest) (bool, *backend.Task, error) {
	var (
		created bool
		out     *backend.Task
	)
	err := b.write(ctx, "creating execution "+e.ID, func(t *wtx) error {
		out = nil
		var err error
		if created, err = t.createExecution(e, backend.DefaultQueue, 1); err != nil || !created {
			return err
		}
		c := t.claimFor(claim)
		if !c.wants(backend.TaskWorkflow) {
			return nil
		}
		var id int64
		if err := t.queryRowSQL(`SELECT id FROM tasks WHERE execution_id = ? AND kind = 'workflow'`, e.ID).Scan(&id); err != nil {
			return err
		}
		tk, ok, err := t.claimTask(c, id, true)
		if ok {
			out = &tk
		}
		return err
	})
	if err != nil {
		return false, nil, err
	}
	return created, out, nil
}

var (
	_ backend.DispatchStep    = (*Backend)(nil)
	_ backend.ChildFirstSteps = (*Backend)(nil)
)

// CreatesChildrenWithFirstSteps marks the backend.ChildFirstSteps extension:
// createExecution applies a child's FirstStep in place of its first workflow task.
func (*Backend) CreatesChildrenWithFirstSteps() {}

// CreateExecutionAndStep creates the execution with its first step in place of its
// first workflow task (see backend.DispatchStep).
func (b *Backend) CreateExecutionAndStep(ctx context.Context, e backend.NewExecution, step backend.WorkflowTaskResult, claim backend.ClaimRequest) (bool, backend.StepCommit, error) {
	if step.Finish != nil && step.ContinueAsNew != nil {
		return false, backend.StepCommit{}, errors.New("a workflow step cannot both finish and continue as new")
	}
	var (
		created bool
		out     backend.StepCommit
	)
	err := b.write(ctx, "creating execution "+e.ID+" with its first step", func(t *wtx) error {
		out = backend.StepCommit{}
		var err error
		if created, err = t.createExecutionWith(e, backend.DefaultQueue, 1, false); err != nil || !created {
			return err
		}
		queue := e.Queue
		if queue == "" {
			queue = backend.DefaultQueue
		}
		step.ExecutionID = e.ID
		var tasks []createdTask
		target := stepTarget{parentID: e.ParentID, entry: e.Entry, queue: queue, parentSeq: e.ParentSeq, run: 1, parentRun: 1}
		if err := t.applyWorkflowResult(step, target, &out.Version, &tasks); err != nil {
			return err
		}
		c := t.claimFor(claim)
		if step.Finish != nil || step.ContinueAsNew != nil || !c.wants(backend.TaskActivity) {
			return nil
		}
		out.Claimed, err = t.claimCreated(c, tasks)
		return err
	})
	if err != nil {
		return false, backend.StepCommit{}, err
	}
	return created, out, nil
}
