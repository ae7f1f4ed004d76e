package engine

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stent-go/stent/activities"
	"github.com/stent-go/stent/backend"
)

// An activity error's RetryAfter (an HTTP Retry-After) is the least wait before the next
// attempt: the retry is due no sooner, however short the policy's own delay.
func TestRetryAfterDelaysTheNextAttempt(t *testing.T) {
	var calls atomic.Int32
	f := newFixtureWith(t, filepath.Join(t.TempDir(), "stent.db"), func(e *Engine) {
		_ = e.Register("busy", func(ctx context.Context) (string, error) {
			calls.Add(1)
			return "", &activities.Error{Type: "HTTPError", Message: "busy", RetryAfter: time.Hour}
		})
	})
	id, err := f.eng.Dispatch(context.Background(),
		f.script(t, "def main():\n    return durable('busy', retry=retry_policy(max_attempts=2, initial_delay='10ms'))\n"), nil)
	if err != nil {
		t.Fatalf("Dispatch: %v", err)
	}
	var retry backend.Task
	waitFor(t, "the second attempt to be scheduled", func() bool {
		tasks, err := f.eng.Backend().ExecutionTasks(context.Background(), id)
		if err != nil {
			t.Fatalf("ExecutionTasks: %v", err)
		}
		for _, task := range tasks {
			if task.Kind == backend.TaskActivity && task.Attempt == 2 {
				retry = task
				return true
			}
		}
		return false
	})
	if until := time.Until(retry.RunAt); until < 50*time.Minute {
		t.Fatalf("second attempt due in %s, want about an hour (the error's RetryAfter)", until)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("activity ran %d times, want 1", n)
	}
}
