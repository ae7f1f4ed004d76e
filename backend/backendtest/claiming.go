package backendtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

var claimingTests = []test{
	{"EarliestFirst", testClaimOrder},
	{"Limit", testClaimLimit},
	{"FutureRunAtNotClaimed", testClaimFuture},
	{"ClaimedTaskFields", testClaimFields},
	{"ClaimedTaskNotClaimedAgain", testClaimOnce},
	{"KindsFilter", testClaimKinds},
	{"QueuesFilter", testClaimQueues},
	{"ExpiredLeaseIsReclaimed", testReclaimExpired},
	{"DeadWorkerIsReclaimed", testReclaimDeadWorker},
	{"ExtendLeases", testExtendLeases},
	{"ReleaseTask", testReleaseTask},
}

func testClaimOrder(t *testing.T, e *env) {
	// Created in this order, runnable in another.
	offsets := map[string]time.Duration{"c": -1 * time.Second, "a": -3 * time.Second, "b": -2 * time.Second,
		"d": -1 * time.Second}
	for _, id := range []string{"c", "a", "b", "d"} {
		e.create(id, func(n *backend.NewExecution) { n.StartAt = Epoch.Add(offsets[id]) })
	}
	tasks := e.claim(backend.ClaimRequest{Limit: 10})
	var got []string
	for _, tk := range tasks {
		got = append(got, tk.ExecutionID)
	}
	// c and d share a RunAt: the one created first comes first.
	if fmt.Sprint(got) != "[a b c d]" {
		t.Fatalf("claim order %v, want [a b c d] (earliest RunAt first, then creation order)", got)
	}
}

func testClaimLimit(t *testing.T, e *env) {
	for i := 0; i < 5; i++ {
		e.create(fmt.Sprintf("e%d", i))
	}
	seen := map[int64]bool{}
	for round, want := range []int{2, 2, 1, 0} {
		tasks := e.claim(backend.ClaimRequest{Limit: 2})
		if len(tasks) != want {
			t.Fatalf("claim round %d with Limit 2: got %d tasks, want %d", round+1, len(tasks), want)
		}
		for _, tk := range tasks {
			if seen[tk.ID] {
				t.Fatalf("task %d claimed twice", tk.ID)
			}
			seen[tk.ID] = true
		}
	}
}

func testClaimFuture(t *testing.T, e *env) {
	e.create("later", func(n *backend.NewExecution) { n.StartAt = Epoch.Add(time.Minute) })
	e.create("now")
	tasks := e.claim(backend.ClaimRequest{})
	if len(tasks) != 1 || tasks[0].ExecutionID != "now" {
		t.Fatalf("claimed %s, want only the task of %q (the other runs in a minute)", describe(tasks), "now")
	}
	e.clock.Advance(time.Minute)
	e.claimOne(backend.TaskWorkflow, "later")
}

func testClaimFields(t *testing.T, e *env) {
	e.create("x")
	v := e.scheduleActivities("x", 0, 1, "charge")
	if v != 1 {
		t.Fatalf("version after the first workflow task = %d, want 1", v)
	}
	e.clock.Advance(5 * time.Second)
	tasks := e.claim(backend.ClaimRequest{WorkerID: "worker-a", Lease: 90 * time.Second})
	if len(tasks) != 1 {
		t.Fatalf("claimed %s, want the one activity task", describe(tasks))
	}
	tk := tasks[0]
	if tk.ID <= 0 {
		t.Errorf("ID = %d, want > 0", tk.ID)
	}
	if tk.Kind != backend.TaskActivity || tk.ExecutionID != "x" || tk.Seq != 1 {
		t.Errorf("task = %s, want the activity task of x with seq 1", describe(tasks))
	}
	if tk.Attempt != 1 {
		t.Errorf("Attempt = %d, want 1", tk.Attempt)
	}
	if tk.Queue != backend.DefaultQueue {
		t.Errorf("Queue = %q, want the execution's queue %q", tk.Queue, backend.DefaultQueue)
	}
	wantJSON(t, "Payload", tk.Payload, activityPayload("charge"))
	wantTime(t, "RunAt (zero RunAt means the commit time)", tk.RunAt, Epoch)
	if tk.LeaseOwner != "worker-a" {
		t.Errorf("LeaseOwner = %q, want worker-a", tk.LeaseOwner)
	}
	wantTime(t, "LeaseExpiresAt", tk.LeaseExpiresAt, Epoch.Add(5*time.Second+90*time.Second))
	if tk.Fence <= 0 {
		t.Errorf("Fence = %d, want > 0 after a claim", tk.Fence)
	}
	if tk.Ref() != (backend.TaskRef{ID: tk.ID, Fence: tk.Fence}) {
		t.Errorf("Ref() = %+v, want ID and Fence of the task", tk.Ref())
	}
}

func testClaimOnce(t *testing.T, e *env) {
	e.create("x")
	e.claimOne(backend.TaskWorkflow, "x")
	e.claimNone("after the only task was claimed")
	e.clock.Advance(30 * time.Second) // still within the lease
	e.heartbeat("w1")
	if n, err := e.b.ReclaimTasks(e.ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("ReclaimTasks within the lease: (%d, %v), want (0, nil)", n, err)
	}
	e.claimNone("within the lease")
}

