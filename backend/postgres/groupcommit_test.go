package postgres

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// seqFx prepares n executions, each with its first activity (seq 1) claimed by "w",
// and returns the sequential step completing it and scheduling seq 2. The step of
// execution odd is not a plain sequential step (its next task's priority differs from
// the row's), so stent_sequential_step refuses it (SL006).
func seqFx(f *fx, prefix string, n, odd int) (steps []*seqStep, versions []int64) {
	payload, _ := json.Marshal(backend.ActivityPayload{Name: "work", Args: json.RawMessage(`[1]`)})
	str := func(s string) *string { return &s }
	for i := range n {
		id := fmt.Sprintf("%s%d", prefix, i)
		f.create(backend.NewExecution{ID: id})
		wt := f.claim(backend.TaskWorkflow, id)
		v := f.complete(backend.WorkflowTaskResult{Task: wt.Ref(), ExecutionID: id,
			Events: []backend.NewEvent{{Seq: 1, Kind: backend.EventActivityScheduled, Name: "work", Data: json.RawMessage(`{"args":[1]}`)}},
			Tasks:  []backend.NewTask{{Kind: backend.TaskActivity, Seq: 1, Attempt: 1, Payload: payload}}})
		at := f.claim(backend.TaskActivity, id)
		prio := 0
		if i == odd {
			prio = 5
		}
		steps = append(steps, &seqStep{ctx: f.ctx, execution: id, version: v, task: at.ID, fence: at.Fence, seq: 1,
			kind: string(backend.EventActivityCompleted), name: "work", data: str(`"r"`), nextSeq: 2, payload: string(payload),
			priority: prio, activity: "work", owner: "w", leaseMS: 60_000, schedName: "work", schedData: str(`{"args":[2]}`)})
		versions = append(versions, v)
	}
	return steps, versions
}

// One statement commits the sequential steps of several executions: each as it would
// alone (its events, its version, its task turned into the next activity's, claimed),
// and a step that is not a plain sequential step is reported and undone alone.
func TestGroupCommitOfSequentialSteps(t *testing.T) {
	f := newFx(t)
	steps, versions := seqFx(f, "g", 5, 2)
	if err := f.b.commitGroup(steps); err != nil {
		t.Fatalf("group commit: %v", err)
	}
	for i, s := range steps {
		if i == 2 {
			if !s.notSequential || s.err != nil {
				t.Fatalf("step of %s: notSequential %v, err %v; want refused as not sequential", s.execution, s.notSequential, s.err)
			}
			f.wantKinds(s.execution, backend.EventStarted, backend.EventActivityScheduled)
			continue
		}
		if s.notSequential || s.err != nil {
			t.Fatalf("step of %s: notSequential %v, err %v", s.execution, s.notSequential, s.err)
		}
		f.wantKinds(s.execution, backend.EventStarted, backend.EventActivityScheduled, backend.EventActivityCompleted,
			backend.EventActivityScheduled)
		if ex := f.get(s.execution); ex.Version != versions[i]+1 || s.outVersion != ex.Version {
			t.Fatalf("%s at version %d, answered %d, want %d", s.execution, ex.Version, s.outVersion, versions[i]+1)
		}
		if s.outFence <= s.fence || s.outEvent == 0 {
			t.Fatalf("%s: fence %d -> %d, event %d", s.execution, s.fence, s.outFence, s.outEvent)
		}
	}
	f.claimNone("every next activity is claimed by the group commit, the refused step's task is still held")
}

// Steps that arrive while a commit is in flight wait and then go together (stepGroup):
// every one is committed exactly once, and the refused one is reported to its caller
// alone.
func TestConcurrentSequentialStepsGroup(t *testing.T) {
	f := newFx(t)
	steps, _ := seqFx(f, "c", 24, 7)
	// A commit in flight: the steps queue behind it.
	g := &f.b.steps
	g.mu.Lock()
	g.leading = true
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.commit(f.b, s)
		}()
	}
	for queued := 0; queued < len(steps); {
		time.Sleep(time.Millisecond)
		g.mu.Lock()
		queued = len(g.queue)
		g.mu.Unlock()
	}
	// It ends: the queued steps go together.
	g.next(f.b)
	wg.Wait()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		g.mu.Lock()
		leading, queued := g.leading, len(g.queue)
		g.mu.Unlock()
		if !leading && queued == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group does not end: leading %v, %d queued", leading, queued)
		}
	}
	for i, s := range steps {
		if s.err != nil || s.notSequential != (i == 7) {
			t.Fatalf("step of %s: notSequential %v, err %v", s.execution, s.notSequential, s.err)
		}
		want := []backend.EventKind{backend.EventStarted, backend.EventActivityScheduled}
		if i != 7 {
			want = append(want, backend.EventActivityCompleted, backend.EventActivityScheduled)
		}
		f.wantKinds(s.execution, want...)
	}
}
