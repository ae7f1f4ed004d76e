package backendtest

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// priorityTests check task priorities (NewTask.Priority, NewExecution.Priority) and the
// per-activity concurrency caps of ClaimRequest.MaxConcurrent.
var priorityTests = []test{
	{"HigherPriorityFirst", testPriorityOrder},
	{"NotDueHighPriorityNotClaimed", testPriorityNotDue},
	{"RetryKeepsPriority", testPriorityRetry},
	{"ExecutionPriorityOrdersWorkflowTasks", testPriorityExecution},
	{"ExecutionPriorityOnReEnqueue", testPriorityExecutionReEnqueue},
	{"ChildExecutionPriority", testPriorityChild},
	{"MaxConcurrentWithinOneClaim", testCapOneClaim},
	{"MaxConcurrentAcrossWorkers", testCapAcrossWorkers},
	{"MaxConcurrentRetryAndRelease", testCapRetryRelease},
	{"MaxConcurrentHandOff", testCapHandOff},
	{"MaxConcurrentConcurrentClaimers", testCapConcurrent},
}

// act is an activity NewTask of the named activity, due at commit time.
func act(seq int, name string, priority int) backend.NewTask {
	return backend.NewTask{Kind: backend.TaskActivity, Seq: seq, Attempt: 1, Priority: priority,
		Payload: activityPayload(name)}
}

// activityName decodes the activity name of an activity task's payload.
func activityName(tk backend.Task) string {
	var p backend.ActivityPayload
	_ = json.Unmarshal(tk.Payload, &p)
	return p.Name
}

// scheduleTasks claims the execution's workflow task (expected at version) and commits
// it with the given tasks (and a scheduled event per task).
func (e *env) scheduleTasks(execID string, version int64, tasks ...backend.NewTask) int64 {
	e.t.Helper()
	wf := e.claimOne(backend.TaskWorkflow, execID)
	return e.completeWF(scheduleResult(wf, version, tasks...))
}

func scheduleResult(wf backend.Task, version int64, tasks ...backend.NewTask) backend.WorkflowTaskResult {
	r := backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: wf.ExecutionID, ExpectedVersion: version, Tasks: tasks}
	for _, tk := range tasks {
		ev := backend.NewEvent{Seq: tk.Seq, Kind: backend.EventActivityScheduled, Name: "act",
			Data: json.RawMessage(`{"args":[1,"two"]}`)}
		if tk.Kind == backend.TaskTimer {
			ev.Kind, ev.Name, ev.Data = backend.EventTimerScheduled, "sleep", json.RawMessage(`{}`)
		} else {
			var p backend.ActivityPayload
			_ = json.Unmarshal(tk.Payload, &p)
			ev.Name = p.Name
		}
		r.Events = append(r.Events, ev)
	}
	return r
}

// seqs lists "exec/seq" of tasks, in order.
func seqs(tasks []backend.Task) string {
	out := make([]string, len(tasks))
	for i, tk := range tasks {
		out[i] = fmt.Sprintf("%s/%d", tk.ExecutionID, tk.Seq)
	}
	return fmt.Sprint(out)
}

func activities() []backend.TaskKind { return []backend.TaskKind{backend.TaskActivity} }

func testPriorityOrder(t *testing.T, e *env) {
	// Activity tasks committed at different times: a later, higher-priority task is
	// claimed before earlier, lower-priority ones; equal priorities go earliest first,
	// then in creation order.
	e.create("x")
	e.scheduleTasks("x", 0, act(1, "a", 0), act(2, "b", 0))
	e.clock.Advance(time.Second)
	e.create("y")
	e.scheduleTasks("y", 0, act(1, "c", 5), act(2, "d", 1), act(3, "e", 5))
	e.clock.Advance(time.Second)
	e.create("z")
	e.scheduleTasks("z", 0, act(1, "f", 1), act(2, "g", -3), act(3, "h", 0))
	tasks := e.claim(backend.ClaimRequest{Kinds: activities(), Limit: 20})
	want := "[y/1 y/3 y/2 z/1 x/1 x/2 z/3 z/2]"
	if got := seqs(tasks); got != want {
		t.Fatalf("claim order %s, want %s (highest priority first, then earliest RunAt, then creation)", got, want)
	}
}

