package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stent-go/stent/backend"
)

var _ backend.DispatchClaim = (*Backend)(nil)

// sqlClaimCreatedWorkflowTask claims the first workflow task of execution $1 if this
// very transaction created it (its row's xmin is the transaction's id: an execution
// that already existed keeps its task), it is due ($4) and, with $5, on one of those
// queues.
const sqlClaimCreatedWorkflowTask = `UPDATE tasks SET status = 'claimed', fence = stent_fence(fence), lease_owner = $2,
		lease_expires_at = $3, rerun = false
	WHERE execution_id = $1 AND kind = 'workflow' AND status = 'pending' AND run_at <= $4
		AND xmin = pg_current_xact_id()::xid AND ($5::text[] IS NULL OR queue = ANY($5::text[]))
	RETURNING id, queue, run_at, fence`

// CreateExecutionAndClaim is CreateExecution that also claims the new execution's
// first workflow task for claim.WorkerID when it is due and on one of claim.Queues,
// in the same transaction and round trip (see backend.DispatchClaim).
func (b *Backend) CreateExecutionAndClaim(ctx context.Context, e backend.NewExecution, claim backend.ClaimRequest) (bool, *backend.Task, error) {
	c := newHandOffClaim(claim)
	if !c.wants(backend.TaskWorkflow) {
		created, err := b.CreateExecution(ctx, e)
		return created, nil, err
	}
	var (
		n       newExecutions
		now     int64
		created int
		out     *backend.Task
	)
	build := func(bt *pgx.Batch) error {
		now = toMS(b.now())
		n = newExecutions{}
		if err := n.add(e, backend.DefaultQueue, now); err != nil {
			return err
		}
		sql, args := n.statement(now)
		bt.Queue(sql, args...)
		bt.Queue(sqlClaimCreatedWorkflowTask, e.ID, c.worker, now+c.lease.Milliseconds(), now, c.queues)
		return nil
	}
	read := func(br pgx.BatchResults, s *txState) error {
		out = nil
		rows, err := br.Query()
		if err != nil {
			return err
		}
		// The notifications are for the tasks left pending: collect them aside.
		var created0 txState
		if created, err = scanCreated(rows, &created0, now); err != nil {
			return err
		}
		tk := backend.Task{Kind: backend.TaskWorkflow, ExecutionID: e.ID, LeaseOwner: c.worker}
		var runAt int64
		err = br.QueryRow().Scan(&tk.ID, &tk.Queue, &runAt, &tk.Fence)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			for q := range created0.queues {
				s.taskReady(q)
			}
			return nil
		case err != nil:
			return fmt.Errorf("claiming the first workflow task: %w", err)
		}
		tk.RunAt, tk.LeaseExpiresAt = fromMS(runAt), fromMS(now+c.lease.Milliseconds())
		out = &tk
		return nil
	}
	if err := b.pipelined(ctx, "creating execution "+e.ID, build, read); err != nil {
		return false, nil, err
	}
	return created > 0, out, nil
}

var (
	_ backend.DispatchStep    = (*Backend)(nil)
	_ backend.ChildFirstSteps = (*Backend)(nil)
)

// CreatesChildrenWithFirstSteps marks the backend.ChildFirstSteps extension: a step's
// commit opens each child created with its FirstStep by stent_begin_created_step, right
// after the children's creation (see pgStep).
func (*Backend) CreatesChildrenWithFirstSteps() {}

// codeExists is raised by stent_begin_created_step for an execution that existed
// before the transaction.
const codeExists = "SL005"

const sqlBeginCreatedStep = `SELECT o_queue, o_version FROM stent_begin_created_step($1, $2, $3)`

// createdStep opens the commit of a new execution's first step: the execution's
// creation (without its workflow task) and stent_begin_created_step.
type createdStep struct {
	e backend.NewExecution
}

func (c *createdStep) queue(bt *pgx.Batch, r backend.WorkflowTaskResult, ending bool, now int64) {
	var n newExecutions
	_ = n.add(c.e, backend.DefaultQueue, now) // checked by CreateExecutionAndStep
	if c.e.FirstStep == nil {
		n.firstSteps = append(n.firstSteps, c.e.ID)
	}
	sql, args := n.statement(now)
	bt.Queue(sql, args...)
	bt.Queue(sqlBeginCreatedStep, c.e.ID, ending, now)
}

func (c *createdStep) read(br pgx.BatchResults, queue *string, version **int64, _ *txState) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	// The creation made no workflow task (the step takes its place), maybe a deadline
	// task: not due now, nothing to announce.
	var discard txState
	if _, err := scanCreated(rows, &discard, 0); err != nil {
		return err
	}
	return br.QueryRow().Scan(queue, version)
}

// CreateExecutionAndStep creates the execution with its first step in place of its
// first workflow task, in one transaction and round trip (see backend.DispatchStep).
func (b *Backend) CreateExecutionAndStep(ctx context.Context, e backend.NewExecution, step backend.WorkflowTaskResult, claim backend.ClaimRequest) (bool, backend.StepCommit, error) {
	var check newExecutions
	if err := check.add(e, backend.DefaultQueue, 0); err != nil {
		return false, backend.StepCommit{}, err
	}
	step.ExecutionID = e.ID
	c := newHandOffClaim(claim)
	version, claimed, err := b.completeWorkflow(ctx, step, &c, &createdStep{e: e})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == codeExists {
		return false, backend.StepCommit{}, nil
	}
	if err != nil {
		return false, backend.StepCommit{}, err
	}
	return true, backend.StepCommit{Version: version, Claimed: claimed}, nil
}
