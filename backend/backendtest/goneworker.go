package backendtest

import (
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// testRemovedWorkerIsReclaimed: a worker known to be gone (its process no longer
// exists) is forgotten with RemoveWorker; ReclaimTasks then reclaims its tasks at once,
// however fresh its last heartbeat and however long its lease, and leaves the others'.
func testRemovedWorkerIsReclaimed(t *testing.T, e *env) {
	r := required[backend.Routing](e)
	e.create("x")
	e.create("y")
	for _, w := range []string{"gone", "alive"} {
		if err := r.RecordWorker(e.ctx, backend.WorkerInfo{ID: w, Host: "h", PID: 1}); err != nil {
			t.Fatalf("RecordWorker(%s): %v", w, err)
		}
	}
	held := e.claim(backend.ClaimRequest{WorkerID: "gone", Limit: 1, Lease: 24 * time.Hour})
	kept := e.claim(backend.ClaimRequest{WorkerID: "alive", Limit: 1, Lease: 24 * time.Hour})
	if len(held) != 1 || len(kept) != 1 {
		t.Fatalf("claims: gone got %s, alive got %s, want one task each", describe(held), describe(kept))
	}
	if err := r.RemoveWorker(e.ctx, "gone"); err != nil {
		t.Fatalf("RemoveWorker: %v", err)
	}
	if n, err := e.b.ReclaimTasks(e.ctx, time.Hour); err != nil || n != 1 {
		t.Fatalf("ReclaimTasks after removing the gone worker: (%d, %v), want (1, nil)", n, err)
	}
	again := e.claim(backend.ClaimRequest{WorkerID: "alive", Limit: 5})
	if len(again) != 1 || again[0].ID != held[0].ID {
		t.Fatalf("after the reclaim: claimed %s, want the gone worker's task %d", describe(again), held[0].ID)
	}
}
