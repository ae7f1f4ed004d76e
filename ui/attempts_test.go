package ui

import (
	"strings"
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
	want := []prior{{span{at(0), at(2)}, 1, "", "503"}, {span{at(3), at(5)}, 2, "", "503"}}
	if len(st.Prior) != 2 || st.Prior[0] != want[0] || st.Prior[1] != want[1] || st.Failed != 2 {
		t.Fatalf("prior bars = %v (%d failed), want %v", st.Prior, st.Failed, want)
	}
	if st.Outcome != "ok" || !st.Start.Equal(at(5)) || !st.End.Equal(at(9)) {
		t.Fatalf("last attempt: %s from %v to %v, want ok from +5s to +9s", st.Outcome, st.Start, st.End)
	}
}

// Each failed attempt is drawn as a bar of its own whose tooltip names the attempt,
// its worker and its error; the last attempt's bar says how many failed before it.
func TestTimelineAttemptBars(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	failed := func(attempt, from, to int, msg string) backend.Event {
		return backend.Event{Seq: 1, Name: "charge", At: at(to), Error: &backend.ErrorInfo{Message: msg},
			Kind: backend.EventActivityAttemptFailed, Data: backend.AttemptFailedEvent(1, "charge",
				backend.AttemptData{Attempt: attempt, Worker: "w-" + msg, StartedAt: at(from), EndedAt: at(to)}, nil).Data}
	}
	sts := steps([]backend.Event{
		{Kind: backend.EventStarted, At: at(0)},
		{Kind: backend.EventActivityScheduled, Seq: 1, Name: "charge", At: at(0)},
		failed(1, 0, 2, "503"),
		failed(2, 3, 5, "timeout"),
		{Kind: backend.EventActivityCompleted, Seq: 1, Name: "charge", At: at(9)},
	})
	done := at(10)
	ex := &backend.Execution{ID: "x", CreatedAt: at(0), StartAt: at(0), CompletedAt: &done}
	tl := layoutTimeline(ex, sts, 0, at(10), func(*step) string { return "" }, func(int) string { return "" })
	if len(tl.Bars) != 1 || len(tl.Bars[0].Prior) != 2 {
		t.Fatalf("bars = %+v, want one step with two failed attempts", tl.Bars)
	}
	b := tl.Bars[0]
	for i, want := range []string{"attempt 1 failed after 2.0s on w-503: 503", "attempt 2 failed after 2.0s on w-timeout: timeout"} {
		if p := b.Prior[i]; p.Attempt != i+1 || !strings.HasSuffix(p.Title, want) || p.X >= b.X {
			t.Fatalf("attempt bar %d = %+v, want its title to end with %q, left of the last attempt", i+1, p, want)
		}
	}
	if !strings.Contains(b.Title, "ok") || !strings.Contains(b.Title, "attempt 3 after 2 failed") || !strings.Contains(b.Class, "o-ok") {
		t.Fatalf("the last attempt's bar = %+v", b)
	}
}