func testPriorityNotDue(t *testing.T, e *env) {
	e.create("x")
	now := e.clock.Now()
	later := act(1, "later", 100)
	later.RunAt = now.Add(time.Minute)
	e.scheduleTasks("x", 0, later, act(2, "low", 0), act(3, "mid", 1))
	tasks := e.claim(backend.ClaimRequest{Kinds: activities(), Limit: 1})
	if got := seqs(tasks); got != "[x/3]" {
		t.Fatalf("claimed %s with Limit 1, want [x/3] (the due task of highest priority; x/1 is not due)", got)
	}
	tasks = e.claim(backend.ClaimRequest{Kinds: activities()})
	if got := seqs(tasks); got != "[x/2]" {
		t.Fatalf("claimed %s, want [x/2] (x/1 is not due yet)", got)
	}
	e.clock.Advance(time.Minute)
	tasks = e.claim(backend.ClaimRequest{Kinds: activities()})
	if got := seqs(tasks); got != "[x/1]" {
		t.Fatalf("claimed %s once due, want [x/1]", got)
	}
}

func testPriorityRetry(t *testing.T, e *env) {
	e.create("x")
	e.scheduleTasks("x", 0, act(1, "hi", 4), act(2, "lo", 0))
	tasks := e.claim(backend.ClaimRequest{Kinds: activities(), Limit: 1})
	if got := seqs(tasks); got != "[x/1]" {
		t.Fatalf("claimed %s, want [x/1]", got)
	}
	e.clock.Advance(time.Second)
	if err := e.b.RetryActivityTask(e.ctx, tasks[0].Ref(), e.clock.Now(), 2, activityPayload("hi"), nil); err != nil {
		t.Fatalf("RetryActivityTask: %v", err)
	}
	// The retry is due later than x/2 but keeps its priority.
	tasks = e.claim(backend.ClaimRequest{Kinds: activities(), Limit: 1})
	if got := seqs(tasks); got != "[x/1]" || tasks[0].Attempt != 2 {
		t.Fatalf("claimed %s, want the retried x/1 (attempt 2) first: a retry keeps its priority", describe(tasks))
	}
}

func testPriorityExecution(t *testing.T, e *env) {
	e.create("lo")
	e.clock.Advance(time.Second)
	e.create("hi", func(n *backend.NewExecution) { n.Priority = 7 })
	e.create("mid", func(n *backend.NewExecution) { n.Priority = 2 })
	e.create("neg", func(n *backend.NewExecution) { n.Priority = -1 })
	future := Epoch.Add(time.Hour)
	e.create("top-later", func(n *backend.NewExecution) { n.Priority = 100; n.StartAt = future })
	tasks := e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskWorkflow}})
	if got := seqs(tasks); got != "[hi/0 mid/0 lo/0 neg/0]" {
		t.Fatalf("claim order %s, want [hi/0 mid/0 lo/0 neg/0] (execution priority first; top-later is not due)", got)
	}
}

