package backendtest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

var listingTests = []test{
	{"NewestFirst", testListNewestFirst},
	{"Filters", testListFilters},
	{"DefaultLimit", testListDefaultLimit},
}

func ids(xs []backend.Execution) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.ID
	}
	return out
}

func (e *env) list(f backend.ListFilter) []string {
	e.t.Helper()
	xs, err := e.b.ListExecutions(e.ctx, f)
	if err != nil {
		e.t.Fatalf("ListExecutions(%+v): %v", f, err)
	}
	return ids(xs)
}

func testListNewestFirst(t *testing.T, e *env) {
	for _, id := range []string{"a", "b", "c"} {
		e.create(id)
		e.clock.Advance(time.Millisecond)
	}
	if got := fmt.Sprint(e.list(backend.ListFilter{})); got != "[c b a]" {
		t.Fatalf("ListExecutions = %s, want [c b a] (newest first)", got)
	}
	xs, err := e.b.ListExecutions(e.ctx, backend.ListFilter{Limit: 1})
	if err != nil || len(xs) != 1 || xs[0].ID != "c" {
		t.Fatalf("ListExecutions(Limit 1) = (%v, %v), want [c]", ids(xs), err)
	}
	if xs[0].Status != backend.StatusRunning || xs[0].Entry != "main" || len(xs[0].Args) == 0 {
		t.Fatalf("listed execution = %+v, want its fields filled", xs[0])
	}
}

func testListFilters(t *testing.T, e *env) {
	e.startChild("p", "k")
	e.claimOne(backend.TaskWorkflow, "k") // out of the way
	e.clock.Advance(time.Millisecond)
	e.create("done")
	wf := e.claimOne(backend.TaskWorkflow, "done")
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "done", ExpectedVersion: 0,
		Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`1`)}})
	e.clock.Advance(time.Millisecond)
	e.create("other")

	cases := []struct {
		f    backend.ListFilter
		want string
	}{
		{backend.ListFilter{}, "[other done k p]"},
		{backend.ListFilter{Status: backend.StatusCompleted}, "[done]"},
		{backend.ListFilter{Status: backend.StatusRunning}, "[other k p]"},
		{backend.ListFilter{Status: backend.StatusFailed}, "[]"},
		{backend.ListFilter{ParentID: "p"}, "[k]"},
		{backend.ListFilter{RootOnly: true}, "[other done p]"},
		{backend.ListFilter{RootOnly: true, Status: backend.StatusRunning, Limit: 1}, "[other]"},
	}
	for _, c := range cases {
		if got := fmt.Sprint(e.list(c.f)); got != c.want {
			t.Errorf("ListExecutions(%+v) = %s, want %s", c.f, got, c.want)
		}
	}
}

func testListDefaultLimit(t *testing.T, e *env) {
	for i := 0; i < 105; i++ {
		e.create(fmt.Sprintf("e%03d", i))
	}
	got := e.list(backend.ListFilter{})
	if len(got) != 100 {
		t.Fatalf("ListExecutions with Limit 0 returned %d executions, want 100", len(got))
	}
}
