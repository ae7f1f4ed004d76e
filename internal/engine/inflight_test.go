package engine

import (
	"context"
	"testing"

	"github.com/stent-go/stent/backend"
)

// A sequential step reuses the finished activity's task row for the next activity,
// under a new fence. A lease renewal that started before the step reports the old
// fence lost; that must not cancel the next activity, nor may the finished attempt's
// untrack forget it.
func TestReusedTaskRowKeepsItsNextAttempt(t *testing.T) {
	w := &worker{inflight: map[int64]*inflight{}}
	first := backend.Task{ID: 7, Fence: 2, ExecutionID: "x"}
	next := backend.Task{ID: 7, Fence: 3, ExecutionID: "x"}
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	w.track(first, cancel1)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	w.untrack(first.Ref())
	w.track(next, cancel2)
	w.untrack(first.Ref()) // a late untrack of the finished attempt
	w.leasesLost([]backend.TaskRef{first.Ref()})
	if ctx2.Err() != nil {
		t.Fatal("the next activity was cancelled by the loss of the previous fence")
	}
	if _, ok := w.inflight[7]; !ok {
		t.Fatal("the next activity is no longer tracked (its lease would not be renewed)")
	}
	w.leasesLost([]backend.TaskRef{next.Ref()})
	if ctx2.Err() == nil {
		t.Fatal("losing the current fence did not cancel the attempt")
	}
	_ = ctx1
}
