package interpreter

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stent-go/stent/backend"
)

func compileFile(t *testing.T, src string) *Program {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "wf.star")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	b, sources, err := CollectBundle(file)
	if err != nil {
		t.Fatalf("CollectBundle: %v", err)
	}
	p, err := Compile(b, sources)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

// drive plays a worker: every scheduled activity completes with f(name, args).
func drive(t *testing.T, p *Program, args string, f func(name string, args json.RawMessage) json.RawMessage) (history []backend.Event, step *Step, advances int) {
	t.Helper()
	run, err := p.NewRun("main", json.RawMessage(args), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	var feed []backend.Event
	id := int64(0)
	for {
		advances++
		step = run.Advance(feed)
		feed = nil
		for _, s := range step.Scheduled {
			id++
			ev := backend.Event{ID: id, Seq: s.Seq, Kind: s.Kind, Name: s.Name, Data: s.Data}
			history = append(history, ev)
			feed = append(feed, ev)
			if s.Kind == backend.EventActivityScheduled {
				var d ScheduledData
				_ = json.Unmarshal(s.Data, &d)
				id++
				done := backend.Event{ID: id, Seq: s.Seq, Kind: backend.EventActivityCompleted, Name: s.Name, Data: f(s.Name, d.Args)}
				history = append(history, done)
				feed = append(feed, done)
			}
		}
		if step.Done {
			return history, step, advances
		}
		if advances > 1000 {
			t.Fatal("no progress")
		}
	}
}

const upper = `
def main(xs):
    out = []
    for x in xs:
        out.append(durable("upper", x))
    print("done", len(out))
    return out
`

func upperActivity(name string, args json.RawMessage) json.RawMessage {
	var a []string
	_ = json.Unmarshal(args, &a)
	b, _ := json.Marshal(strings.ToUpper(a[0]))
	return b
}

func TestLiveAndReplayAgree(t *testing.T) {
	p := compileFile(t, upper)
	history, step, _ := drive(t, p, `[["a","b","c"]]`, upperActivity)
	if step.Err != nil {
		t.Fatalf("unexpected failure: %v", step.Err.Message)
	}
	if got := string(step.Result); got != `["A","B","C"]` {
		t.Fatalf("result = %s, want [\"A\",\"B\",\"C\"]", got)
	}
	// A fresh run given the whole history finishes at once, scheduling nothing and
	// printing nothing again.
	run, _ := p.NewRun("main", json.RawMessage(`[["a","b","c"]]`), Config{LogsCommitted: 1})
	defer run.Close()
	replay := run.Advance(history)
	if !replay.Done || string(replay.Result) != `["A","B","C"]` || len(replay.Scheduled) != 0 || len(replay.Logs) != 0 {
		t.Fatalf("replay = done %v result %s scheduled %d logs %v; want done, same result, nothing new", replay.Done, replay.Result, len(replay.Scheduled), replay.Logs)
	}
}

func TestNonDeterminismNamesBothCalls(t *testing.T) {
	p := compileFile(t, upper)
	history, _, _ := drive(t, p, `[["a","b"]]`, upperActivity)
	other := compileFile(t, strings.Replace(upper, `durable("upper", x)`, `durable("lower", x)`, 1))
	run, _ := other.NewRun("main", json.RawMessage(`[["a","b"]]`), Config{})
	defer run.Close()
	step := run.Advance(history)
	if !step.Done || step.Err == nil || step.Err.Type != "nondeterminism" {
		t.Fatalf("want a nondeterminism failure, got %+v", step)
	}
	for _, want := range []string{`durable("upper"`, `durable("lower"`, "wf.star:5:"} {
		if !strings.Contains(step.Err.Message, want) {
			t.Errorf("message %q does not contain %q", step.Err.Message, want)
		}
	}
}

func TestStepLimit(t *testing.T) {
	p := compileFile(t, "def main():\n    while True:\n        pass\n")
	run, _ := p.NewRun("main", json.RawMessage(`[]`), Config{StepLimit: 10000})
	defer run.Close()
	step := run.Advance(nil)
	if !step.Done || step.Err == nil || !strings.Contains(step.Err.Message, "step limit") || !strings.Contains(step.Err.Message, "wf.star:") {
		t.Fatalf("want a step-limit failure with a position, got %+v", step.Err)
	}
}

func TestCloseParkedRun(t *testing.T) {
	p := compileFile(t, upper)
	run, _ := p.NewRun("main", json.RawMessage(`[["a"]]`), Config{})
	step := run.Advance(nil)
	if step.Done || len(step.Scheduled) != 1 {
		t.Fatalf("want one scheduled step, got %+v", step)
	}
	run.Close() // must not hang
}