func testClaimKinds(t *testing.T, e *env) {
	e.create("x")
	e.scheduleActivities("x", 0, 1, "a")
	e.create("y") // pending workflow task
	tasks := e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskActivity}})
	if len(tasks) != 1 || tasks[0].Kind != backend.TaskActivity || tasks[0].ExecutionID != "x" {
		t.Fatalf("claiming activity tasks only: got %s, want the activity task of x", describe(tasks))
	}
	tasks = e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskTimer}})
	if len(tasks) != 0 {
		t.Fatalf("claiming timer tasks only: got %s, want none", describe(tasks))
	}
	tasks = e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskTimer, backend.TaskWorkflow}})
	if len(tasks) != 1 || tasks[0].Kind != backend.TaskWorkflow || tasks[0].ExecutionID != "y" {
		t.Fatalf("claiming timer and workflow tasks: got %s, want the workflow task of y", describe(tasks))
	}
}

func testClaimQueues(t *testing.T, e *env) {
	e.create("a", func(n *backend.NewExecution) { n.Queue = "qa" })
	e.create("b", func(n *backend.NewExecution) { n.Queue = "qb" })
	e.create("d")
	tasks := e.claim(backend.ClaimRequest{Queues: []string{"qb"}})
	if len(tasks) != 1 || tasks[0].ExecutionID != "b" || tasks[0].Queue != "qb" {
		t.Fatalf("claiming queue qb: got %s, want the task of b", describe(tasks))
	}
	tasks = e.claim(backend.ClaimRequest{Queues: []string{"nope"}})
	if len(tasks) != 0 {
		t.Fatalf("claiming an empty queue: got %s, want none", describe(tasks))
	}
	tasks = e.claim(backend.ClaimRequest{Queues: []string{backend.DefaultQueue, "qa"}})
	if len(tasks) != 2 {
		t.Fatalf("claiming queues default and qa: got %s, want the tasks of a and d", describe(tasks))
	}
}

func testReclaimExpired(t *testing.T, e *env) {
	e.create("x")
	if err := e.b.Heartbeat(e.ctx, "w1"); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	first := e.claimOne(backend.TaskWorkflow, "x")
	e.clock.Advance(lease) // lease ends exactly now: not yet expired
	if err := e.b.Heartbeat(e.ctx, "w1"); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	if n, err := e.b.ReclaimTasks(e.ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("ReclaimTasks at the lease's end: (%d, %v), want (0, nil)", n, err)
	}
	e.clock.Advance(time.Second)
	if err := e.b.Heartbeat(e.ctx, "w1"); err != nil { // alive, but the lease ran out
		t.Fatalf("Heartbeat: %v", err)
	}
	n, err := e.b.ReclaimTasks(e.ctx, time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("ReclaimTasks after the lease expired: (%d, %v), want (1, nil)", n, err)
	}
	second := e.claimOneBy("w2", backend.TaskWorkflow, "x")
	if second.ID != first.ID {
		t.Errorf("reclaimed task ID = %d, want the same task %d", second.ID, first.ID)
	}
	if second.Fence <= first.Fence {
		t.Errorf("fence after reclaim and claim = %d, want > %d", second.Fence, first.Fence)
	}
	if second.LeaseOwner != "w2" {
		t.Errorf("LeaseOwner = %q, want w2", second.LeaseOwner)
	}
}

func testReclaimDeadWorker(t *testing.T, e *env) {
	e.create("x")
	e.create("y")
	for _, w := range []string{"dead", "alive"} {
		if err := e.b.Heartbeat(e.ctx, w); err != nil {
			t.Fatalf("Heartbeat(%s): %v", w, err)
		}
	}
	long := backend.ClaimRequest{Limit: 1, Lease: 24 * time.Hour}
	long.WorkerID = "dead"
	d := e.claim(long)
	long.WorkerID = "alive"
	a := e.claim(long)
	if len(d) != 1 || len(a) != 1 {
		t.Fatalf("claims: dead got %s, alive got %s, want one task each", describe(d), describe(a))
	}
	e.clock.Advance(30 * time.Second)
	if err := e.b.Heartbeat(e.ctx, "alive"); err != nil {
		t.Fatalf("Heartbeat(alive): %v", err)
	}
	if n, err := e.b.ReclaimTasks(e.ctx, time.Minute); err != nil || n != 0 {
		t.Fatalf("ReclaimTasks 30s after the last heartbeat with 1m grace: (%d, %v), want (0, nil)", n, err)
	}
	e.clock.Advance(31 * time.Second)
	if err := e.b.Heartbeat(e.ctx, "alive"); err != nil {
		t.Fatalf("Heartbeat(alive): %v", err)
	}
	n, err := e.b.ReclaimTasks(e.ctx, time.Minute)
	if err != nil || n != 1 {
		t.Fatalf("ReclaimTasks 61s after dead's last heartbeat with 1m grace: (%d, %v), want (1, nil)", n, err)
	}
	tasks := e.claim(backend.ClaimRequest{WorkerID: "alive"})
	if len(tasks) != 1 || tasks[0].ID != d[0].ID {
		t.Fatalf("after reclaiming the dead worker's task: claimed %s, want task %d", describe(tasks), d[0].ID)
	}
	// The live worker keeps its task.
	if lost, err := e.b.ExtendLeases(e.ctx, "alive", []backend.TaskRef{a[0].Ref()}, time.Hour); err != nil || len(lost) != 0 {
		t.Fatalf("ExtendLeases of the live worker's task: (lost %v, %v), want nothing lost", lost, err)
	}
}

