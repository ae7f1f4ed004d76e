package engine

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/interpreter"
)

// A run read before the store last found itself on another server (a failover that
// may have lost commits) is neither handed out nor kept, and its commits carry the
// mark that lets the store refuse them.
func TestRunCacheDropsRunsReadBeforeALoss(t *testing.T) {
	var losses atomic.Uint64
	c := newRunCache(8, nil)
	c.losses = losses.Load

	a := &liveRun{id: "a", run: &interpreter.Run{}, lossMark: c.lossMark()}
	c.put(a)
	if c.take("a") != a {
		t.Fatal("a run read since the last loss was not handed out")
	}
	c.put(a)
	losses.Add(1)
	if c.take("a") != nil {
		t.Fatal("a run read before the last loss was handed out")
	}

	b := &liveRun{id: "b", run: &interpreter.Run{}, lossMark: c.lossMark()}
	c.put(b)
	out := c.take("b")
	if m, ok := backend.LossMark(c.markCommit(context.Background(), out)); !ok || m != 1 {
		t.Fatalf("the commit of a run read at loss count 1 is marked %d, %v", m, ok)
	}
	losses.Add(1) // while the run is out, committing
	c.put(out)
	if c.holds("b") {
		t.Fatal("a run put back after a loss it was read before is kept")
	}

	plain := newRunCache(8, nil) // a store that cannot lose commits
	if _, ok := backend.LossMark(plain.markCommit(context.Background(), b)); ok {
		t.Fatal("a commit to a store without a loss count is marked")
	}
}
