package interpreter

import (
	"fmt"
	"runtime/metrics"
	"sync"
	"time"

	"go.starlark.net/starlark"
)

// DefaultMemoryLimit is the memory one step of a script may take (see Config.MemoryLimit).
const DefaultMemoryLimit = 256 << 20

// memorySample is how often the watchdog looks at the heap while a step runs.
const memorySample = 2 * time.Millisecond

// heapMetric is the Go heap occupied by objects, live or not yet swept.
const heapMetric = "/memory/classes/heap/objects:bytes"

// The memory watchdog. go.starlark.net has no allocator hook, so a step's memory is
// approximated by how much the process's heap grew since the step began, sampled every
// memorySample by one goroutine shared by every running step. The approximation errs
// both ways: steps running at the same time (and the worker's own work) count towards
// each other's growth, and a step can overshoot the budget by what it allocates within
// one sample. It is a guard against runaway scripts, not an accountant.
var memoryWatch = struct {
	sync.Mutex
	steps   map[*starlark.Thread]watchedStep
	running bool
}{steps: map[*starlark.Thread]watchedStep{}}

type watchedStep struct {
	base  uint64
	limit uint64
}

// watchMemory cancels thread when the heap grows by more than limit bytes before the
// returned stop is called.
func watchMemory(thread *starlark.Thread, limit uint64) (stop func()) {
	memoryWatch.Lock()
	memoryWatch.steps[thread] = watchedStep{base: heapBytes(), limit: limit}
	if !memoryWatch.running {
		memoryWatch.running = true
		go memoryWatchLoop()
	}
	memoryWatch.Unlock()
	return func() {
		memoryWatch.Lock()
		delete(memoryWatch.steps, thread)
		memoryWatch.Unlock()
	}
}

func memoryWatchLoop() {
	t := time.NewTicker(memorySample)
	defer t.Stop()
	for range t.C {
		memoryWatch.Lock()
		if len(memoryWatch.steps) == 0 {
			memoryWatch.running = false
			memoryWatch.Unlock()
			return
		}
		now := heapBytes()
		for thread, s := range memoryWatch.steps {
			if now > s.base && now-s.base > s.limit {
				thread.Cancel(fmt.Sprintf("memory limit exceeded: the step took more than %d MiB (the limit is --max-script-memory or stent.WithScriptMemory)", s.limit>>20))
				delete(memoryWatch.steps, thread)
			}
		}
		memoryWatch.Unlock()
	}
}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
