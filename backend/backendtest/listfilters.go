package backendtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

var listFilterTests = []test{
	{"ScriptQueuePrefix", testListScriptQueuePrefix},
	{"TimeRange", testListTimeRange},
	{"Scheduled", testListScheduled},
	{"CursorPaging", testListCursorPaging},
	{"SameMillisecondOrder", testListSameMillisecond},
	{"BadCursor", testListBadCursor},
	{"Counts", testCountExecutions},
}

func withScript(path string) func(*backend.NewExecution) {
	return func(n *backend.NewExecution) {
		n.Bundle = backend.Bundle{Main: path, Files: map[string]string{path: mainHash}}
	}
}

func withQueue(q string) func(*backend.NewExecution) {
	return func(n *backend.NewExecution) { n.Queue = q }
}

func testListScriptQueuePrefix(t *testing.T, e *env) {
	e.create("order-1", withScript("flows/checkout.star"))
	e.clock.Advance(time.Millisecond)
	e.create("order-2", withScript("flows/checkout.star"), withQueue("billing"))
	e.clock.Advance(time.Millisecond)
	e.create("greet-1", withScript("greeting.star"), withQueue("billing"))
	e.clock.Advance(time.Millisecond)
	e.create("order%_x", withScript("greeting.star"))

	cases := []struct {
		f    backend.ListFilter
		want string
	}{
		{backend.ListFilter{Script: "flows/checkout.star"}, "[order-2 order-1]"},
		{backend.ListFilter{Script: "checkout.star"}, "[]"},
		{backend.ListFilter{Queue: "billing"}, "[greet-1 order-2]"},
		{backend.ListFilter{Queue: "billing", Script: "greeting.star"}, "[greet-1]"},
		{backend.ListFilter{IDPrefix: "order-"}, "[order-2 order-1]"},
		{backend.ListFilter{IDPrefix: "ORDER-"}, "[]"},         // case-sensitive
		{backend.ListFilter{IDPrefix: "order%"}, "[order%_x]"}, // no wildcards
		{backend.ListFilter{IDPrefix: "order%_x-more"}, "[]"},
	}
	for _, c := range cases {
		if got := fmt.Sprint(e.list(c.f)); got != c.want {
			t.Errorf("ListExecutions(%+v) = %s, want %s", c.f, got, c.want)
		}
	}
}

func testListTimeRange(t *testing.T, e *env) {
	t0 := e.clock.Now()
	for _, id := range []string{"a", "b", "c", "d"} {
		e.create(id)
		e.clock.Advance(time.Second)
	}
	cases := []struct {
		f    backend.ListFilter
		want string
	}{
		{backend.ListFilter{Since: t0.Add(time.Second)}, "[d c b]"},
		{backend.ListFilter{Until: t0.Add(2 * time.Second)}, "[b a]"},
		{backend.ListFilter{Since: t0.Add(time.Second), Until: t0.Add(3 * time.Second)}, "[c b]"},
		{backend.ListFilter{Since: t0.Add(time.Hour)}, "[]"},
	}
	for _, c := range cases {
		if got := fmt.Sprint(e.list(c.f)); got != c.want {
			t.Errorf("ListExecutions(Since %v, Until %v) = %s, want %s", c.f.Since.Sub(t0), c.f.Until.Sub(t0), got, c.want)
		}
	}
}

func testListScheduled(t *testing.T, e *env) {
	e.create("now")
	e.clock.Advance(time.Millisecond)
	e.create("later", func(n *backend.NewExecution) { n.StartAt = e.clock.Now().Add(time.Hour) })
	if got := e.get("later"); got.Status != backend.StatusRunning || got.StatusAt(e.clock.Now()) != backend.StatusScheduled {
		t.Fatalf("delayed execution: stored %s, shown %s; want running stored, scheduled shown", got.Status, got.StatusAt(e.clock.Now()))
	}
	if got := fmt.Sprint(e.list(backend.ListFilter{Status: backend.StatusScheduled})); got != "[later]" {
		t.Errorf("ListExecutions(scheduled) = %s, want [later]", got)
	}
	if got := fmt.Sprint(e.list(backend.ListFilter{Status: backend.StatusRunning})); got != "[now]" {
		t.Errorf("ListExecutions(running) = %s, want [now]", got)
	}
	e.clock.Advance(time.Hour)
	if got := fmt.Sprint(e.list(backend.ListFilter{Status: backend.StatusRunning})); got != "[later now]" {
		t.Errorf("an hour later, ListExecutions(running) = %s, want [later now]", got)
	}
	if got := e.get("later").StatusAt(e.clock.Now()); got != backend.StatusRunning {
		t.Errorf("an hour later, the delayed execution shows %s, want running", got)
	}
}

