package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
)

// maxGroup bounds how many sequential steps one group commit carries.
const maxGroup = 128

const sqlSequentialSteps = `SELECT o_i, o_version, o_event, o_queue, o_fence, o_code FROM stent_sequential_steps(
	$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`

// stepGroup is group commit for sequential steps (the hot path of a sequential
// workflow): a step that finds none in flight commits at once, alone, as it would
// without a group; the steps that arrive while one is in flight wait and go together,
// in one transaction (stent_sequential_steps, migration 019), once it is done, and so
// on while steps keep arriving. A lone workflow never waits; many in flight share
// commits (one WAL flush, one commit record and one round trip for many steps).
type stepGroup struct {
	mu      sync.Mutex
	leading bool       // a commit of this group is in flight
	queue   []*seqStep // steps waiting for it to end
}

// commit commits s, alone or with the steps that wait with it, and returns once it is
// answered.
func (g *stepGroup) commit(b *Backend, s *seqStep) {
	g.mu.Lock()
	if g.leading {
		s.done = make(chan struct{})
		g.queue = append(g.queue, s)
		g.mu.Unlock()
		<-s.done
		return
	}
	g.leading = true
	g.mu.Unlock()
	b.commitSequential(s)
	g.next(b)
}

// next hands the steps that queued meanwhile to a goroutine that commits them, group
// after group, until none waits; or ends the lead.
func (g *stepGroup) next(b *Backend) {
	g.mu.Lock()
	if len(g.queue) == 0 {
		g.leading = false
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	go func() {
		for {
			g.mu.Lock()
			n := min(len(g.queue), maxGroup)
			batch := slices.Clone(g.queue[:n])
			g.queue = slices.Delete(g.queue, 0, n)
			if n == 0 {
				g.leading = false
				g.mu.Unlock()
				return
			}
			g.mu.Unlock()
			b.commitSequentials(batch)
			for _, s := range batch {
				close(s.done)
			}
		}
	}()
}

// commitSequentials commits the steps of batch in one transaction. A step of another
// worker or queue set than the first's, or the only one, is committed alone; so is
// every step when the group's statement was not applied.
func (b *Backend) commitSequentials(batch []*seqStep) {
	first := batch[0]
	var group, alone []*seqStep
	for _, s := range batch {
		if s.owner == first.owner && slices.Equal(s.queues, first.queues) {
			group = append(group, s)
		} else {
			alone = append(alone, s)
		}
	}
	if len(group) == 1 {
		alone = append(alone, group...)
		group = nil
	}
	if len(group) > 0 {
		switch err := b.commitGroup(group); {
		case err == nil:
		case undone(err):
			// Nothing of the group was written: each step commits alone.
			alone = append(alone, group...)
		default:
			// The connection went with the answer: the group may have committed. Each
			// caller gets the error a lone commit would have given (backend.Retryable),
			// and looks for what it may hold without knowing (claimed next tasks).
			for _, s := range group {
				if s.err == nil && !s.notSequential {
					s.err = b.dbError(s.op(), err)
				}
			}
		}
	}
	for _, s := range alone {
		b.commitSequential(s)
	}
}

// undone tells whether err, from commitGroup, means the statement was not applied: the
// server refused it (an error it raised undoes the whole statement), or it was never
// sent.
func undone(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) || pgconn.SafeToRetry(err)
}

// commitGroup sends one statement committing group's steps. A step whose caller read
// the execution before the pool last reached another server is answered stale and left
// out. An error means nothing was written (undone: the statement is its own
// transaction, and an error the server raises undoes it whole, also when a step's rows
// changed between the statement's check and its commit) or, for a connection lost with
// the answer, perhaps everything (see commitSequentials).
func (b *Backend) commitGroup(group []*seqStep) error {
	ctx := context.WithoutCancel(group[0].ctx)
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var send []*seqStep
	for _, s := range group {
		if err := b.checkLossMark(s.ctx); err != nil {
			s.err = b.dbError(s.op(), err)
			continue
		}
		send = append(send, s)
	}
	if len(send) == 0 {
		return nil
	}
	now := toMS(b.now())
	n := len(send)
	var (
		executions, kinds, names, nextQueues, payloads, activities, schedNames = make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		datas, errvs, schedDatas         = make([]*string, n), make([]*string, n), make([]*string, n)
		versions, tasks, fences, expires = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		seqs, nextSeqs, priorities       = make([]int32, n), make([]int32, n), make([]int32, n)
		cacheHits                        = make([]bool, n)
	)
	for i, s := range send {
		s.now, s.expires = now, now+s.leaseMS
		executions[i], versions[i], tasks[i], fences[i], seqs[i] = s.execution, s.version, s.task, s.fence, int32(s.seq)
		kinds[i], names[i], datas[i], errvs[i], cacheHits[i] = s.kind, s.name, s.data, s.errv, s.cacheHit
		nextSeqs[i], nextQueues[i], payloads[i], priorities[i] = int32(s.nextSeq), s.nextQueue, s.payload, int32(s.priority)
		activities[i], expires[i], schedNames[i], schedDatas[i] = s.activity, s.expires, s.schedName, s.schedData
	}
	rows, err := conn.Query(ctx, sqlSequentialSteps, executions, versions, now, tasks, fences, seqs, kinds, names, datas,
		errvs, cacheHits, nextSeqs, nextQueues, payloads, priorities, activities, send[0].owner, expires, schedNames,
		schedDatas, send[0].queues)
	if err != nil {
		return err
	}
	answered := 0
	for rows.Next() {
		var (
			i    int32
			v, e *int64
			q    *string
			f    *int64
			code *string
		)
		if err := rows.Scan(&i, &v, &e, &q, &f, &code); err != nil {
			rows.Close()
			return err
		}
		if i < 1 || int(i) > n {
			rows.Close()
			return fmt.Errorf("group commit answered step %d of %d", i, n)
		}
		s := send[i-1]
		if code != nil || v == nil || e == nil || q == nil || f == nil {
			s.notSequential = true
		} else {
			s.outVersion, s.outEvent, s.outQueue, s.outFence = *v, *e, *q, *f
		}
		answered++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if answered != n {
		return errors.New("group commit: not every step was answered")
	}
	return nil
}
