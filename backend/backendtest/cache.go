package backendtest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

var cacheTests = []test{
	{"StoreThroughCompleteActivityTask", testCacheStore},
	{"ExpiresByTheClock", testCacheExpiry},
	{"LatestResultWins", testCacheOverwrite},
	{"FailureOrStaleFenceStoresNothing", testCacheNotStored},
	{"CacheHitIsRecordedOnTheEvent", testCacheHitEvent},
	{"ClearCache", testClearCache},
}

// completeCached runs one activity of a fresh execution (named id) and completes it
// with result r (r.Task, ExecutionID, Seq and Name are filled in).
func (e *env) completeCached(id, activity string, r backend.ActivityResult) {
	e.t.Helper()
	e.create(id)
	e.scheduleActivities(id, 0, 1, activity)
	act := e.claimOne(backend.TaskActivity, id)
	r.Task, r.ExecutionID, r.Seq, r.Name = act.Ref(), id, 1, activity
	if err := e.b.CompleteActivityTask(e.ctx, r); err != nil {
		e.t.Fatalf("CompleteActivityTask(%s, cache %+v): unexpected error %v", activity, r.Cache, err)
	}
	e.claimOne(backend.TaskWorkflow, id) // keep the next claims unambiguous
}

func (e *env) cached(key string) (json.RawMessage, bool) {
	e.t.Helper()
	v, ok, err := e.b.CachedResult(e.ctx, key)
	if err != nil {
		e.t.Fatalf("CachedResult(%q): unexpected error %v", key, err)
	}
	return v, ok
}

func (e *env) wantCached(key, want string) {
	e.t.Helper()
	v, ok := e.cached(key)
	if !ok {
		e.t.Fatalf("CachedResult(%q): not found, want %s", key, want)
	}
	wantJSON(e.t, "CachedResult("+key+")", v, []byte(want))
}

func (e *env) wantNotCached(key, why string) {
	e.t.Helper()
	if v, ok := e.cached(key); ok {
		e.t.Fatalf("CachedResult(%q) = %s, want not found (%s)", key, v, why)
	}
}

func testCacheStore(t *testing.T, e *env) {
	e.wantNotCached("k1", "nothing was stored yet")
	e.completeCached("x", "fetch", backend.ActivityResult{Result: json.RawMessage(`{"user":"u1"}`),
		Cache: &backend.CacheEntry{Key: "k1", Activity: "fetch"}})
	e.wantCached("k1", `{"user":"u1"}`)
	h := e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled, backend.EventActivityCompleted)
	wantJSON(t, "activity_completed Data", h[2].Data, []byte(`{"user":"u1"}`))
	if h[2].CacheHit {
		t.Fatalf("activity_completed CacheHit = true for an activity that ran")
	}
	// Shared across executions, and never expiring without ExpiresAt.
	e.clock.Advance(24 * 365 * time.Hour)
	e.wantCached("k1", `{"user":"u1"}`)
	e.wantNotCached("k2", "another key")
}

func testCacheExpiry(t *testing.T, e *env) {
	exp := Epoch.Add(time.Hour)
	e.completeCached("x", "fetch", backend.ActivityResult{Result: json.RawMessage(`42`),
		Cache: &backend.CacheEntry{Key: "k", Activity: "fetch", ExpiresAt: &exp}})
	e.clock.Advance(time.Hour - time.Millisecond)
	e.wantCached("k", `42`)
	e.clock.Advance(time.Millisecond)
	e.wantNotCached("k", "it expires at its ExpiresAt")
	e.clock.Advance(time.Hour)
	e.wantNotCached("k", "expired an hour ago")
}

func testCacheOverwrite(t *testing.T, e *env) {
	exp := Epoch.Add(time.Minute)
	e.completeCached("x", "fetch", backend.ActivityResult{Result: json.RawMessage(`"old"`),
		Cache: &backend.CacheEntry{Key: "k", Activity: "fetch", ExpiresAt: &exp}})
	e.clock.Advance(2 * time.Minute)
	e.wantNotCached("k", "expired")
	e.completeCached("y", "fetch", backend.ActivityResult{Result: json.RawMessage(`"new"`),
		Cache: &backend.CacheEntry{Key: "k", Activity: "fetch"}})
	e.wantCached("k", `"new"`)
	e.clock.Advance(time.Hour)
	e.wantCached("k", `"new"`) // the new entry has no expiry
}