func testPriorityExecutionReEnqueue(t *testing.T, e *env) {
	e.create("lo")
	e.scheduleTasks("lo", 0, act(1, "a", 0))
	e.create("hi", func(n *backend.NewExecution) { n.Priority = 3 })
	e.scheduleTasks("hi", 0, act(1, "a", 0))
	acts := e.claim(backend.ClaimRequest{Kinds: activities()})
	if len(acts) != 2 {
		t.Fatalf("claimed %s, want the two activity tasks", describe(acts))
	}
	byExec := map[string]backend.Task{}
	for _, a := range acts {
		byExec[a.ExecutionID] = a
	}
	// lo's workflow task is enqueued first, hi's a second later.
	if err := e.b.CompleteActivityTask(e.ctx, activityDone(byExec["lo"])); err != nil {
		t.Fatalf("CompleteActivityTask(lo): %v", err)
	}
	e.clock.Advance(time.Second)
	if err := e.b.CompleteActivityTask(e.ctx, activityDone(byExec["hi"])); err != nil {
		t.Fatalf("CompleteActivityTask(hi): %v", err)
	}
	tasks := e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskWorkflow}, Limit: 1})
	if got := seqs(tasks); got != "[hi/0]" {
		t.Fatalf("claimed %s, want [hi/0]: a re-enqueued workflow task has its execution's priority", got)
	}
	wf := tasks[0]
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "hi", ExpectedVersion: 1})

	// After a signal, too.
	e.clock.Advance(time.Second)
	if err := e.b.SignalExecution(e.ctx, "hi", "go", json.RawMessage(`1`)); err != nil {
		t.Fatalf("SignalExecution: %v", err)
	}
	tasks = e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskWorkflow}, Limit: 1})
	if got := seqs(tasks); got != "[hi/0]" {
		t.Fatalf("claimed %s after a signal, want [hi/0]: the signalled execution has the higher priority", got)
	}
	// And after continue-as-new.
	e.clock.Advance(time.Second)
	e.completeWF(backend.WorkflowTaskResult{Task: tasks[0].Ref(), ExecutionID: "hi", ExpectedVersion: 2,
		ContinueAsNew: json.RawMessage(`[1]`)})
	tasks = e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskWorkflow}, Limit: 1})
	if got := seqs(tasks); got != "[hi/0]" {
		t.Fatalf("claimed %s after continue-as-new, want [hi/0]", got)
	}
}

func testPriorityChild(t *testing.T, e *env) {
	// A child's workflow tasks have the child's own priority, and the parent's workflow
	// task, re-enqueued when the child completes, has the parent's.
	e.create("p", func(n *backend.NewExecution) { n.Priority = 2 })
	wf := e.claimOne(backend.TaskWorkflow, "p")
	e.create("other", func(n *backend.NewExecution) { n.Priority = 1 })
	ch := newExec("child")
	ch.ParentID, ch.ParentSeq, ch.Priority = "p", 1, 5
	e.clock.Advance(time.Second)
	e.completeWF(backend.WorkflowTaskResult{Task: wf.Ref(), ExecutionID: "p", ExpectedVersion: 0,
		Events:   []backend.NewEvent{{Seq: 1, Kind: backend.EventChildScheduled, Name: "main", Data: json.RawMessage(`{}`)}},
		Children: []backend.NewExecution{ch}})
	tasks := e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskWorkflow}, Limit: 1})
	if got := seqs(tasks); got != "[child/0]" {
		t.Fatalf("claimed %s, want [child/0] (priority 5 over other's 1)", got)
	}
	e.clock.Advance(time.Second)
	e.completeWF(backend.WorkflowTaskResult{Task: tasks[0].Ref(), ExecutionID: "child", ExpectedVersion: 0,
		Finish: &backend.Finish{Status: backend.StatusCompleted, Result: json.RawMessage(`1`)}})
	tasks = e.claim(backend.ClaimRequest{Kinds: []backend.TaskKind{backend.TaskWorkflow}, Limit: 1})
	if got := seqs(tasks); got != "[p/0]" {
		t.Fatalf("claimed %s, want [p/0] (the parent, priority 2, re-enqueued by its child, before other's 1)", got)
	}
}

