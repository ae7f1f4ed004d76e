package backendtest

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// routingTests check activity routing (ClaimRequest.RouteActivities) and the optional
// backend.Routing extension: the workers' registry, pending tasks and
// schedule-to-start timeouts.
var routingTests = []test{
	{"ClaimOnlyRoutedActivities", testRouteClaim},
	{"RoutedWithQueueAndCaps", testRouteQueueCaps},
	{"WorkersRegistry", testWorkersRegistry},
	{"PendingTasks", testPendingTasks},
	{"RemovedWorkerIsReclaimed", testRemovedWorkerIsReclaimed},
	{"ScheduleToStartTimeout", testStartTimeout},
	{"ClaimedTasks", testClaimedTasks},
}

// testClaimedTasks: the claimed tasks, by lease owner, then ID; pending ones are not
// listed, and the limit holds.
func testClaimedTasks(t *testing.T, e *env) {
	ct := required[backend.ClaimedTasks](e)
	e.create("x")
	e.scheduleTasks("x", 0, act(1, "a", 0), act(2, "b", 0), act(3, "c", 0))
	e.claim(backend.ClaimRequest{WorkerID: "wz", RouteActivities: true, Activities: []string{"a"}})
	e.claim(backend.ClaimRequest{WorkerID: "wb", RouteActivities: true, Activities: []string{"b"}})
	got, err := ct.ClaimedTasks(e.ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	owners := []string{}
	for _, tk := range got {
		owners = append(owners, tk.LeaseOwner)
	}
	if seqs(got) != "[x/2 x/1]" || !reflect.DeepEqual(owners, []string{"wb", "wz"}) {
		t.Fatalf("claimed tasks = %s owned by %v, want [x/2 x/1] owned by [wb wz]", describe(got), owners)
	}
	if got, err = ct.ClaimedTasks(e.ctx, 1); err != nil || len(got) != 1 {
		t.Fatalf("claimed tasks with limit 1 = %s, %v; want one", describe(got), err)
	}
}

func (e *env) routing() backend.Routing { return required[backend.Routing](e) }

func testRouteClaim(t *testing.T, e *env) {
	e.create("x")
	e.scheduleTasks("x", 0, act(1, "a", 0), act(2, "b", 0), act(3, "c", 0))
	e.create("y")
	none := e.claim(backend.ClaimRequest{WorkerID: "none", RouteActivities: true})
	if len(none) != 1 || none[0].Kind != backend.TaskWorkflow {
		t.Fatalf("a routed claim with no activities took %s, want only y's workflow task", describe(none))
	}
	got := e.claim(backend.ClaimRequest{WorkerID: "wb", RouteActivities: true, Activities: []string{"b", "zzz"}})
	if seqs(got) != "[x/2]" {
		t.Fatalf("a claim routed to [b zzz] took %s, want [x/2]", describe(got))
	}
	got = e.claim(backend.ClaimRequest{WorkerID: "any", Kinds: activities()})
	if seqs(got) != "[x/1 x/3]" {
		t.Fatalf("an unrouted claim took %s, want the rest [x/1 x/3]", describe(got))
	}
}

func testRouteQueueCaps(t *testing.T, e *env) {
	e.create("x", func(n *backend.NewExecution) { n.Queue = "q1" })
	charge := act(2, "charge", 0)
	charge.Queue = "pay"
	e.scheduleTasks("x", 0, act(1, "a", 0), charge, act(3, "charge", 0))
	// One queue, routed.
	got := e.claim(backend.ClaimRequest{WorkerID: "p", Queues: []string{"pay"}, RouteActivities: true,
		Activities: []string{"a", "charge"}})
	if seqs(got) != "[x/2]" {
		t.Fatalf("claim on queue pay routed to [a charge] took %s, want [x/2]", describe(got))
	}
	// Caps and routing together: the cap on a allows one, charge is not served.
	got = e.claim(backend.ClaimRequest{WorkerID: "c", Queues: []string{"q1", "other"}, RouteActivities: true,
		Activities: []string{"a"}, MaxConcurrent: map[string]int{"a": 1, "charge": 5}})
	if seqs(got) != "[x/1]" {
		t.Fatalf("capped claim routed to [a] took %s, want [x/1]", describe(got))
	}
	got = e.claim(backend.ClaimRequest{WorkerID: "c2", RouteActivities: true, Activities: []string{"charge"},
		MaxConcurrent: map[string]int{"charge": 5}})
	if seqs(got) != "[x/3]" {
		t.Fatalf("capped claim routed to [charge] took %s, want [x/3]", describe(got))
	}
}

func testWorkersRegistry(t *testing.T, e *env) {
	r := e.routing()
	started := Epoch.Add(-time.Hour)
	a := backend.WorkerInfo{ID: "a", Host: "h1", PID: 42, Queues: []string{"q1", "q2"}, Activities: []string{"charge", "render"},
		Concurrency: 8, InFlight: 3, StartedAt: started}
	if err := r.RecordWorker(e.ctx, a); err != nil {
		t.Fatalf("RecordWorker: %v", err)
	}
	e.clock.Advance(5 * time.Second)
	if err := r.RecordWorker(e.ctx, backend.WorkerInfo{ID: "b", Host: "h2", PID: 7, Concurrency: 1}); err != nil {
		t.Fatalf("RecordWorker: %v", err)
	}
	ws, err := r.ListWorkers(e.ctx, Epoch)
	if err != nil {
		t.Fatalf("ListWorkers: %v", err)
	}
	if len(ws) != 2 {
		t.Fatalf("ListWorkers = %+v, want a and b", ws)
	}
	got := ws[0]
	wantTime(t, "a's HeartbeatAt", got.HeartbeatAt, Epoch)
	wantTime(t, "a's StartedAt", got.StartedAt, started)
	got.HeartbeatAt, got.StartedAt, a.StartedAt = time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("ListWorkers[0] = %+v, want %+v", got, a)
	}
	if b := ws[1]; b.ID != "b" || b.Queues != nil || b.Activities != nil || !b.ServesQueue("any") || b.HasActivity("charge") {
		t.Fatalf("ListWorkers[1] = %+v, want b serving every queue and no activity", b)
	}
	// since leaves a out; a heartbeat brings it back; RemoveWorker drops it.
	if ws, _ = r.ListWorkers(e.ctx, Epoch.Add(time.Second)); len(ws) != 1 || ws[0].ID != "b" {
		t.Fatalf("ListWorkers(since a's heartbeat) = %+v, want only b", ws)
	}
	e.heartbeat("a")
	if ws, _ = r.ListWorkers(e.ctx, Epoch.Add(time.Second)); len(ws) != 2 || !reflect.DeepEqual(ws[0].Activities, a.Activities) {
		t.Fatalf("ListWorkers after a's heartbeat = %+v, want a (with its activities) and b", ws)
	}
	if err := r.RemoveWorker(e.ctx, "a"); err != nil {
		t.Fatalf("RemoveWorker: %v", err)
	}
	if ws, _ = r.ListWorkers(e.ctx, Epoch); len(ws) != 1 || ws[0].ID != "b" {
		t.Fatalf("ListWorkers after RemoveWorker(a) = %+v, want only b", ws)
	}
}

