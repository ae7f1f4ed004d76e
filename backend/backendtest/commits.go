package backendtest

import (
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// commitTests check the optional backend.CommitCounter extension; each is skipped when
// the backend does not implement it.
var commitTests = []test{
	{"GrowsWithWrites", testCommitsGrow},
}

// testCommitsGrow: a state change is counted, within the few seconds a store's
// statistics may lag, and the count never goes down.
func testCommitsGrow(t *testing.T, e *env) {
	cc := optional[backend.CommitCounter](e)
	before, err := cc.Commits(e.ctx)
	if err != nil {
		t.Fatalf("Commits: unexpected error %v", err)
	}
	if before < 0 {
		t.Fatalf("Commits = %d, want a count (>= 0)", before)
	}
	e.create("commits-1")
	e.create("commits-2")
	deadline := time.Now().Add(15 * time.Second)
	for {
		n, err := cc.Commits(e.ctx)
		if err != nil {
			t.Fatalf("Commits: unexpected error %v", err)
		}
		if n < before {
			t.Fatalf("Commits went down from %d to %d", before, n)
		}
		if n >= before+2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Commits = %d after two CreateExecution calls, want at least %d", n, before+2)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