func testListCursorPaging(t *testing.T, e *env) {
	var want []string
	for i := 0; i < 7; i++ {
		id := fmt.Sprintf("e%d", i)
		e.create(id)
		want = append([]string{id}, want...)
		if i%2 == 0 { // some share a millisecond
			e.clock.Advance(time.Millisecond)
		}
	}
	e.create("child-of-e0", func(n *backend.NewExecution) { n.ParentID = "e0" })
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatalf("paging does not end: %v so far", got)
		}
		xs, err := e.b.ListExecutions(e.ctx, backend.ListFilter{RootOnly: true, Limit: 3, After: after})
		if err != nil {
			t.Fatalf("ListExecutions(After %q): %v", after, err)
		}
		got = append(got, ids(xs)...)
		if len(xs) < 3 {
			break
		}
		after = backend.ListCursor(&xs[len(xs)-1])
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("pages of 3 = %v, want %v (each once, newest first)", got, want)
	}
}

func testListSameMillisecond(t *testing.T, e *env) {
	for _, id := range []string{"b", "c", "a"} {
		e.create(id)
	}
	if got := fmt.Sprint(e.list(backend.ListFilter{})); got != "[c b a]" {
		t.Fatalf("executions created in one millisecond listed as %s, want [c b a] (ID descending)", got)
	}
}

func testListBadCursor(t *testing.T, e *env) {
	e.create("a")
	_, err := e.b.ListExecutions(e.ctx, backend.ListFilter{After: "not a cursor!"})
	if !errors.Is(err, backend.ErrBadCursor) {
		t.Fatalf("ListExecutions(After garbage) error = %v, want ErrBadCursor", err)
	}
}

func testCountExecutions(t *testing.T, e *env) {
	e.create("r1")
	e.create("r2", withScript("other.star"))
	e.create("s1", func(n *backend.NewExecution) { n.StartAt = e.clock.Now().Add(time.Minute) })
	e.create("done")
	wf := e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskWorkflow}, Limit: 10})
	for _, tk := range wf {
		if tk.ExecutionID == "done" {
			e.completeWF(backend.WorkflowTaskResult{Task: tk.Ref(), ExecutionID: "done",
				Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`1`)}})
		}
	}
	counts, err := e.b.CountExecutions(e.ctx, backend.ListFilter{Status: backend.StatusFailed, Limit: 1})
	if err != nil {
		t.Fatalf("CountExecutions: %v", err)
	}
	want := map[backend.Status]int{backend.StatusRunning: 2, backend.StatusScheduled: 1, backend.StatusCompleted: 1}
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("CountExecutions (Status and Limit ignored) = %v, want %v", counts, want)
	}
	counts, err = e.b.CountExecutions(e.ctx, backend.ListFilter{Script: "other.star"})
	if err != nil || !reflect.DeepEqual(counts, map[backend.Status]int{backend.StatusRunning: 1}) {
		t.Errorf("CountExecutions(Script other.star) = (%v, %v), want map[running:1]", counts, err)
	}
	// Bounded: each status counted up to CountAtMost, the filters still applied.
	for _, tc := range []struct {
		f      backend.ListFilter
		want   map[backend.Status]int
		capped []backend.Status
	}{
		{backend.ListFilter{CountAtMost: 1}, map[backend.Status]int{backend.StatusRunning: 1, backend.StatusScheduled: 1, backend.StatusCompleted: 1},
			[]backend.Status{backend.StatusScheduled, backend.StatusRunning, backend.StatusCompleted}},
		{backend.ListFilter{CountAtMost: 2}, map[backend.Status]int{backend.StatusRunning: 2, backend.StatusScheduled: 1, backend.StatusCompleted: 1},
			[]backend.Status{backend.StatusRunning}},
		{backend.ListFilter{CountAtMost: 3, Status: backend.StatusFailed}, map[backend.Status]int{backend.StatusRunning: 2, backend.StatusScheduled: 1, backend.StatusCompleted: 1}, nil},
		{backend.ListFilter{CountAtMost: 5, Script: "other.star"}, map[backend.Status]int{backend.StatusRunning: 1}, nil},
	} {
		counts, err := e.b.CountExecutions(e.ctx, tc.f)
		if err != nil || !reflect.DeepEqual(counts, tc.want) {
			t.Errorf("CountExecutions(%+v) = (%v, %v), want %v", tc.f, counts, err, tc.want)
		}
		var capped []backend.Status
		for _, st := range backend.Statuses {
			if tc.f.CountCapped(counts[st]) {
				capped = append(capped, st)
			}
		}
		if !reflect.DeepEqual(capped, tc.capped) {
			t.Errorf("CountExecutions(%+v): capped %v, want %v", tc.f, capped, tc.capped)
		}
	}
}
