package engine

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/backend/postgres"
)

// historyReads counts the history reads of the engine's workers (backend.History).
type historyReads struct {
	*postgres.Backend
	n atomic.Int64
}

func (h *historyReads) History(ctx context.Context, id string, afterID int64) ([]backend.Event, error) {
	h.n.Add(1)
	return h.Backend.History(ctx, id, afterID)
}

// Trees whose every generation is parked in this process finish with each child's end
// and its parent's next step in one commit (backend.ParentSteps, PostgreSQL): the
// parents' scripts get their children's outcomes from the worker that ended them, so
// no workflow task reads a history back. The results, the histories (one
// child_completed per child, in the parent's history where a replay expects it) and
// the replays are those of the usual path, on both stores.
func TestChildEndsCarryParentSteps(t *testing.T) {
	t.Parallel()
	for _, tb := range testBackends(t) {
		t.Run(tb.name, func(t *testing.T) {
			t.Parallel()
			var reads *historyReads
			if tb.open != nil {
				open := tb.open
				tb.open = func(t *testing.T) backend.Backend {
					reads = &historyReads{Backend: open(t).(*postgres.Backend)}
					return reads
				}
			}
			f := newFixtureOn(t, tb, 4096, func(e *Engine) {
				_ = e.Register("sq", func(ctx context.Context, n int) (int, error) { return n * n, nil })
			})
			script := f.script(t, `
def leaf(n):
    return durable("sq", n)

def mid(n):
    a = durable(leaf, n)
    b = durable(leaf, n + 1)
    return a + b

def main(n):
    return durable(mid, n) * 10
`)
			ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
			defer cancel()
			const runs = 8
			ids := make([]string, runs)
			for i := range ids {
				id, err := f.eng.Dispatch(ctx, script, []any{i})
				if err != nil {
					t.Fatal(err)
				}
				ids[i] = id
			}
			for i, id := range ids {
				res, err := f.eng.WaitFor(ctx, id)
				if err != nil {
					t.Fatalf("%s: %v", id, err)
				}
				var got int
				if err := json.Unmarshal(res.Value, &got); err != nil || got != 10*(i*i+(i+1)*(i+1)) {
					t.Fatalf("%s returned %s, want %d", id, res.Value, 10*(i*i+(i+1)*(i+1)))
				}
			}
			if reads != nil {
				if n := reads.n.Load(); n != 0 {
					t.Errorf("the workers read %d histories, want none: every parent's step was taken with its child's end", n)
				}
			}
			for _, id := range ids {
				for _, ex := range []struct {
					id       string
					children int
				}{{id, 1}, {id + "/1", 2}} {
					h, err := f.eng.History(ctx, ex.id)
					if err != nil {
						t.Fatal(err)
					}
					done := map[int]int{}
					for _, ev := range h {
						if ev.Kind == backend.EventChildCompleted {
							done[ev.Seq]++
						}
					}
					if len(done) != ex.children {
						t.Errorf("%s: %d children completed, want %d (history %+v)", ex.id, len(done), ex.children, h)
					}
					for seq, c := range done {
						if c != 1 {
							t.Errorf("%s: child at seq %d completed %d times", ex.id, seq, c)
						}
					}
					rep, err := f.eng.Replay(ctx, ex.id, "")
					if err != nil || !rep.Compatible() {
						t.Errorf("%s: replay = %+v, %v; want compatible", ex.id, rep, err)
					}
				}
			}
		})
	}
}

// activityClaims counts the activity tasks the engine's claim loop claims
// (backend.ClaimTasks), as against those a commit hands it.
type activityClaims struct {
	*postgres.Backend
	n atomic.Int64
}

func (c *activityClaims) ClaimTasks(ctx context.Context, req backend.ClaimRequest) ([]backend.Task, error) {
	tasks, err := c.Backend.ClaimTasks(ctx, req)
	for _, t := range tasks {
		if t.Kind == backend.TaskActivity {
			c.n.Add(1)
		}
	}
	return tasks, err
}

// A tree dispatched here whose leaf gathers several activities creates them claimed for
// this worker, one per free slot, and runs each in its slot: none goes pending for the
// claim loop, and the results are right (an activity claimed but not run would wait
// for its lease to expire, then be claimed by the loop).
func TestGatherClaimedByItsCreation(t *testing.T) {
	t.Parallel()
	var tb testBackend // PostgreSQL's: the claims counted are its ClaimTasks
	for _, b := range testBackends(t) {
		if b.open != nil {
			tb = b
		}
	}
	if tb.open == nil {
		return // testBackends said why (and fails in CI without PostgreSQL)
	}
	claims := &activityClaims{Backend: tb.open(t).(*postgres.Backend)}
	tb.open = func(t *testing.T) backend.Backend { return claims }
	f := newFixtureOn(t, tb, 4096, func(e *Engine) {
		_ = e.Register("sq", func(ctx context.Context, n int) (int, error) { return n * n, nil })
	})
	script := f.script(t, `
def leaf(n):
    total = 0
    for r in gather([start("sq", i) for i in range(n)]):
        total += r
    return total

def main(n):
    return durable(leaf, n)
`)
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	for run := range 3 {
		// Three activities: with the slots of the last run's, which may not be given
		// back yet, within the fixture's eight.
		id, err := f.eng.Dispatch(ctx, script, []any{3})
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.eng.WaitFor(ctx, id)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if string(res.Value) != "5" {
			t.Fatalf("run %d returned %s, want 5", run, res.Value)
		}
	}
	if n := claims.n.Load(); n != 0 {
		t.Errorf("the claim loop claimed %d activity tasks, want none: the dispatch's commit claims the gather's three", n)
	}
}
