package backendtest

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

var executionTests = []test{
	{"CreateAndGet", testCreateAndGet},
	{"CreateWritesStartedEventAndWorkflowTask", testCreateStartedAndTask},
	{"CreateIsIdempotent", testCreateIdempotent},
	{"CreateWithFutureStartAt", testCreateFutureStart},
	{"CreateOnQueue", testCreateOnQueue},
	{"GetNotFound", testGetNotFound},
	{"MigrateIsIdempotent", testMigrateIdempotent},
}

func testCreateAndGet(t *testing.T, e *env) {
	deadline := Epoch.Add(time.Hour)
	ne := e.create("exec-1", func(n *backend.NewExecution) { n.Deadline = &deadline })
	x := e.get("exec-1")
	if x.ID != "exec-1" {
		t.Errorf("ID = %q, want exec-1", x.ID)
	}
	if x.ParentID != "" || x.ParentSeq != 0 {
		t.Errorf("ParentID/ParentSeq = %q/%d, want empty/0 for a root execution", x.ParentID, x.ParentSeq)
	}
	if !reflect.DeepEqual(x.Bundle, ne.Bundle) {
		t.Errorf("Bundle = %+v, want %+v", x.Bundle, ne.Bundle)
	}
	if x.Entry != "main" {
		t.Errorf("Entry = %q, want main", x.Entry)
	}
	wantJSON(t, "Args", x.Args, ne.Args)
	if x.Queue != backend.DefaultQueue {
		t.Errorf("Queue = %q, want %q when none is given", x.Queue, backend.DefaultQueue)
	}
	if x.Status != backend.StatusRunning {
		t.Errorf("Status = %q, want running", x.Status)
	}
	if len(x.Result) != 0 || x.Error != nil {
		t.Errorf("Result/Error = %s/%v, want none for a running execution", x.Result, x.Error)
	}
	if x.Version != 0 {
		t.Errorf("Version = %d, want 0", x.Version)
	}
	wantTime(t, "CreatedAt", x.CreatedAt, Epoch)
	wantTime(t, "UpdatedAt", x.UpdatedAt, Epoch)
	wantTime(t, "StartAt (zero StartAt means now)", x.StartAt, Epoch)
	if x.Deadline == nil {
		t.Errorf("Deadline = nil, want %v", deadline)
	} else {
		wantTime(t, "Deadline", *x.Deadline, deadline)
	}
	if x.CompletedAt != nil {
		t.Errorf("CompletedAt = %v, want nil for a running execution", *x.CompletedAt)
	}
}

func testCreateStartedAndTask(t *testing.T, e *env) {
	ne := e.create("exec-1")
	h := e.wantKinds("exec-1", backend.EventStarted)
	if h[0].Seq != 0 {
		t.Errorf("started event Seq = %d, want 0", h[0].Seq)
	}
	wantJSON(t, "started event Data (the args)", h[0].Data, ne.Args)
	wantTime(t, "started event At", h[0].At, Epoch)
	if h[0].ID <= 0 {
		t.Errorf("started event ID = %d, want > 0", h[0].ID)
	}
	tk := e.claimOne(backend.TaskWorkflow, "exec-1")
	if tk.Seq != 0 {
		t.Errorf("workflow task Seq = %d, want 0", tk.Seq)
	}
	if tk.Queue != backend.DefaultQueue {
		t.Errorf("workflow task Queue = %q, want %q", tk.Queue, backend.DefaultQueue)
	}
	wantTime(t, "workflow task RunAt", tk.RunAt, Epoch)
}

func testCreateIdempotent(t *testing.T, e *env) {
	e.create("exec-1")
	again := newExec("exec-1")
	again.Args = json.RawMessage(`["other"]`)
	again.Queue = "elsewhere"
	again.Sources = map[string][]byte{"2222": []byte("other source")}
	e.clock.Advance(time.Second)
	created, err := e.b.CreateExecution(e.ctx, again)
	if err != nil {
		t.Fatalf("second CreateExecution with the same ID: error %v, want nil", err)
	}
	if created {
		t.Fatalf("second CreateExecution with the same ID: created = true, want false")
	}
	x := e.get("exec-1")
	wantJSON(t, "Args after a duplicate create", x.Args, newExec("").Args)
	if x.Queue != backend.DefaultQueue {
		t.Errorf("Queue after a duplicate create = %q, want %q (unchanged)", x.Queue, backend.DefaultQueue)
	}
	wantTime(t, "CreatedAt after a duplicate create", x.CreatedAt, Epoch)
	e.wantKinds("exec-1", backend.EventStarted)
	if _, err := e.b.GetScript(e.ctx, "2222"); err == nil {
		t.Errorf("GetScript of a source sent with a duplicate create: found, want nothing written")
	}
	e.claimOne(backend.TaskWorkflow, "exec-1")
	e.claimNone("after claiming the only workflow task of a twice-created execution")
}

func testCreateFutureStart(t *testing.T, e *env) {
	start := Epoch.Add(30 * time.Minute)
	e.create("delayed", func(n *backend.NewExecution) { n.StartAt = start })
	wantTime(t, "StartAt", e.get("delayed").StartAt, start)
	e.claimNone("before StartAt")
	e.clock.Advance(30*time.Minute - time.Millisecond)
	e.claimNone("1ms before StartAt")
	e.clock.Advance(time.Millisecond)
	tk := e.claimOne(backend.TaskWorkflow, "delayed")
	wantTime(t, "RunAt of the first workflow task", tk.RunAt, start)
}

func testCreateOnQueue(t *testing.T, e *env) {
	e.create("q", func(n *backend.NewExecution) { n.Queue = "billing" })
	if q := e.get("q").Queue; q != "billing" {
		t.Errorf("Queue = %q, want billing", q)
	}
	tk := e.claimOne(backend.TaskWorkflow, "q")
	if tk.Queue != "billing" {
		t.Errorf("workflow task Queue = %q, want billing", tk.Queue)
	}
}

func testGetNotFound(t *testing.T, e *env) {
	x, err := e.b.GetExecution(e.ctx, "missing")
	wantErrIs(t, "GetExecution of an unknown ID", err, backend.ErrNotFound)
	if x != nil {
		t.Errorf("GetExecution of an unknown ID returned %+v, want nil", x)
	}
}

func testMigrateIdempotent(t *testing.T, e *env) {
	e.create("before")
	for i := 0; i < 2; i++ {
		if err := e.b.Migrate(e.ctx); err != nil {
			t.Fatalf("Migrate #%d on a migrated backend: %v", i+1, err)
		}
	}
	e.get("before")
	e.create("after")
}
