package engine

import (
	"container/list"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/interpreter"
)

// liveRun is a parked script plus what it has seen of its execution.
type liveRun struct {
	id          string
	ex          *backend.Execution // as read when the run started: its fixed fields
	run         *interpreter.Run
	version     int64         // the execution's Version after this run's last commit
	lastEventID int64         // the last history event fed to the run
	logs        int           // log lines committed so far
	lossMark    uint64        // the store's LossCounter when the run began to read (see lossMark)
	out         chan struct{} // closed when the taker puts the run back or lets it go
}

// runCache is the bounded (LRU) set of live runs of one engine. A run is taken out while
// a task advances it and put back after the commit, so one run is never used twice at once.
type runCache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List
	items map[string]*list.Element
	// out are the runs taken and not yet put back or let go, by execution: a worker
	// with an outcome for one may wait for it rather than take the long way.
	out map[string]chan struct{}
	// evicted counts runs closed to stay within max (the stent.live_cache.evictions metric).
	evicted atomic.Int64
	// losses is the store's backend.LossCounter (nil: its commits are never lost): a
	// run read before the count last moved may describe commits the store lost, and
	// is neither handed out nor kept.
	losses func() uint64
}

func newRunCache(max int, b backend.Backend) *runCache {
	c := &runCache{max: max, ll: list.New(), items: map[string]*list.Element{}, out: map[string]chan struct{}{}}
	if lc, ok := b.(backend.LossCounter); ok {
		c.losses = lc.Losses
	}
	return c
}

// lossMark is the store's count of losses now (0 when it cannot lose commits): a run
// records it before it reads anything, and its commits carry it (backend.WithLossMark).
func (c *runCache) lossMark() uint64 {
	if c.losses == nil {
		return 0
	}
	return c.losses()
}

// stale tells whether lr was read before the store last found itself on another
// server.
func (c *runCache) stale(lr *liveRun) bool {
	return c.losses != nil && lr.lossMark != c.losses()
}

// markCommit marks ctx's commits as relying on what lr read.
func (c *runCache) markCommit(ctx context.Context, lr *liveRun) context.Context {
	if c.losses == nil || lr == nil {
		return ctx
	}
	return backend.WithLossMark(ctx, lr.lossMark)
}

// take removes and returns the live run of id, if cached. The taker puts it back (put)
// or lets it go (release) when done with it.
func (c *runCache) take(id string) *liveRun {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.takeLocked(id)
}

func (c *runCache) takeLocked(id string) *liveRun {
	el, ok := c.items[id]
	if !ok {
		return nil
	}
	c.ll.Remove(el)
	delete(c.items, id)
	lr := el.Value.(*liveRun)
	if c.stale(lr) {
		lr.run.Close()
		return nil
	}
	lr.out = make(chan struct{})
	c.out[id] = lr.out
	return lr
}

// takeWait is take that, when another task of this process has the run out, waits up
// to d for it to come back.
func (c *runCache) takeWait(id string, d time.Duration) *liveRun {
	deadline := time.Now().Add(d)
	for {
		c.mu.Lock()
		if lr := c.takeLocked(id); lr != nil {
			c.mu.Unlock()
			return lr
		}
		ch, busy := c.out[id]
		c.mu.Unlock()
		wait := time.Until(deadline)
		if !busy || wait <= 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ch:
		case <-t.C:
		}
		t.Stop()
	}
}

// release marks lr as no longer out, if it is still out under the token a take gave it
// (lr.out then): a taker defers it for the paths that close the run instead of putting
// it back, without touching a later take's.
func (c *runCache) release(lr *liveRun, token chan struct{}) {
	c.mu.Lock()
	if lr.out == token {
		c.releaseLocked(lr)
	}
	c.mu.Unlock()
}

func (c *runCache) releaseLocked(lr *liveRun) {
	if lr.out == nil {
		return
	}
	if c.out[lr.id] == lr.out {
		delete(c.out, lr.id)
	}
	close(lr.out)
	lr.out = nil
}

// holds tells whether this process has the live run of id, parked or out.
func (c *runCache) holds(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, parked := c.items[id]
	_, out := c.out[id]
	return parked || out
}

// put caches lr, closing the least recently used runs beyond the bound.
func (c *runCache) put(lr *liveRun) {
	if c.max <= 0 {
		c.release(lr, lr.out)
		lr.run.Close()
		return
	}
	if c.stale(lr) {
		c.release(lr, lr.out)
		lr.run.Close()
		return
	}
	var evicted []*liveRun
	c.mu.Lock()
	c.releaseLocked(lr)
	if old, ok := c.items[lr.id]; ok {
		evicted = append(evicted, old.Value.(*liveRun))
		c.ll.Remove(old)
	}
	c.items[lr.id] = c.ll.PushFront(lr)
	for c.ll.Len() > c.max {
		el := c.ll.Back()
		c.ll.Remove(el)
		v := el.Value.(*liveRun)
		delete(c.items, v.id)
		evicted = append(evicted, v)
		c.evicted.Add(1)
	}
	c.mu.Unlock()
	for _, v := range evicted {
		v.run.Close()
	}
}

// drop closes and forgets the live run of id.
func (c *runCache) drop(id string) {
	if lr := c.take(id); lr != nil {
		c.release(lr, lr.out)
		lr.run.Close()
	}
}

// closeAll closes every cached run.
func (c *runCache) closeAll() {
	c.mu.Lock()
	var all []*liveRun
	for _, el := range c.items {
		all = append(all, el.Value.(*liveRun))
	}
	c.ll.Init()
	c.items = map[string]*list.Element{}
	c.mu.Unlock()
	for _, v := range all {
		v.run.Close()
	}
}

// Len reports how many runs are parked.
func (c *runCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}

// dropTree closes the live runs of id and of its descendants.
func (c *runCache) dropTree(id string) {
	c.mu.Lock()
	var gone []*liveRun
	for key, el := range c.items {
		if isSelfOrDescendant(key, id) {
			gone = append(gone, el.Value.(*liveRun))
			c.ll.Remove(el)
			delete(c.items, key)
		}
	}
	c.mu.Unlock()
	for _, lr := range gone {
		lr.run.Close()
	}
}