func testCapOneClaim(t *testing.T, e *env) {
	e.create("x")
	// The capped activity comes first in claim order; the cap must not hide the tasks
	// behind it.
	e.scheduleTasks("x", 0, act(1, "cap", 0), act(2, "cap", 0), act(3, "cap", 0), act(4, "cap", 0),
		act(5, "cap", 0), act(6, "free", 0), act(7, "free", 0))
	caps := map[string]int{"cap": 2}
	tasks := e.claim(backend.ClaimRequest{Kinds: activities(), Limit: 3, MaxConcurrent: caps})
	if got := seqs(tasks); got != "[x/1 x/2 x/6]" {
		t.Fatalf("claimed %s with Limit 3 and cap 2, want [x/1 x/2 x/6]", got)
	}
	tasks = e.claim(backend.ClaimRequest{Kinds: activities(), Limit: 10, MaxConcurrent: caps})
	if got := seqs(tasks); got != "[x/7]" {
		t.Fatalf("claimed %s, want only [x/7] (cap reached)", got)
	}
	tasks = e.claim(backend.ClaimRequest{Kinds: activities(), Limit: 10, MaxConcurrent: caps})
	if len(tasks) != 0 {
		t.Fatalf("claimed %s, want nothing", describe(tasks))
	}
}

func testCapAcrossWorkers(t *testing.T, e *env) {
	e.create("x")
	e.scheduleTasks("x", 0, act(1, "cap", 0), act(2, "cap", 0), act(3, "cap", 0))
	e.create("y")
	e.scheduleTasks("y", 0, act(1, "cap", 0), act(2, "cap", 0), act(3, "free", 0), act(4, "other", 0))
	caps := map[string]int{"cap": 2, "unused": 1}
	var held []backend.Task
	count := func(tasks []backend.Task) (capped int) {
		for _, tk := range tasks {
			if activityName(tk) == "cap" {
				capped++
			}
		}
		return capped
	}
	a := e.claim(backend.ClaimRequest{WorkerID: "w1", Kinds: activities(), Limit: 1, MaxConcurrent: caps})
	if got := seqs(a); got != "[x/1]" {
		t.Fatalf("w1 claimed %s, want [x/1]", got)
	}
	held = append(held, a...)
	b := e.claim(backend.ClaimRequest{WorkerID: "w2", Kinds: activities(), Limit: 10, MaxConcurrent: caps})
	if n := count(b); n != 1 || len(b) != 3 {
		t.Fatalf("w2 claimed %s, want one more cap task (cap 2, one held by w1) and the free and other tasks", describe(b))
	}
	held = append(held, b...)
	for _, w := range []string{"w1", "w2", "w3"} {
		if c := e.claim(backend.ClaimRequest{WorkerID: w, Kinds: activities(), Limit: 10, MaxConcurrent: caps}); len(c) != 0 {
			t.Fatalf("%s claimed %s with two cap tasks claimed (cap 2), want nothing", w, describe(c))
		}
	}
	// Completing one cap task frees one slot, for either worker.
	var done backend.Task
	for _, tk := range held {
		if activityName(tk) == "cap" {
			done = tk
			break
		}
	}
	if err := e.b.CompleteActivityTask(e.ctx, activityDone(done)); err != nil {
		t.Fatalf("CompleteActivityTask: %v", err)
	}
	c := e.claim(backend.ClaimRequest{WorkerID: "w2", Kinds: activities(), Limit: 10, MaxConcurrent: caps})
	if len(c) != 1 || activityName(c[0]) != "cap" {
		t.Fatalf("w2 claimed %s after a cap task completed, want exactly one cap task", describe(c))
	}
	if c := e.claim(backend.ClaimRequest{WorkerID: "w1", Kinds: activities(), Limit: 10, MaxConcurrent: caps}); len(c) != 0 {
		t.Fatalf("w1 claimed %s, want nothing (cap reached again)", describe(c))
	}
	// The workflow task the completion enqueued is not capped.
	wf := e.claim(backend.ClaimRequest{WorkerID: "w1", Limit: 10, MaxConcurrent: caps})
	if len(wf) != 1 || wf[0].Kind != backend.TaskWorkflow {
		t.Fatalf("w1 claimed %s, want only the workflow task of %s", describe(wf), done.ExecutionID)
	}
}

