package stent

import (
	"container/list"
	"sync"
	"sync/atomic"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/interpreter"
)

// liveRun is a parked script plus what it has seen of its execution.
type liveRun struct {
	id          string
	ex          *backend.Execution // as read when the run started: its fixed fields
	run         *interpreter.Run
	version     int64 // the execution's Version after this run's last commit
	lastEventID int64 // the last history event fed to the run
	logs        int   // log lines committed so far
}

// runCache is the bounded (LRU) set of live runs of one engine. A run is taken out while
// a task advances it and put back after the commit, so one run is never used twice at once.
type runCache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List
	items map[string]*list.Element
	// evicted counts runs closed to stay within max (the stent.live_cache.evictions metric).
	evicted atomic.Int64
}

func newRunCache(max int) *runCache {
	return &runCache{max: max, ll: list.New(), items: map[string]*list.Element{}}
}

// take removes and returns the live run of id, if cached.
func (c *runCache) take(id string) *liveRun {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[id]
	if !ok {
		return nil
	}
	c.ll.Remove(el)
	delete(c.items, id)
	return el.Value.(*liveRun)
}

// put caches lr, closing the least recently used runs beyond the bound.
func (c *runCache) put(lr *liveRun) {
	if c.max <= 0 {
		lr.run.Close()
		return
	}
	var evicted []*liveRun
	c.mu.Lock()
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