func testPendingTasks(t *testing.T, e *env) {
	r := e.routing()
	e.create("x")
	later := act(2, "b", 0)
	later.RunAt = Epoch.Add(time.Minute)
	later.Queue = "other"
	e.scheduleTasks("x", 0, act(1, "a", 0), later)
	e.claimOne(backend.TaskActivity, "x") // a: claimed, so not pending
	ps, err := r.PendingTasks(e.ctx, "x")
	if err != nil {
		t.Fatalf("PendingTasks: %v", err)
	}
	if len(ps) != 1 || ps[0].Kind != backend.TaskActivity || ps[0].Seq != 2 || ps[0].Activity != "b" ||
		ps[0].Queue != "other" || ps[0].Attempt != 1 || !ps[0].RunAt.Equal(later.RunAt) {
		t.Fatalf("PendingTasks = %+v, want the activity task b at seq 2 on queue other", ps)
	}
	if ps, err = r.PendingTasks(e.ctx, "nope"); err != nil || len(ps) != 0 {
		t.Fatalf("PendingTasks(unknown) = %+v, %v; want none", ps, err)
	}
}

func testStartTimeout(t *testing.T, e *env) {
	r := e.routing()
	e.create("x")
	timed, _ := json.Marshal(backend.ActivityPayload{Name: "charge", Args: json.RawMessage(`[]`),
		Options: json.RawMessage(`{"schedule_to_start_ms":5000}`)})
	tk := backend.NewTask{Kind: backend.TaskActivity, Seq: 1, Attempt: 1, Payload: timed}
	e.scheduleTasks("x", 0, tk, act(2, "plain", 0))
	claimTimeouts := func() []backend.Task {
		got, err := r.ClaimStartTimeouts(e.ctx, backend.ClaimRequest{WorkerID: "sweeper", Limit: 10, Lease: lease})
		if err != nil {
			t.Fatalf("ClaimStartTimeouts: %v", err)
		}
		return got
	}
	if got := claimTimeouts(); len(got) != 0 {
		t.Fatalf("ClaimStartTimeouts before the deadline took %s", describe(got))
	}
	e.clock.Advance(5 * time.Second)
	got := claimTimeouts()
	if seqs(got) != "[x/1]" || got[0].LeaseOwner != "sweeper" {
		t.Fatalf("ClaimStartTimeouts at the deadline took %s, want [x/1] leased to sweeper", describe(got))
	}
	// Claimed tasks are no longer pending: nothing more, and the fence works as usual.
	if again := claimTimeouts(); len(again) != 0 {
		t.Fatalf("ClaimStartTimeouts again took %s", describe(again))
	}
	// A retry counts from its own RunAt.
	if err := e.b.RetryActivityTask(e.ctx, got[0].Ref(), e.clock.Now().Add(time.Second), 2, timed, nil); err != nil {
		t.Fatalf("RetryActivityTask: %v", err)
	}
	e.clock.Advance(5 * time.Second)
	if again := claimTimeouts(); len(again) != 0 {
		t.Fatalf("ClaimStartTimeouts 5s after a retry due in 1s took %s", describe(again))
	}
	e.clock.Advance(time.Second)
	if again := claimTimeouts(); seqs(again) != "[x/1]" {
		t.Fatalf("ClaimStartTimeouts 5s after the retry's RunAt took %s, want [x/1]", describe(again))
	}
}
