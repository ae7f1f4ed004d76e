package tests

import (
	"context"
	"testing"

	stentapi "github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
)

// stepCounts reads execution id's history and counts, per step (seq), the activity
// completions recorded and the attempts (completions and failed attempts).
func stepCounts(ctx context.Context, t *testing.T, eng *stentapi.Engine, id string) (completed, attempts map[int]int) {
	t.Helper()
	evs, err := eng.History(ctx, id)
	if err != nil {
		t.Fatalf("history of %s: %v", id, err)
	}
	completed, attempts = map[int]int{}, map[int]int{}
	for _, ev := range evs {
		switch ev.Kind {
		case backend.EventActivityCompleted:
			completed[ev.Seq]++
			attempts[ev.Seq]++
		case backend.EventActivityAttemptFailed:
			attempts[ev.Seq]++
		}
	}
	return completed, attempts
}