func testCapRetryRelease(t *testing.T, e *env) {
	e.create("x")
	e.scheduleTasks("x", 0, act(1, "cap", 0), act(2, "cap", 0))
	caps := map[string]int{"cap": 1}
	a := e.claim(backend.ClaimRequest{WorkerID: "w1", Kinds: activities(), MaxConcurrent: caps})
	if got := seqs(a); got != "[x/1]" {
		t.Fatalf("claimed %s, want [x/1]", got)
	}
	e.claimNoneCapped("cap 1 reached", caps)
	// A retry releases the slot, and the retried task is still a task of "cap".
	if err := e.b.RetryActivityTask(e.ctx, a[0].Ref(), e.clock.Now(), 2, activityPayload("cap"), nil); err != nil {
		t.Fatalf("RetryActivityTask: %v", err)
	}
	b := e.claim(backend.ClaimRequest{WorkerID: "w2", Kinds: activities(), MaxConcurrent: caps})
	if len(b) != 1 {
		t.Fatalf("claimed %s after a retry freed the slot, want one task", describe(b))
	}
	e.claimNoneCapped("cap 1 reached again", caps)
	// A released task frees its slot too.
	if err := e.b.ReleaseTask(e.ctx, b[0].Ref(), e.clock.Now()); err != nil {
		t.Fatalf("ReleaseTask: %v", err)
	}
	c := e.claim(backend.ClaimRequest{WorkerID: "w3", Kinds: activities(), MaxConcurrent: caps})
	if len(c) != 1 {
		t.Fatalf("claimed %s after a release freed the slot, want one task", describe(c))
	}
	e.claimNoneCapped("cap 1 reached after the release", caps)
	// An expired lease, once reclaimed, frees its slot.
	e.clock.Advance(lease + time.Second)
	e.heartbeat("w3")
	if n, err := e.b.ReclaimTasks(e.ctx, time.Hour); err != nil || n != 1 {
		t.Fatalf("ReclaimTasks: (%d, %v), want (1, nil)", n, err)
	}
	d := e.claim(backend.ClaimRequest{WorkerID: "w4", Kinds: activities(), MaxConcurrent: caps})
	if len(d) != 1 {
		t.Fatalf("claimed %s after a reclaim freed the slot, want one task", describe(d))
	}
	e.claimNoneCapped("cap 1 reached after the reclaim", caps)
}

// claimNoneCapped checks that a capped claim of activity tasks gets nothing.
func (e *env) claimNoneCapped(what string, caps map[string]int) {
	e.t.Helper()
	if tasks := e.claim(backend.ClaimRequest{WorkerID: "w-probe", Kinds: activities(), MaxConcurrent: caps}); len(tasks) != 0 {
		e.t.Fatalf("%s: claimed %s, want no claimable task", what, describe(tasks))
	}
}

