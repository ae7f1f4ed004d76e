package engine

import (
	"context"
	"sort"
	"sync"
	"time"
)

// VirtualClock is the clock of an engine opened WithVirtualTime: it stands still while
// work is runnable and jumps to the next due task (timer, retry, delayed start) when the
// engine's worker is idle, so durable sleeps of days finish at once in tests.
type VirtualClock struct {
	mu    sync.Mutex
	now   time.Time
	hooks []virtualHook
}

type virtualHook struct {
	at time.Time
	fn func()
}

// NewVirtualClock returns a clock standing at start.
func NewVirtualClock(start time.Time) *VirtualClock { return &VirtualClock{now: start} }

// Now returns the virtual time.
func (c *VirtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *VirtualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// At runs fn when the virtual clock reaches t (before any task due later runs). Tests
// use it to send signals at scripted times.
func (c *VirtualClock) At(t time.Time, fn func()) {
	c.mu.Lock()
	c.hooks = append(c.hooks, virtualHook{at: t, fn: fn})
	sort.SliceStable(c.hooks, func(i, j int) bool { return c.hooks[i].at.Before(c.hooks[j].at) })
	c.mu.Unlock()
}

// advance moves the clock to the earlier of the next task and the next hook, running
// the hooks that fall due. It reports whether anything changed.
func (c *VirtualClock) advance(nextTask time.Time, haveTask bool) bool {
	c.mu.Lock()
	target := nextTask
	have := haveTask
	if len(c.hooks) > 0 && (!have || !c.hooks[0].at.After(target)) {
		target, have = c.hooks[0].at, true
	}
	if !have {
		c.mu.Unlock()
		return false
	}
	if target.After(c.now) {
		c.now = target
	}
	var due []func()
	for len(c.hooks) > 0 && !c.hooks[0].at.After(c.now) {
		due = append(due, c.hooks[0].fn)
		c.hooks = c.hooks[1:]
	}
	c.mu.Unlock()
	for _, fn := range due {
		fn()
	}
	return true
}

// WithVirtualTime runs the engine (and the backend it opens) on a VirtualClock starting
// at start. Meant for tests: see package tests/stenttest.
func WithVirtualTime(start time.Time) Option {
	return func(o *engineConfig) {
		vc := NewVirtualClock(start)
		o.virtual = vc
		o.clock = vc
	}
}

// VirtualClock returns the engine's virtual clock, or nil when it runs on real time.
func (e *Engine) VirtualClock() *VirtualClock { return e.cfg.virtual }

// nextTaskAter is implemented by backends that can tell when the next task is due.
type nextTaskAter interface {
	NextTaskAt(ctx context.Context, queues []string) (time.Time, bool, error)
}

// advanceVirtualTime is called by an idle worker (nothing claimable, nothing running):
// it jumps the virtual clock to the next due task or hook.
func (e *Engine) advanceVirtualTime(ctx context.Context, queues []string) bool {
	vc := e.cfg.virtual
	if vc == nil {
		return false
	}
	var next time.Time
	var ok bool
	if b, isB := e.b.(nextTaskAter); isB {
		var err error
		next, ok, err = b.NextTaskAt(ctx, queues)
		if err != nil {
			e.logger.Warn("virtual time: reading the next task", "err", err)
			return false
		}
	}
	if ok && !next.After(vc.Now()) {
		return true // runnable work appeared meanwhile: claim it before time moves
	}
	return vc.advance(next, ok)
}
