package backendtest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

var batchTests = []test{
	{"RecordAndResume", testBatches},
}

// testBatches: a batch keeps its snapshot of IDs in order, its items' outcomes and the
// stamp of an acting item; the unfinished batch of an action and filter is found until
// it is finished; counts follow the outcomes.
func testBatches(t *testing.T, e *env) {
	bt := required[backend.Batcher](e)
	if got, err := bt.UnfinishedBatch(e.ctx, "retry", "status=failed"); got != nil || err != nil {
		t.Fatalf("UnfinishedBatch before any: %+v, %v; want nil", got, err)
	}
	if _, err := bt.GetBatch(e.ctx, 12345); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("GetBatch(unknown) = %v, want ErrNotFound", err)
	}
	r, err := bt.CreateBatch(e.ctx, "retry", "status=failed", []string{"c", "a", "b"})
	if err != nil {
		t.Fatalf("CreateBatch: %v", err)
	}
	if r.Action != "retry" || r.Filter != "status=failed" || !r.StartedAt.Equal(e.clock.Now()) || r.FinishedAt != nil ||
		r.Total != 3 || r.Pending != 3 {
		t.Fatalf("created batch %+v", r)
	}
	other, err := bt.CreateBatch(e.ctx, "cancel", "status=failed", []string{"a"})
	if err != nil || other.ID == r.ID {
		t.Fatalf("second batch: %+v, %v", other, err)
	}
	empty, err := bt.CreateBatch(e.ctx, "terminate", "", nil)
	if err != nil || empty.Total != 0 {
		t.Fatalf("empty batch: %+v, %v", empty, err)
	}
	if got, err := bt.UnfinishedBatch(e.ctx, "retry", "status=failed"); err != nil || got == nil || got.ID != r.ID {
		t.Fatalf("UnfinishedBatch: %+v, %v; want batch %d", got, err, r.ID)
	}
	if got, _ := bt.UnfinishedBatch(e.ctx, "retry", "status=failed "); got != nil {
		t.Fatalf("UnfinishedBatch of another filter: %+v, want nil", got)
	}
	items, err := bt.PendingBatchItems(e.ctx, r.ID)
	want := []backend.BatchItem{{Seq: 1, ExecutionID: "c"}, {Seq: 2, ExecutionID: "a"}, {Seq: 3, ExecutionID: "b"}}
	if err != nil || !reflect.DeepEqual(items, want) {
		t.Fatalf("PendingBatchItems: %+v, %v; want %+v", items, err, want)
	}
	mark := func(items ...backend.BatchItem) {
		t.Helper()
		if err := bt.MarkBatchItems(e.ctx, r.ID, items); err != nil {
			t.Fatalf("MarkBatchItems(%+v): %v", items, err)
		}
	}
	mark()
	mark(backend.BatchItem{Seq: 1, ExecutionID: "c", Outcome: backend.BatchDone},
		backend.BatchItem{Seq: 2, ExecutionID: "a", Outcome: backend.BatchActing, Version: 7, UpdatedNs: 1234567890123456789})
	items, err = bt.PendingBatchItems(e.ctx, r.ID)
	want = []backend.BatchItem{{Seq: 2, ExecutionID: "a", Outcome: backend.BatchActing, Version: 7, UpdatedNs: 1234567890123456789},
		{Seq: 3, ExecutionID: "b"}}
	if err != nil || !reflect.DeepEqual(items, want) {
		t.Fatalf("PendingBatchItems after marks: %+v, %v; want %+v", items, err, want)
	}
	mark(backend.BatchItem{Seq: 2, ExecutionID: "a", Outcome: backend.BatchSkipped})
	mark(backend.BatchItem{Seq: 3, ExecutionID: "b", Outcome: backend.BatchFailed})
	e.clock.Advance(time.Second)
	if err := bt.FinishBatch(e.ctx, r.ID); err != nil {
		t.Fatalf("FinishBatch: %v", err)
	}
	got, err := bt.GetBatch(e.ctx, r.ID)
	if err != nil || got.FinishedAt == nil || !got.FinishedAt.Equal(e.clock.Now()) ||
		got.Total != 3 || got.Done != 1 || got.Skipped != 1 || got.Failed != 1 || got.Pending != 0 {
		t.Fatalf("finished batch: %+v, %v", got, err)
	}
	if got, err := bt.UnfinishedBatch(e.ctx, "retry", "status=failed"); got != nil || err != nil {
		t.Fatalf("UnfinishedBatch after finishing: %+v, %v; want nil", got, err)
	}
	if items, err := bt.PendingBatchItems(e.ctx, r.ID); err != nil || len(items) != 0 {
		t.Fatalf("PendingBatchItems of a finished batch: %+v, %v", items, err)
	}
	if got, _ := bt.GetBatch(e.ctx, other.ID); got.Total != 1 || got.Pending != 1 {
		t.Fatalf("the other batch: %+v", got)
	}
}