func testExtendLeases(t *testing.T, e *env) {
	for _, id := range []string{"a", "b", "c"} {
		e.create(id)
	}
	tasks := e.claim(backend.ClaimRequest{WorkerID: "w1", Lease: time.Minute})
	if len(tasks) != 3 {
		t.Fatalf("claimed %s, want 3 tasks", describe(tasks))
	}
	a, b, c := tasks[0], tasks[1], tasks[2]
	// c is given back, so w1 no longer holds it.
	if err := e.b.ReleaseTask(e.ctx, c.Ref(), time.Time{}); err != nil {
		t.Fatalf("ReleaseTask: %v", err)
	}
	e.clock.Advance(50 * time.Second)
	staleB := backend.TaskRef{ID: b.ID, Fence: b.Fence - 1}
	missing := backend.TaskRef{ID: 1 << 40, Fence: 1}
	lost, err := e.b.ExtendLeases(e.ctx, "w1", []backend.TaskRef{a.Ref(), staleB, c.Ref(), missing}, time.Minute)
	if err != nil {
		t.Fatalf("ExtendLeases: %v", err)
	}
	wantLost := map[backend.TaskRef]bool{staleB: true, c.Ref(): true, missing: true}
	if len(lost) != len(wantLost) {
		t.Fatalf("ExtendLeases lost %v, want exactly %v", lost, []backend.TaskRef{staleB, c.Ref(), missing})
	}
	for _, r := range lost {
		if !wantLost[r] {
			t.Fatalf("ExtendLeases lost %v, want exactly %v", lost, []backend.TaskRef{staleB, c.Ref(), missing})
		}
	}
	// Another worker cannot extend w1's lease.
	if lost, err := e.b.ExtendLeases(e.ctx, "w2", []backend.TaskRef{b.Ref()}, time.Minute); err != nil || len(lost) != 1 {
		t.Fatalf("ExtendLeases of w1's task by w2: (lost %v, %v), want it lost", lost, err)
	}
	if err := e.b.Heartbeat(e.ctx, "w1"); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	// 70s after the claim: b's original lease ran out, a's extended lease (until 110s) did not.
	e.clock.Advance(20 * time.Second)
	if err := e.b.Heartbeat(e.ctx, "w1"); err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	e.claim(backend.ClaimRequest{WorkerID: "w3"}) // take c out of the way
	e.heartbeat("w3")
	n, err := e.b.ReclaimTasks(e.ctx, time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("ReclaimTasks 70s after the claim: (%d, %v), want (1, nil): only b's lease expired", n, err)
	}
	got := e.claim(backend.ClaimRequest{WorkerID: "w4"})
	if len(got) != 1 || got[0].ID != b.ID {
		t.Fatalf("after reclaim: claimed %s, want task %d (b)", describe(got), b.ID)
	}
	// a's extended lease ends 110s after the claim; b and c were claimed again at 70s.
	e.clock.Advance(41 * time.Second)
	e.heartbeat("w1", "w3", "w4")
	if n, err := e.b.ReclaimTasks(e.ctx, time.Hour); err != nil || n != 1 {
		t.Fatalf("ReclaimTasks 111s after the claim: (%d, %v), want (1, nil): a's extended lease expired", n, err)
	}
}

func testReleaseTask(t *testing.T, e *env) {
	e.create("x")
	first := e.claimOne(backend.TaskWorkflow, "x")
	if err := e.b.ReleaseTask(e.ctx, first.Ref(), Epoch.Add(10*time.Second)); err != nil {
		t.Fatalf("ReleaseTask: %v", err)
	}
	e.claimNone("before the released task's new RunAt")
	err := e.b.ReleaseTask(e.ctx, first.Ref(), time.Time{})
	wantErrIs(t, "releasing a task twice", err, backend.ErrLeaseLost)
	e.clock.Advance(10 * time.Second)
	second := e.claimOne(backend.TaskWorkflow, "x")
	if second.ID != first.ID || second.Fence <= first.Fence {
		t.Fatalf("claim after release: task %d fence %d, want task %d with a fence > %d",
			second.ID, second.Fence, first.ID, first.Fence)
	}
	wantTime(t, "RunAt after release", second.RunAt, Epoch.Add(10*time.Second))
	err = e.b.ReleaseTask(e.ctx, first.Ref(), time.Time{})
	wantErrIs(t, "releasing with the fence of an earlier claim", err, backend.ErrLeaseLost)
}
