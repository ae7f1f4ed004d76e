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

// seqStep is one sequential step to commit: stent_sequential_step's arguments, and its
// answers once committed (alone, or with others: see stepGroup).
type seqStep struct {
	ctx context.Context // the caller's: its loss mark (backend.WithLossMark) holds for the commit

	execution     string
	version       int64
	task, fence   int64
	seq           int
	kind, name    string
	data, errv    *string
	cacheHit      bool
	nextSeq       int
	nextQueue     string
	payload       string
	priority      int
	activity      string
	owner         string
	leaseMS       int64
	schedName     string
	schedData     *string
	queues        []string
	now, expires  int64  // set when sent
	outVersion    int64  // answers
	outEvent      int64  //
	outQueue      string //
	outFence      int64  //
	notSequential bool   // SL006: nothing written, the caller commits the general way
	err           error
	done          chan struct{} // closed once answered, for a step that waited in a group
}

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
	s := &seqStep{ctx: ctx, execution: step.ExecutionID, version: step.ExpectedVersion, task: act.ref.ID, fence: act.ref.Fence,
		seq: act.seq, kind: string(act.kind), name: act.name, data: act.data, errv: act.errv, cacheHit: act.cacheHit,
		nextSeq: nt.Seq, nextQueue: nt.Queue, payload: string(nt.Payload), priority: nt.Priority, activity: activity,
		owner: claim.worker, leaseMS: claim.lease.Milliseconds(), schedName: sched.Name, schedData: jsonArg(sched.Data),
		queues: claim.queues}
	b.steps.commit(b, s)
	switch {
	case s.notSequential:
		return backend.StepCommit{}, false, nil
	case s.err != nil:
		return backend.StepCommit{}, true, s.err
	}
	tk := backend.Task{ID: act.ref.ID, Kind: backend.TaskActivity, ExecutionID: step.ExecutionID, Seq: nt.Seq,
		Attempt: 1, Payload: nt.Payload, LeaseOwner: claim.worker, Queue: s.outQueue, Fence: s.outFence,
		RunAt: fromMS(msOr(nt.RunAt, s.now)), LeaseExpiresAt: fromMS(s.expires)}
	return backend.StepCommit{Version: s.outVersion, EventID: s.outEvent, Claimed: []backend.Task{tk}}, true, nil
}

// op names the commit of s in its errors.
func (s *seqStep) op() string {
	return fmt.Sprintf("completing activity task %d with the step of %s", s.task, s.execution)
}

// commitSequential commits s alone, in one round trip.
func (b *Backend) commitSequential(s *seqStep) {
	build := func(bt *pgx.Batch) error {
		s.now = toMS(b.now())
		s.expires = s.now + s.leaseMS
		bt.Queue(sqlSequentialStep, s.execution, s.version, s.now, s.task, s.fence, s.seq, s.kind, s.name, s.data, s.errv,
			s.cacheHit, s.nextSeq, s.nextQueue, s.payload, s.priority, s.activity, s.owner, s.expires, s.schedName,
			s.schedData, s.queues)
		return nil
	}
	read := func(br pgx.BatchResults, _ *txState) error {
		return br.QueryRow().Scan(&s.outVersion, &s.outEvent, &s.outQueue, &s.outFence)
	}
	if err := b.pipelined(s.ctx, s.op(), build, read); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == codeNotSequential {
			s.notSequential = true
			return
		}
		s.err = err
	}
}
