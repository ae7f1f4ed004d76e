package backendtest

import (
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// strayTests check the optional backend.StrayTasks extension; each is skipped when the
// backend does not implement it.
var strayTests = []test{
	{"ReleasesUnheldTasks", testReleaseStrays},
}

// testReleaseStrays: of the tasks leased to w1, the one it names as held, the one
// claimed after leaseBefore and w2's stay claimed; the stray one becomes pending with
// its attempt unchanged and is claimed again at once, under a new fence.
func testReleaseStrays(t *testing.T, e *env) {
	st := optional[backend.StrayTasks](e)
	claim := func(worker, id string) backend.Task {
		e.create(id)
		return e.claimOneBy(worker, backend.TaskWorkflow, id)
	}
	held := claim("w1", "held")
	stray := claim("w1", "stray")
	claim("w2", "other")
	e.clock.Advance(10 * time.Second)
	cut := e.clock.Now().Add(lease) // a claim made from now on is not a stray yet
	e.clock.Advance(time.Second)
	claim("w1", "late")

	// w1 names held under another fence than the store's (a failover lost the commit
	// that moved it on): that one is not w1's, as far as the store goes.
	if n, err := st.ReleaseStrayTasks(e.ctx, "w1", []backend.TaskRef{held.Ref(), {ID: stray.ID, Fence: stray.Fence + 1}}, cut); err != nil || n != 1 {
		t.Fatalf("ReleaseStrayTasks naming the stray task under another fence: (%d, %v), want (1, nil)", n, err)
	}
	again := e.claimOneBy("w3", backend.TaskWorkflow, "stray")
	if again.ID != stray.ID || again.Fence <= stray.Fence || again.Attempt != stray.Attempt {
		t.Errorf("claimed again %+v, want task %d with attempt %d under a fence above %d", again, stray.ID, stray.Attempt, stray.Fence)
	}
	if ex := e.get("stray"); ex.Crashes != 0 {
		t.Errorf("Crashes = %d after a release of a task never started, want 0", ex.Crashes)
	}
	e.claimNone("after releasing the stray task")
	if n, err := st.ReleaseStrayTasks(e.ctx, "w1", nil, cut); err != nil || n != 1 {
		// held is no longer named: it is released too; late stays.
		t.Fatalf("ReleaseStrayTasks without held: (%d, %v), want (1, nil)", n, err)
	}
	if n, err := st.ReleaseStrayTasks(e.ctx, "w-none", nil, cut.Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("ReleaseStrayTasks of a worker holding nothing: (%d, %v), want (0, nil)", n, err)
	}
}
