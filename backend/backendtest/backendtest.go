// Package backendtest is the conformance suite every Stent backend runs: one Run call
// exercises executions, claiming and leases, fencing, completion, timers, history,
// scripts, listing, concurrency, signals, EndExecution, continue-as-new, the result
// cache, dead letters, deadline tasks and NextTaskAt against a fresh backend per
// subtest, with a FakeClock driving time.
//
// A backend's test file calls it like this:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T, clock backend.Clock) backend.Backend {
//			b, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "stent.db"), sqlite.WithClock(clock))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { b.Close() })
//			return b
//		})
//	}
//
// What the suite assumes of a backend beyond the doc comments of backend.Backend:
//
//   - Times are kept to at least millisecond precision; the FakeClock starts at Epoch
//     and only moves by whole milliseconds.
//   - ReclaimTasks may treat a lease owner that never sent a Heartbeat as dead; the
//     suite heartbeats every worker that holds a task before it reclaims with a grace.
//   - A task's ID is never reused, and a claim always changes its fence, so an old
//     TaskRef can never match again.
//   - History, Logs and PendingSignals of an unknown execution return nothing (or
//     ErrNotFound).
//   - A cache entry has expired once the clock reaches its ExpiresAt.
//   - A child started by an earlier run of its parent (before a continue-as-new) does
//     not report to the parent's later run: no child_completed, no workflow task.
//   - Finishing with a status other than completed appends a failed event.
//
// Package backendtest imports only package backend and the standard library (testing
// among it); it must not import a store, so that every store's tests can import it.
package backendtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// NewBackendFunc returns a fresh, migrated backend reading time from clock. It should
// register its own cleanup with t.Cleanup.
type NewBackendFunc = func(t *testing.T, clock backend.Clock) backend.Backend

// test is one conformance check.
type test struct {
	name string
	fn   func(t *testing.T, e *env)
}

// group is one area of the suite.
type group struct {
	name  string
	tests []test
}

// Run runs the whole conformance suite. Each leaf subtest gets a fresh backend from
// newBackend and its own FakeClock, and runs in parallel with the others.
func Run(t *testing.T, newBackend NewBackendFunc) {
	t.Helper()
	groups := []group{
		{"Executions", executionTests},
		{"Listing", listingTests},
		{"ListFilters", listFilterTests},
		{"Inspect", inspectTests},
		{"Scripts", scriptTests},
		{"History", historyTests},
		{"Claiming", claimingTests},
		{"Completion", completionTests},
		{"Timers", timerTests},
		{"Concurrency", concurrencyTests},
		{"Signals", signalTests},
		{"EndExecution", endExecutionTests},
		{"ContinueAsNew", continueAsNewTests},
		{"Cache", cacheTests},
		{"DeadLetters", deadLetterTests},
		{"Deadlines", deadlineTests},
		{"HandOff", handOffTests},
		{"Crashes", crashTests},
		{"Attempts", attemptTests},
		{"Priority", priorityTests},
		{"DelayedStart", delayedStartTests},
		{"Routing", routingTests},
		{"Schedules", scheduleTests},
		{"Tags", tagTests},
		{"Batches", batchTests},
		{"Retention", retentionTests},
		{"Repair", repairTests},
		{"CancelRequest", cancelRequestTests},
		{"Telemetry", telemetryTests},
		{"Commits", commitTests},
		{"FusedStep", fusedTests},
		{"DispatchStep", dispatchStepTests},
		{"ChildFirstSteps", childFirstStepTests},
		{"ReadyReporter", readyReporterTests},
		{"StrayTasks", strayTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					clock := NewFakeClock(Epoch)
					b := newBackend(t, clock)
					if b == nil {
						t.Fatal("newBackend returned a nil backend")
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					t.Cleanup(cancel)
					tc.fn(t, &env{t: t, b: b, clock: clock, ctx: ctx})
				})
			}
		})
	}
}

// Epoch is the time every FakeClock of the suite starts at.
var Epoch = time.Date(2030, time.January, 2, 3, 4, 5, 0, time.UTC)

// FakeClock is a backend.Clock that moves only when told to. It is safe for
// concurrent use.
type FakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewFakeClock returns a clock reading start.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{now: start} }

// Now returns the clock's current time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (backward when d is negative).
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

var _ backend.Clock = (*FakeClock)(nil)
