package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stent-go/stent/backend"
)

// codeNotSequential is raised by stent_sequential_step when the step is not the plain
// sequential step it commits (see migration 012): the general path then runs.
const codeNotSequential = "SL006"

const sqlSequentialStep = `SELECT o_version, o_event, o_queue, o_fence FROM stent_sequential_step(
	$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`

// sequentialStep commits act's completion with step, whose one new task is nt (see
// backend.SequentialStep), on the finished activity's own task row, in one statement
// and one round trip. done is false when the step was not committed (nothing was
// written): the caller commits it the general way.
func (b *Backend) sequentialStep(ctx context.Context, act *fusedActivity, step backend.WorkflowTaskResult, nt backend.NewTask, claim *handOffClaim) (out backend.StepCommit, done bool, err error) {
	if act.cache != nil || act.seq == 0 || !claim.wants(backend.TaskActivity) {
		return out, false, nil
	}
	activity := backend.PayloadName(nt.Payload)
	if activity == "" || (claim.route && !slices.Contains(claim.activities, activity)) {
		return out, false, nil
	}
	sched := step.Events[0]
	var (
		now     int64
		expires int64
		tk      backend.Task
	)
	build := func(bt *pgx.Batch) error {
		now = toMS(b.now())
		expires = now + claim.lease.Milliseconds()
		bt.Queue(sqlSequentialStep, step.ExecutionID, step.ExpectedVersion, now,
			act.ref.ID, act.ref.Fence, act.seq, string(act.kind), act.name, act.data, act.errv, act.cacheHit,
			nt.Seq, nt.Queue, string(nt.Payload), nt.Priority, activity, claim.worker, expires,
			sched.Name, jsonArg(sched.Data), claim.queues)
		return nil
	}
	read := func(br pgx.BatchResults, _ *txState) error {
		tk = backend.Task{ID: act.ref.ID, Kind: backend.TaskActivity, ExecutionID: step.ExecutionID, Seq: nt.Seq,
			Attempt: 1, Payload: nt.Payload, LeaseOwner: claim.worker}
		return br.QueryRow().Scan(&out.Version, &out.EventID, &tk.Queue, &tk.Fence)
	}
	op := fmt.Sprintf("completing activity task %d with the step of %s", act.ref.ID, step.ExecutionID)
	if err := b.pipelined(ctx, op, build, read); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == codeNotSequential {
			return backend.StepCommit{}, false, nil
		}
		return backend.StepCommit{}, true, err
	}
	tk.RunAt, tk.LeaseExpiresAt = fromMS(msOr(nt.RunAt, now)), fromMS(expires)
	out.Claimed = []backend.Task{tk}
	return out, true, nil
}
