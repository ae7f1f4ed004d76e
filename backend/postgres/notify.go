package postgres

import (
	"context"
	"sync"
	"time"
)

// notifier sends the NOTIFYs of committed transactions from one goroutine.
//
// PostgreSQL serializes the commits of all transactions that NOTIFY on a global lock
// held across the commit's WAL flush, so issuing pg_notify inside every state change
// caps the whole database at one notifying commit per disk flush. Instead, a
// transaction hands its queue names to the notifier after committing; the notifier
// coalesces what accumulated (one notification per channel and payload) and sends it
// in a short transaction of its own with synchronous_commit off, so the lock is held
// only briefly, at most once per notifyInterval. A notification lost in a crash between
// the two costs latency (workers poll), never work.
type notifier struct {
	b       *Backend
	mu      sync.Mutex
	pending map[note]struct{}
	wake    chan struct{}
	done    chan struct{}
	stopped chan struct{}
}

type note struct{ channel, payload string }

func newNotifier(b *Backend) *notifier {
	n := &notifier{
		b:       b,
		pending: make(map[note]struct{}),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go n.run()
	return n
}

// send queues the notifications a committed transaction collected.
func (n *notifier) send(s *txState) {
	if n == nil || s == nil || (len(s.queues) == 0 && len(s.finished) == 0) {
		return
	}
	if fns := n.b.onAnnounced.Load(); fns != nil {
		for _, fn := range *fns {
			for _, id := range s.finished {
				fn(id)
			}
		}
	}
	n.mu.Lock()
	for q := range s.queues {
		n.pending[note{n.b.tasksChannel, q}] = struct{}{}
	}
	for _, id := range s.finished {
		n.pending[note{n.b.finishedChannel, id}] = struct{}{}
	}
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) take() (channels, payloads []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k := range n.pending {
		channels = append(channels, k.channel)
		payloads = append(payloads, k.payload)
	}
	clear(n.pending)
	return channels, payloads
}

// notifyInterval is the least time between two sends. The first notification after a
// quiet spell goes out at once; under load, what accumulates meanwhile goes out
// together, so every listener is woken at most once per interval instead of once per
// state change (waking listeners costs the server more than the state change itself).
const notifyInterval = 5 * time.Millisecond

func (n *notifier) run() {
	defer close(n.stopped)
	for {
		select {
		case <-n.wake:
			n.flush()
		case <-n.done:
			n.flush()
			return
		}
		t := time.NewTimer(notifyInterval)
		select {
		case <-t.C:
		case <-n.done:
			t.Stop()
			n.flush()
			return
		}
	}
}

// maxPayloadBytes is below PostgreSQL's 8000-byte limit on a notification payload.
const maxPayloadBytes = 7900

func (n *notifier) flush() {
	channels, payloads := n.take()
	if len(channels) == 0 {
		return
	}
	keep := 0
	for i, p := range payloads {
		if len(p) > maxPayloadBytes {
			// Too long to announce: a "task" notification without a queue still
			// wakes every worker; a finished one is left to polling.
			if channels[i] != n.b.tasksChannel {
				continue
			}
			p = ""
		}
		channels[keep], payloads[keep] = channels[i], p
		keep++
	}
	channels, payloads = channels[:keep], payloads[:keep]
	if keep == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// set_config(..., true) is local to this implicit transaction: the commit skips
	// waiting for its WAL flush, which is fine for a notification.
	_, _ = n.b.pool.Exec(ctx, `SELECT set_config('synchronous_commit', 'off', true),
		(SELECT count(pg_notify(c, p)) FROM unnest($1::text[], $2::text[]) AS n(c, p))`,
		channels, payloads)
}

// stop sends what is still queued and ends the goroutine.
func (n *notifier) stop() {
	close(n.done)
	<-n.stopped
}
