package backendtest

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

var tagTests = []test{
	{"DispatchAndSetTags", testTags},
	{"TagsOf", testTagsOf},
}

// testTagsOf: the tags of many executions in one read, only those that have tags, an
// unknown ID ignored.
func testTagsOf(t *testing.T, e *env) {
	tl := required[backend.TagLister](e)
	e.create("a", func(n *backend.NewExecution) { n.Tags = map[string]string{"customer": "42", "env": "prod"} })
	e.create("b", func(n *backend.NewExecution) { n.Tags = map[string]string{"customer": "7"} })
	e.create("c")
	e.create("d", func(n *backend.NewExecution) { n.Tags = map[string]string{"skip": "me"} })
	got, err := tl.TagsOf(e.ctx, []string{"a", "b", "c", "nope"})
	want := map[string]map[string]string{"a": {"customer": "42", "env": "prod"}, "b": {"customer": "7"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("TagsOf = %v, %v; want %v", got, err, want)
	}
	if got, err := tl.TagsOf(e.ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("TagsOf(none) = %v, %v", got, err)
	}
}

// testTags: tags given at creation and those of set_tags side_effect events (a later
// one replacing a value) are read back and listed by.
func testTags(t *testing.T, e *env) {
	tg := required[backend.Tagger](e)
	e.create("b", func(n *backend.NewExecution) { n.Tags = map[string]string{"customer": "7"} })
	wf := e.claimOne(backend.TaskWorkflow, "b")
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "b", Events: []backend.NewEvent{
		{Seq: 1, Kind: backend.EventSideEffect, Name: backend.TagsName, Data: json.RawMessage(`{"customer":"42","plan":"gold"}`)},
		{Seq: 2, Kind: backend.EventSideEffect, Name: backend.CustomStatusName, Data: json.RawMessage(`{"customer":"9"}`)},
	}})
	e.clock.Advance(time.Millisecond)
	e.create("a", func(n *backend.NewExecution) { n.Tags = map[string]string{"customer": "42", "env": "prod"} })
	e.create("c")
	for id, want := range map[string]map[string]string{
		"a": {"customer": "42", "env": "prod"},
		"b": {"customer": "42", "plan": "gold"},
		"c": {},
	} {
		got, err := tg.ExecutionTags(e.ctx, id)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("ExecutionTags(%s) = %v, %v; want %v", id, got, err, want)
		}
	}
	list := func(tags map[string]string) []string {
		xs, err := e.b.ListExecutions(e.ctx, backend.ListFilter{Tags: tags})
		if err != nil {
			t.Fatalf("ListExecutions(tags %v): %v", tags, err)
		}
		ids := []string{}
		for _, x := range xs {
			ids = append(ids, x.ID)
		}
		return ids
	}
	if got := list(map[string]string{"customer": "42"}); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatalf("listed by customer=42: %v, want a, b (newest first)", got)
	}
	if got := list(map[string]string{"customer": "42", "env": "prod"}); !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("listed by customer=42 and env=prod: %v, want a", got)
	}
	if got := list(map[string]string{"customer": "7"}); len(got) != 0 {
		t.Fatalf("listed by a replaced value: %v, want none", got)
	}
}
