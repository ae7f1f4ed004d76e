package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"time"
)

// WAL checkpoints run off the commit path. SQLite's automatic checkpoint runs inside
// the COMMIT that crosses its threshold (1,000 pages): that commit also copies the
// pages into the database file and syncs it, some milliseconds in which every other
// write of the process waits. The writer connection turns it off
// (wal_autocheckpoint(0)), and a goroutine with a connection of its own runs a PASSIVE
// checkpoint, which never blocks writers or readers, once ckptCommits transactions
// have committed since the last one, or ckptEvery after a commit when fewer have.
//
// A checkpoint costs a sync of the database file and copies each page the WAL holds
// once, however many times it was written: the hot pages of a busy workload (the tail
// of the events table and its index, the executions and tasks being worked on) are
// copied once per checkpoint. 512 commits between two keeps the WAL to a few MiB and
// made a sequential step about 5% cheaper than 128 did (`stent bench --scenario P4`).
const (
	ckptCommits = 512
	ckptEvery   = 250 * time.Millisecond
	// ckptInline: should the checkpointer fall this far behind (it shares the CPU),
	// the writer checkpoints itself, so that the WAL stays bounded.
	ckptInline = 4096
)

// checkpointer runs the background checkpoints of one Backend.
type checkpointer struct {
	db     *sql.DB
	kick   chan struct{}
	stop   chan struct{}
	finish atomic.Bool // a background checkpoint is done: the writer completes it
	wg     sync.WaitGroup
}

// startCheckpointer opens the checkpoint connection for dsn and starts the loop.
func (b *Backend) startCheckpointer(ctx context.Context, dsn string) error {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return err
	}
	c := &checkpointer{db: db, kick: make(chan struct{}, 1), stop: make(chan struct{})}
	b.ckpt = c
	c.wg.Add(1)
	go b.checkpointLoop(c)
	return nil
}

// committed is called by the writer after each commit (it holds sem).
func (b *Backend) committed() {
	n := b.commits.Add(1)
	c := b.ckpt
	if c == nil {
		return
	}
	behind := n - b.ckptDone.Load()
	if c.finish.Swap(false) || behind >= ckptInline {
		// The background checkpoint copied the pages and synced the file. What the
		// WAL gained since is little: checkpoint it here, with no write of this
		// process under way, so that the next write transaction starts the WAL over
		// from its beginning (a WAL that only grows makes every commit slower). Also
		// when the background checkpointer is starved (it shares the CPU), so that the
		// WAL stays bounded.
		if _, err := b.wc.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)"); err == nil {
			b.ckptDone.Store(n)
		}
		return
	}
	if behind >= ckptCommits || behind == 1 {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

func (b *Backend) checkpointLoop(c *checkpointer) {
	defer c.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	for {
		due := false
		select {
		case <-c.stop:
			timer.Stop()
			return
		case <-c.kick:
		case <-timer.C:
			armed, due = false, true
		}
		n := b.commits.Load()
		behind := n - b.ckptDone.Load()
		if behind == 0 {
			continue
		}
		if behind < ckptCommits && !due {
			if !armed {
				// A few commits: checkpoint them a little later, with whatever follows.
				timer.Reset(ckptEvery)
				armed = true
			}
			continue
		}
		// Errors (SQLITE_BUSY when another process checkpoints) leave the work for the
		// next round.
		if _, err := c.db.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err == nil {
			b.ckptDone.Store(n)
			c.finish.Store(true)
		}
	}
}

// close stops the loop and closes the connection; the caller holds sem.
func (c *checkpointer) close() error {
	close(c.stop)
	c.wg.Wait()
	return c.db.Close()
}
