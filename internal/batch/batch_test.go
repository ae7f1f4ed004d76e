package batch

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

type fakeEngine map[string]backend.Status

func (f fakeEngine) List(_ context.Context, fl backend.ListFilter) ([]backend.Execution, error) {
	var out []backend.Execution
	for id, st := range f {
		if fl.Status == "" || fl.Status == st {
			out = append(out, backend.Execution{ID: id, Status: st})
		}
	}
	return out, nil
}

func (f fakeEngine) Get(_ context.Context, id string) (*backend.Execution, error) {
	st, ok := f[id]
	if !ok {
		return nil, fmt.Errorf("execution %s: %w", id, backend.ErrNotFound)
	}
	return &backend.Execution{ID: id, Status: st}, nil
}

// Run skips what the action no longer takes, reports a failure and goes on, and keeps
// to its rate.
func TestRun(t *testing.T) {
	eng := fakeEngine{"a": backend.StatusFailed, "b": backend.StatusCompleted, "c": backend.StatusFailed, "d": backend.StatusFailed}
	a := Retry(func(_ context.Context, id string) error {
		if id == "c" {
			return errors.New("boom")
		}
		eng[id] = backend.StatusRunning
		return nil
	})
	ids, skipped, err := Select(context.Background(), eng, backend.ListFilter{}, a)
	if err != nil || len(ids) != 3 || skipped != 1 {
		t.Fatalf("Select: %v, %d skipped, %v; want 3 taken and 1 skipped", ids, skipped, err)
	}
	var got []Result
	start := time.Now()
	sum, err := Run(context.Background(), eng, a, []string{"a", "b", "c", "d", "gone"}, Options{Rate: 20,
		Each: func(_ int, r Result) { got = append(got, r) }})
	if err != nil {
		t.Fatal(err)
	}
	if sum != (Summary{Processed: 5, Done: 2, Skipped: 1, Failed: 2}) {
		t.Fatalf("summary %+v", sum)
	}
	if got[1].Outcome != Skipped || got[1].Reason(a) != "now completed: cannot be retried" ||
		got[2].Outcome != Failed || got[2].Reason(a) != "retry failed: boom" ||
		got[4].Outcome != Failed || got[4].Acted {
		t.Fatalf("results %+v", got)
	}
	// Three actions at 20/s: the second and third wait 50ms each.
	if el := time.Since(start); el < 90*time.Millisecond {
		t.Fatalf("three actions at 20/s took %v", el)
	}
	// Run again: nothing is acted on twice.
	sum, _ = Run(context.Background(), eng, a, []string{"a", "d"}, Options{})
	if sum.Done != 0 || sum.Skipped != 2 {
		t.Fatalf("rerun: %+v, want both skipped", sum)
	}
	// An ended context stops it, saying how far it got.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if sum, err := Run(ctx, eng, a, []string{"c"}, Options{}); !errors.Is(err, context.Canceled) || sum.Processed != 0 {
		t.Fatalf("cancelled run: %+v, %v", sum, err)
	}
}
