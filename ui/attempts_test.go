package ui

import (
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// Each failed attempt of a step is a bar of its own on the timeline, where it ran.
func TestTimelineDrawsEachFailedAttempt(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	failed := func(attempt, from, to int) backend.Event {
		return backend.Event{Seq: 1, Name: "charge", At: at(to), Error: &backend.ErrorInfo{Message: "503"},
			Kind: backend.EventActivityAttemptFailed, Data: backend.AttemptFailedEvent(1, "charge",
				backend.AttemptData{Attempt: attempt, StartedAt: at(from), EndedAt: at(to)}, nil).Data}
	}
	sts := steps([]backend.Event{
		{Kind: backend.EventStarted, At: at(0)},
		{Kind: backend.EventActivityScheduled, Seq: 1, Name: "charge", At: at(0)},
		failed(1, 0, 2),
		failed(2, 3, 5),
		{Kind: backend.EventActivityCompleted, Seq: 1, Name: "charge", At: at(9)},
	})
	if len(sts) != 1 {
		t.Fatalf("steps = %d, want 1", len(sts))
	}
	st := sts[0]
	want := []span{{at(0), at(2)}, {at(3), at(5)}}
	if len(st.Prior) != 2 || st.Prior[0] != want[0] || st.Prior[1] != want[1] {
		t.Fatalf("prior bars = %v, want %v", st.Prior, want)
	}
	if st.Outcome != "ok" || !st.Start.Equal(at(5)) || !st.End.Equal(at(9)) {
		t.Fatalf("last attempt: %s from %v to %v, want ok from +5s to +9s", st.Outcome, st.Start, st.End)
	}
}
