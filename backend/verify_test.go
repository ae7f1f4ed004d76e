package backend

import (
	"strings"
	"testing"
)

// TestCheckHistory pins what counts as a broken history: steps numbered 1..N, each
// opened once, and one started event.
func TestCheckHistory(t *testing.T) {
	ev := func(seq int, kind EventKind) Event { return Event{Seq: seq, Kind: kind} }
	for _, tc := range []struct {
		name string
		evs  []Event
		want string // "" : no violation
	}{
		{"steps in order", []Event{ev(0, EventStarted), ev(1, EventActivityScheduled), ev(1, EventActivityCompleted),
			ev(2, EventSignalWait), ev(2, EventSignalReceived), ev(3, EventSideEffect)}, ""},
		{"a signal that was there already", []Event{ev(0, EventStarted), ev(1, EventSignalReceived), ev(2, EventTimerScheduled)}, ""},
		{"retried attempts", []Event{ev(0, EventStarted), ev(1, EventActivityScheduled), ev(1, EventActivityAttemptFailed),
			ev(1, EventActivityFailed), ev(1, EventRetried), ev(1, EventActivityCompleted)}, ""},
		{"a gap", []Event{ev(0, EventStarted), ev(1, EventActivityScheduled), ev(3, EventActivityScheduled)}, "step 2 is missing"},
		{"a step twice", []Event{ev(0, EventStarted), ev(1, EventActivityScheduled), ev(1, EventTimerScheduled)}, "step 1 recorded twice"},
		{"no start", []Event{ev(1, EventActivityScheduled)}, "0 started events"},
	} {
		var rep VerifyReport
		checkHistory("x", tc.evs, &rep)
		got := ""
		if len(rep.Violations) > 0 {
			got = rep.Violations[0].String()
		}
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: violations %v, want one saying %q", tc.name, rep.Violations, tc.want)
		}
	}
}

// TestPendingStepsAfterRetry: a retried step is pending again until its new outcome.
func TestPendingStepsAfterRetry(t *testing.T) {
	evs := []Event{{Kind: EventStarted}, {Seq: 1, Kind: EventActivityScheduled, Name: "a"}, {Seq: 1, Kind: EventActivityFailed},
		{Kind: EventFailed}, {Seq: 1, Kind: EventRetried}}
	if p := PendingSteps(evs); len(p) != 1 || p[0].Name != "a" {
		t.Fatalf("PendingSteps after a retry = %v, want step 1", p)
	}
	if p := PendingSteps(append(evs, Event{Seq: 1, Kind: EventActivityCompleted})); len(p) != 0 {
		t.Fatalf("PendingSteps after the retried step completed = %v, want none", p)
	}
}
