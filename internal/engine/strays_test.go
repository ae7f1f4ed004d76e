package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/backend/backendtest"
)

// strayRecorder is a backend that records the calls of ReleaseStrayTasks, failing
// while down.
type strayRecorder struct {
	backend.Backend
	down  bool
	calls []strayCall
}

type strayCall struct {
	worker      string
	held        []backend.TaskRef
	leaseBefore time.Time
}

func (s *strayRecorder) ReleaseStrayTasks(_ context.Context, worker string, held []backend.TaskRef, leaseBefore time.Time) (int, error) {
	s.calls = append(s.calls, strayCall{worker, slices.Clone(held), leaseBefore})
	if s.down {
		return 0, fmt.Errorf("releasing: %w", backend.ErrUnavailable)
	}
	return 2, nil
}

// After a claim fails with ErrUnavailable, the worker waits strayMargin, then releases
// what it does not hold among the tasks claimed before then (their lease ends before
// now - strayMargin + lease), again at each beat while the database is unavailable, and
// not once it succeeded. Other errors call nothing.
func TestReleaseStraysAfterAnUncertainClaim(t *testing.T) {
	clock := backendtest.NewFakeClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	rec := &strayRecorder{}
	e := &Engine{b: rec, clock: clock, logger: slog.New(slog.NewTextHandler(io.Discard, nil)), wake: newBroadcast()}
	const lease = time.Minute
	w := &worker{e: e, opts: WorkerOptions{ID: "w1", LeaseDuration: lease}, inflight: map[int64]*inflight{}}
	w.track(backend.Task{ID: 7, Fence: 1}, func() {})
	beat := func() { w.releaseStrays(context.Background()) }

	w.claimUncertain(fmt.Errorf("claiming: %w", backend.ErrLeaseLost))
	beat()
	if len(rec.calls) != 0 {
		t.Fatalf("released strays after an error that is not ErrUnavailable: %+v", rec.calls)
	}
	w.claimUncertain(fmt.Errorf("claiming: %w", backend.ErrUnavailable))
	clock.Advance(strayMargin - time.Millisecond)
	beat()
	if len(rec.calls) != 0 {
		t.Fatalf("released strays before strayMargin passed: %+v", rec.calls)
	}
	rec.down = true
	clock.Advance(time.Second)
	beat()
	clock.Advance(time.Second)
	rec.down = false
	beat()
	beat()
	if len(rec.calls) != 2 {
		t.Fatalf("%d calls, want 2 (one failed while down, one that succeeded, none after)", len(rec.calls))
	}
	c := rec.calls[1]
	if want := clock.Now().Add(-strayMargin + lease); c.worker != "w1" || !slices.Equal(c.held, []backend.TaskRef{{ID: 7, Fence: 1}}) || !c.leaseBefore.Equal(want) {
		t.Errorf("ReleaseStrayTasks(%q, %v, %s), want (w1, [{7 1}], %s)", c.worker, c.held, c.leaseBefore, want)
	}
}

// A lease the store says is lost (the task is leased under another fence, or to
// another worker) makes the worker release, strayMargin later, what it does not hold
// under the fence it knows: after a failover that lost the commit that moved a task
// on, the store still leases it to this worker under the fence before, which it would
// keep until the lease ends.
func TestReleaseStraysAfterALostLease(t *testing.T) {
	clock := backendtest.NewFakeClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	rec := &strayRecorder{}
	lost := &lostLeases{strayRecorder: rec}
	e := &Engine{b: lost, clock: clock, logger: slog.New(slog.NewTextHandler(io.Discard, nil)), wake: newBroadcast()}
	w := &worker{e: e, opts: WorkerOptions{ID: "w1", LeaseDuration: time.Minute}, inflight: map[int64]*inflight{}}
	cancelled := false
	w.track(backend.Task{ID: 7, Fence: 2}, func() { cancelled = true })
	w.extendLeases(context.Background())
	if !cancelled {
		t.Fatal("the attempt whose lease was lost runs on")
	}
	clock.Advance(strayMargin)
	w.releaseStrays(context.Background())
	if len(rec.calls) != 1 || rec.calls[0].worker != "w1" {
		t.Fatalf("ReleaseStrayTasks calls after a lost lease: %+v, want one for w1", rec.calls)
	}
}

// lostLeases is a strayRecorder whose ExtendLeases says every lease is lost.
type lostLeases struct {
	*strayRecorder
}

func (l *lostLeases) ExtendLeases(_ context.Context, _ string, refs []backend.TaskRef, _ time.Duration) ([]backend.TaskRef, error) {
	return refs, nil
}

// Faults that come faster than strayMargin (a network cutting connections every 300
// ms) do not hold the release back: strayMargin after the first, each beat releases
// what was claimed strayMargin or more ago, until strayMargin after the last fault.
func TestReleaseStraysUnderContinuousFaults(t *testing.T) {
	clock := backendtest.NewFakeClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	rec := &strayRecorder{}
	e := &Engine{b: rec, clock: clock, logger: slog.New(slog.NewTextHandler(io.Discard, nil)), wake: newBroadcast()}
	w := &worker{e: e, opts: WorkerOptions{ID: "w1", LeaseDuration: time.Minute}, inflight: map[int64]*inflight{}}
	start := clock.Now()
	var lastFault time.Time
	for step := 1; step <= 100; step++ { // 30 s in steps of 300 ms
		clock.Advance(300 * time.Millisecond)
		if step <= 50 { // faults for the first 15 s
			w.claimUncertain(fmt.Errorf("claiming: %w", backend.ErrUnavailable))
			lastFault = clock.Now()
		}
		if step%3 == 0 { // a beat every 900 ms
			w.releaseStrays(context.Background())
		}
	}
	if len(rec.calls) == 0 {
		t.Fatal("no release while faults went on")
	}
	firstRelease := rec.calls[0].leaseBefore.Add(-time.Minute + strayMargin)
	if firstRelease.Sub(start) > strayMargin+time.Second {
		t.Errorf("first release %s after the first fault, want within strayMargin and a beat", firstRelease.Sub(start))
	}
	// The last call covers claims up to the last fault, and none follows it needlessly.
	last := rec.calls[len(rec.calls)-1]
	if cut := last.leaseBefore.Add(-time.Minute); cut.Before(lastFault) {
		t.Errorf("the last release spared claims from %s on; the last fault was at %s", cut, lastFault)
	}
	if len(rec.calls) > 2 {
		if prev := rec.calls[len(rec.calls)-2].leaseBefore.Add(-time.Minute); !prev.Before(lastFault) {
			t.Errorf("released again after a release that covered the last fault (%s ≥ %s)", prev, lastFault)
		}
	}
}
