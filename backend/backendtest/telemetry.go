package backendtest

import (
	"reflect"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

var telemetryTests = []test{
	{"CountPendingTasksByKindAndQueue", testCountPendingTasks},
	{"BundleKeepsTraceContext", testBundleTrace},
}

func testCountPendingTasks(t *testing.T, e *env) {
	counter := optional[backend.TaskCounter](e)
	want := func(what string, want ...backend.TaskCount) {
		t.Helper()
		got, err := counter.CountPendingTasks(e.ctx)
		if err != nil {
			t.Fatalf("CountPendingTasks %s: %v", what, err)
		}
		if len(got) == 0 && len(want) == 0 {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("CountPendingTasks %s = %+v, want %+v", what, got, want)
		}
	}
	want("of an empty store")
	e.create("a")
	// b starts later: its task is pending (counted) but not claimable yet.
	e.create("b", func(ne *backend.NewExecution) { ne.Queue, ne.StartAt = "q2", Epoch.Add(time.Hour) })
	want("after two dispatches",
		backend.TaskCount{Kind: backend.TaskWorkflow, Queue: backend.DefaultQueue, Count: 1},
		backend.TaskCount{Kind: backend.TaskWorkflow, Queue: "q2", Count: 1})
	e.scheduleActivities("a", 0, 1, "x", "y")
	want("after a's workflow task scheduled two activities",
		backend.TaskCount{Kind: backend.TaskActivity, Queue: backend.DefaultQueue, Count: 2},
		backend.TaskCount{Kind: backend.TaskWorkflow, Queue: "q2", Count: 1})
	if got := e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskActivity}, Limit: 1}); len(got) != 1 {
		t.Fatalf("claimed %d activity tasks, want 1", len(got))
	}
	want("after one activity was claimed (claimed tasks are not pending)",
		backend.TaskCount{Kind: backend.TaskActivity, Queue: backend.DefaultQueue, Count: 1},
		backend.TaskCount{Kind: backend.TaskWorkflow, Queue: "q2", Count: 1})
}

func testBundleTrace(t *testing.T, e *env) {
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	ne := e.create("x", func(ne *backend.NewExecution) {
		ne.Bundle.Trace, ne.Bundle.TraceParent = tp, "00f067aa0ba902b7"
	})
	if got := e.get("x").Bundle; got.Trace != tp || got.TraceParent != "00f067aa0ba902b7" || got.Main != ne.Bundle.Main {
		t.Fatalf("bundle read back = %+v, want the trace context stored at creation (%+v)", got, ne.Bundle)
	}
}