func testCacheNotStored(t *testing.T, e *env) {
	e.completeCached("x", "charge", backend.ActivityResult{
		Error: &backend.ErrorInfo{Message: "declined", Type: "activity", Activity: "charge", Attempts: 1},
		Cache: &backend.CacheEntry{Key: "k-fail", Activity: "charge"}})
	e.wantNotCached("k-fail", "a failed activity is not cached")

	e.create("y")
	e.scheduleActivities("y", 0, 1, "fetch")
	old := e.claimOne(backend.TaskActivity, "y")
	fresh := e.reclaimAndReclaim(old)
	err := e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: old.Ref(), ExecutionID: "y", Seq: 1, Name: "fetch",
		Result: json.RawMessage(`"stale"`), Cache: &backend.CacheEntry{Key: "k-stale", Activity: "fetch"}})
	wantErrIs(t, "CompleteActivityTask with a stale fence", err, backend.ErrLeaseLost)
	e.wantNotCached("k-stale", "a stale completion writes nothing")
	if err := e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: fresh.Ref(), ExecutionID: "y", Seq: 1, Name: "fetch",
		Result: json.RawMessage(`"fresh"`), Cache: &backend.CacheEntry{Key: "k-stale", Activity: "fetch"}}); err != nil {
		t.Fatalf("CompleteActivityTask by the new holder: %v", err)
	}
	e.wantCached("k-stale", `"fresh"`)
}

func testCacheHitEvent(t *testing.T, e *env) {
	e.create("x")
	e.scheduleActivities("x", 0, 1, "fetch", "other")
	acts := e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskActivity}})
	if len(acts) != 2 {
		t.Fatalf("claimed %s, want two activity tasks", describe(acts))
	}
	for _, a := range acts {
		if err := e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: a.Ref(), ExecutionID: "x", Seq: a.Seq,
			Name: "n", Result: json.RawMessage(`"v"`), CacheHit: a.Seq == 1}); err != nil {
			t.Fatalf("CompleteActivityTask(seq %d): %v", a.Seq, err)
		}
	}
	h := e.wantKinds("x", backend.EventStarted, backend.EventActivityScheduled, backend.EventActivityScheduled,
		backend.EventActivityCompleted, backend.EventActivityCompleted)
	for _, ev := range h {
		want := ev.Kind == backend.EventActivityCompleted && ev.Seq == 1
		if ev.CacheHit != want {
			t.Fatalf("event %s seq %d: CacheHit %v, want %v", ev.Kind, ev.Seq, ev.CacheHit, want)
		}
	}
	// CacheHit survives paging.
	page, err := e.b.History(e.ctx, "x", h[2].ID)
	if err != nil || len(page) != 2 || !page[0].CacheHit && !page[1].CacheHit {
		t.Fatalf("History after %d = (%+v, %v), want the two completions, one a cache hit", h[2].ID, page, err)
	}
}

func testClearCache(t *testing.T, e *env) {
	exp := Epoch.Add(time.Minute)
	e.completeCached("x1", "a", backend.ActivityResult{Result: json.RawMessage(`1`), Cache: &backend.CacheEntry{Key: "a1", Activity: "a"}})
	e.completeCached("x2", "a", backend.ActivityResult{Result: json.RawMessage(`2`), Cache: &backend.CacheEntry{Key: "a2", Activity: "a", ExpiresAt: &exp}})
	e.completeCached("x3", "b", backend.ActivityResult{Result: json.RawMessage(`3`), Cache: &backend.CacheEntry{Key: "b1", Activity: "b"}})
	e.completeCached("x4", "c", backend.ActivityResult{Result: json.RawMessage(`4`), Cache: &backend.CacheEntry{Key: "c1", Activity: "c"}})
	clear := func(activity string, want int) {
		t.Helper()
		n, err := e.b.ClearCache(e.ctx, activity)
		if err != nil || n != want {
			t.Fatalf("ClearCache(%q) = (%d, %v), want (%d, nil)", activity, n, err, want)
		}
	}
	clear("nope", 0)
	clear("a", 2)
	e.wantNotCached("a1", "cleared")
	e.wantNotCached("a2", "cleared")
	e.wantCached("b1", `3`)
	e.wantCached("c1", `4`)
	clear("a", 0)
	clear("", 2)
	e.wantNotCached("b1", "all cleared")
	e.wantNotCached("c1", "all cleared")
	clear("", 0)
}
