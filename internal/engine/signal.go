package engine

import "sync"

// broadcast wakes every waiter at once. Waiters take the channel before checking for
// work, so a notification between the check and the wait is never lost.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBroadcast() *broadcast { return &broadcast{ch: make(chan struct{})} }

// C returns a channel closed by the next Notify.
func (b *broadcast) C() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

// Notify wakes all current waiters.
func (b *broadcast) Notify() {
	b.mu.Lock()
	close(b.ch)
	b.ch = make(chan struct{})
	b.mu.Unlock()
}

// finishHub tells in-process waiters that an execution ended.
type finishHub struct {
	mu      sync.Mutex
	waiters map[string][]chan struct{}
}

func (h *finishHub) subscribe(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	h.mu.Lock()
	if h.waiters == nil {
		h.waiters = map[string][]chan struct{}{}
	}
	h.waiters[id] = append(h.waiters[id], ch)
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		list := h.waiters[id]
		for i, c := range list {
			if c == ch {
				h.waiters[id] = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(h.waiters[id]) == 0 {
			delete(h.waiters, id)
		}
	}
}

func (h *finishHub) notify(id string) {
	h.mu.Lock()
	list := h.waiters[id]
	delete(h.waiters, id)
	h.mu.Unlock()
	for _, c := range list {
		close(c)
	}
}
