package stenttest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/interpreter"
)

// ReplayCompatible fails t when script (a path; the files it loads come along) does not
// agree with a recorded history of its entry point main: the same check `stent replay
// ID --script` and `stent upgrade` make. Keep histories of real executions (`stent
// history ID --json > testdata/x.jsonl`, read back with ReadHistory) to check in CI that
// a change to a script is safe for the executions already running it. The arguments
// come from the history's started event.
func ReplayCompatible(t testing.TB, script string, history []backend.Event) {
	t.Helper()
	if err := replayCompatible(script, history); err != nil {
		t.Errorf("stenttest.ReplayCompatible: %v", err)
	}
}

func replayCompatible(script string, history []backend.Event) error {
	path, err := resolveScript(".", script)
	if err != nil {
		return err
	}
	bundle, sources, err := interpreter.CollectBundle(path)
	if err != nil {
		return err
	}
	prog, err := interpreter.Compile(bundle, sources)
	if err != nil {
		return err
	}
	if len(history) == 0 || history[0].Kind != backend.EventStarted {
		return fmt.Errorf("the history must begin with its started event")
	}
	events := append([]backend.Event(nil), history...)
	for i := range events {
		if events[i].ID == 0 { // written by hand: history order is list order
			events[i].ID = int64(i + 1)
		}
	}
	div, err := prog.CheckHistory("main", history[0].Data, events)
	if err != nil {
		return err
	}
	if div != nil {
		return fmt.Errorf("%s is not compatible with the history: %s", script, div)
	}
	return nil
}

// ReadHistory reads a history as `stent history ID --json` prints it: one JSON event
// per line.
func ReadHistory(path string) ([]backend.Event, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []backend.Event
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 64<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var ev backend.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, ev)
	}
	return out, sc.Err()
}
