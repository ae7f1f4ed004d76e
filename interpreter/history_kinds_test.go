package interpreter

import (
	"encoding/json"
	"testing"

	"github.com/stent-go/stent/backend"
)

// replayOnce gives a fresh run of src the whole history and returns its step.
func replayOnce(t *testing.T, src string, history []backend.Event) *Step {
	t.Helper()
	run, err := compileFile(t, src).NewRun("main", json.RawMessage(`[]`), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	return run.Advance(history)
}

// scheduledOnce is the first event the script schedules, as recorded.
func scheduledOnce(t *testing.T, src string) backend.Event {
	t.Helper()
	step := replayOnce(t, src, nil)
	if len(step.Scheduled) != 1 {
		t.Fatalf("scheduled %d commands, want 1", len(step.Scheduled))
	}
	s := step.Scheduled[0]
	return backend.Event{ID: 2, Seq: s.Seq, Kind: s.Kind, Name: s.Name, Data: s.Data}
}

// activity_attempt_failed events are informational: a history with them replays as
// one without them.
func TestReplayIgnoresFailedAttempts(t *testing.T) {
	const src = "def main():\n    return durable(\"charge\")\n"
	sched := scheduledOnce(t, src)
	attempt := *backend.AttemptFailedEvent(1, "charge", backend.AttemptData{Attempt: 1}, &backend.ErrorInfo{Message: "503"})
	history := []backend.Event{
		{ID: 1, Kind: backend.EventStarted},
		sched,
		{ID: 3, Seq: 1, Kind: attempt.Kind, Name: attempt.Name, Data: attempt.Data, Error: attempt.Error},
		{ID: 4, Seq: 1, Kind: backend.EventActivityCompleted, Name: "charge", Data: json.RawMessage(`"ok"`)},
	}
	step := replayOnce(t, src, history)
	if !step.Done || step.Err != nil || string(step.Result) != `"ok"` || len(step.Scheduled) != 0 {
		t.Fatalf("replay = done %v err %v result %s scheduled %d; want done with \"ok\"", step.Done, step.Err, step.Result, len(step.Scheduled))
	}
}

// A signal wait that timed out replays from signal_timed_out, and from the timer_fired
// that older histories hold.
func TestReplayAcceptsBothSignalTimeouts(t *testing.T) {
	const src = "def main():\n    return wait_signal(\"go\", timeout=\"1h\")\n"
	sched := scheduledOnce(t, src)
	for _, fired := range []backend.Event{
		{ID: 3, Seq: 1, Kind: backend.EventSignalTimedOut, Name: "go"},
		{ID: 3, Seq: 1, Kind: backend.EventTimerFired, Name: "sleep"},
	} {
		step := replayOnce(t, src, []backend.Event{{ID: 1, Kind: backend.EventStarted}, sched, fired})
		if !step.Done || step.Err != nil || string(step.Result) != "null" {
			t.Fatalf("replay with %s = done %v err %v result %s; want done with None", fired.Kind, step.Done, step.Err, step.Result)
		}
	}
}
