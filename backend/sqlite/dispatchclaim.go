package sqlite

import (
	"context"

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
