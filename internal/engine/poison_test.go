package engine

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// A workflow step whose worker died (its lease was reclaimed) three times fails the
// execution with the reason and a dead letter, instead of running a fourth time.
func TestPoisonPillWorkflowStep(t *testing.T) {
	for _, tb := range testBackends(t) {
		t.Run(tb.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			// No worker runs until the three crashes are staged.
			dir := t.TempDir()
			opts := []Option{WithCacheSize(0)}
			if tb.open != nil {
				opts = append(opts, WithBackend(tb.open(t)))
			}
			eng, err := Open(ctx, filepath.Join(dir, "stent.db"), opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer eng.Close()
			f := &fixture{eng: eng, dir: dir}
			// Claim the step as a worker that then "dies" (its lease runs out), three times.
			id, err := f.eng.Dispatch(ctx, f.script(t, "def main():\n    return 1\n"), nil, Queue("doomed"))
			if err != nil {
				t.Fatal(err)
			}
			b := f.eng.Backend()
			for crash := 1; crash <= 3; crash++ {
				tasks, err := b.ClaimTasks(ctx, backend.ClaimRequest{WorkerID: "dying-worker", Queues: []string{"doomed"}, Limit: 1, Lease: time.Millisecond})
				if err != nil || len(tasks) != 1 {
					t.Fatalf("crash %d: claim = %v, %v", crash, tasks, err)
				}
				time.Sleep(5 * time.Millisecond)
				if n, err := b.ReclaimTasks(ctx, 0); err != nil || n != 1 {
					t.Fatalf("crash %d: reclaim = %d, %v", crash, n, err)
				}
				ex, err := b.GetExecution(ctx, id)
				if err != nil || ex.Crashes != crash {
					t.Fatalf("after crash %d: crashes = %v, %v", crash, ex.Crashes, err)
				}
			}
			served := make(chan error, 1)
			sctx, stop := context.WithCancel(ctx)
			go func() {
				served <- f.eng.Serve(sctx, WorkerOptions{Queues: []string{"doomed"}, PollInterval: 50 * time.Millisecond})
			}()
			res, err := f.eng.WaitFor(ctx, id)
			stop()
			<-served
			if res == nil || res.Status != backend.StatusFailed {
				t.Fatalf("WaitFor = %v, %v; want failed", res, err)
			}
			want := "the workflow step after checkpoint 0 killed the worker running it 3 times"
			if !strings.HasPrefix(res.Failure.Message, want) || res.Failure.Type != "poison_pill" {
				t.Errorf("failure = %+v; want type poison_pill and a message starting %q", res.Failure, want)
			}
			dls, err := f.eng.DeadLetters(ctx, "open", 10)
			if err != nil || len(dls) != 1 || dls[0].ExecutionID != id {
				t.Fatalf("dead letters = %+v, %v; want one for %s", dls, err, id)
			}
			if err := f.eng.ReplayDeadLetter(ctx, dls[0].ID); err == nil || !strings.Contains(err.Error(), "cannot be replayed") {
				t.Errorf("replaying the poison pill's dead letter: %v", err)
			}
		})
	}
}