func testCapHandOff(t *testing.T, e *env) {
	h := e.handOff()
	caps := map[string]int{"cap": 2}
	// One cap task is already claimed elsewhere.
	e.create("y")
	e.scheduleTasks("y", 0, act(1, "cap", 0))
	held := e.claim(backend.ClaimRequest{WorkerID: "w2", Kinds: activities(), MaxConcurrent: caps})
	if len(held) != 1 {
		t.Fatalf("claimed %s, want y's cap task", describe(held))
	}
	e.create("x")
	wf := e.claimOne(backend.TaskWorkflow, "x")
	r := scheduleResult(wf, 0, act(1, "cap", 0), act(2, "cap", 0), act(3, "free", 0), act(4, "cap", 0))
	claim := handOffReq("w1", 10)
	claim.MaxConcurrent = caps
	_, claimed, err := h.CompleteWorkflowTaskAndClaim(e.ctx, r, claim)
	if err != nil {
		t.Fatalf("CompleteWorkflowTaskAndClaim: %v", err)
	}
	if got := seqs(claimed); got != "[x/1 x/3]" {
		t.Fatalf("handed off %s, want [x/1 x/3] (cap 2, one cap task already claimed by w2)", got)
	}
	e.claimNoneCapped("cap reached by the hand-off", caps)
	// A capped hand-off at the cap claims no cap task at all, only the others.
	e.create("z")
	wf = e.claimOne(backend.TaskWorkflow, "z")
	r = scheduleResult(wf, 0, act(1, "cap", 0), act(2, "free", 0))
	_, claimed, err = h.CompleteWorkflowTaskAndClaim(e.ctx, r, claim)
	if err != nil {
		t.Fatalf("CompleteWorkflowTaskAndClaim: %v", err)
	}
	if got := seqs(claimed); got != "[z/2]" {
		t.Fatalf("handed off %s, want only [z/2] (the cap is reached)", got)
	}
	// The cap tasks left pending are claimable once a slot frees.
	if err := e.b.CompleteActivityTask(e.ctx, activityDone(held[0])); err != nil {
		t.Fatalf("CompleteActivityTask: %v", err)
	}
	rest := e.claim(backend.ClaimRequest{WorkerID: "w3", Kinds: activities(), MaxConcurrent: caps})
	if len(rest) != 1 || activityName(rest[0]) != "cap" {
		t.Fatalf("claimed %s after a cap task completed, want exactly one cap task", describe(rest))
	}
	e.claimNoneCapped("cap reached again", caps)
}

func testCapConcurrent(t *testing.T, e *env) {
	const (
		execs, capped, free = 6, 6, 2 // activities per execution
		workers, maxConc    = 8, 3
	)
	for i := 0; i < execs; i++ {
		id := fmt.Sprintf("x%d", i)
		e.create(id)
		var tasks []backend.NewTask
		for s := 1; s <= capped; s++ {
			tasks = append(tasks, act(s, "cap", 0))
		}
		for s := capped + 1; s <= capped+free; s++ {
			tasks = append(tasks, act(s, "free", 0))
		}
		e.scheduleTasks(id, 0, tasks...)
	}
	total := int64(execs * (capped + free))
	caps := map[string]int{"cap": maxConc}
	var (
		inFlight, maxSeen, done atomic.Int64
		wg                      sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(worker string) {
			defer wg.Done()
			for done.Load() < total && e.ctx.Err() == nil && !t.Failed() {
				tasks, err := e.b.ClaimTasks(e.ctx, backend.ClaimRequest{WorkerID: worker, Kinds: activities(),
					Limit: 2, Lease: time.Hour, MaxConcurrent: caps})
				if err != nil {
					t.Errorf("ClaimTasks by %s: %v", worker, err)
					return
				}
				if len(tasks) == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				// Counted after the claim returned and uncounted before the completion
				// starts: the count can only be below what the backend holds claimed.
				for _, tk := range tasks {
					if activityName(tk) == "cap" {
						n := inFlight.Add(1)
						for {
							m := maxSeen.Load()
							if n <= m || maxSeen.CompareAndSwap(m, n) {
								break
							}
						}
						if n > maxConc {
							t.Errorf("%d cap tasks claimed at once, cap is %d", n, maxConc)
						}
					}
				}
				time.Sleep(time.Millisecond)
				for _, tk := range tasks {
					if activityName(tk) == "cap" {
						inFlight.Add(-1)
					}
					err := e.b.CompleteActivityTask(e.ctx, backend.ActivityResult{Task: tk.Ref(),
						ExecutionID: tk.ExecutionID, Seq: tk.Seq, Name: activityName(tk), Result: json.RawMessage(`1`)})
					if err != nil {
						t.Errorf("CompleteActivityTask by %s: %v", worker, err)
						return
					}
					done.Add(1)
				}
			}
		}(fmt.Sprintf("w%d", w))
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if n := done.Load(); n != total {
		t.Fatalf("%d activity tasks completed, want %d", n, total)
	}
	t.Logf("at most %d cap tasks seen claimed at once (cap %d)", maxSeen.Load(), maxConc)
}
