package backendtest

import (
	"sync"
	"testing"

	"github.com/stent-go/stent/backend"
)

// readyReporterTests check the optional backend.ReadyReporter extension; each is
// skipped when the backend does not implement it.
var readyReporterTests = []test{
	{"RequeuedWorkflowTaskReported", testReadyRequeued},
}

// A result that arrives while the workflow task is held flags it to run again; the
// holder's commit puts it back in the queue, and that is reported after the commit.
func testReadyRequeued(t *testing.T, e *env) {
	rr := optional[backend.ReadyReporter](e)
	var (
		mu     sync.Mutex
		queues []string
	)
	rr.OnTaskReady(func(q string) {
		mu.Lock()
		queues = append(queues, q)
		mu.Unlock()
	})
	e.create("x")
	v := e.scheduleActivities("x", 0, 1, "a", "b")
	acts := e.claim(backend.ClaimRequest{WorkerID: "w1", Kinds: []backend.TaskKind{backend.TaskActivity}, Limit: 2})
	if len(acts) != 2 {
		t.Fatalf("claimed %s, want both activities", describe(acts))
	}
	if err := e.b.CompleteActivityTask(e.ctx, activityDone(acts[0])); err != nil {
		t.Fatal(err)
	}
	wf := e.claimOne(backend.TaskWorkflow, "x")
	if err := e.b.CompleteActivityTask(e.ctx, activityDone(acts[1])); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(queues) != 0 {
		t.Errorf("reported %v before any task was put back", queues)
	}
	mu.Unlock()
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "x", ExpectedVersion: v})
	mu.Lock()
	got := append([]string(nil), queues...)
	mu.Unlock()
	if len(got) != 1 || got[0] != backend.DefaultQueue {
		t.Errorf("reported %v after the holder's commit, want [%s]", got, backend.DefaultQueue)
	}
	e.claimOne(backend.TaskWorkflow, "x")
}
