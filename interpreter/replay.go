package interpreter

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/builtins"
)

// Divergence is where a script stops agreeing with a recorded history: the first step
// whose call differs from the recorded one.
type Divergence struct {
	Seq int `json:"seq"`
	// Recorded is the call history holds at Seq, with its arguments; RecordedPos is
	// where the script that recorded it made it.
	Recorded    string `json:"recorded"`
	RecordedPos string `json:"recorded_pos,omitempty"`
	// Current is what the script does now at Seq ("return" when it ends, "wait" when
	// it waits before issuing the recorded step); Pos is where.
	Current string `json:"current"`
	Pos     string `json:"pos"`
}

func (d *Divergence) String() string {
	rec := d.Recorded
	if d.RecordedPos != "" {
		rec += " at " + d.RecordedPos
	}
	return fmt.Sprintf("step %d: history has %s; the script now does %s at %s", d.Seq, rec, d.Current, d.Pos)
}

// diverge remembers the first divergence of the run and returns err.
func (r *Run) diverge(err *NonDeterminismError, ev backend.Event, current string) error {
	if r.divergence == nil {
		rec, pos := recordedCall(ev)
		r.divergence = &Divergence{Seq: err.Seq, Recorded: rec, RecordedPos: pos, Current: current, Pos: err.Pos}
	}
	return err
}

// recordedCall writes a recorded step as the script called it, and where.
func recordedCall(ev backend.Event) (call, pos string) {
	var d ScheduledData
	_ = json.Unmarshal(ev.Data, &d)
	if ev.Kind == backend.EventSideEffect {
		return ev.Name + "()", ""
	}
	return callText(ev.Kind, ev.Name, d.Args, d.Options), d.Pos
}

// callText writes a step as the script called it, with its arguments.
func callText(kind backend.EventKind, name string, args, options json.RawMessage) string {
	switch kind {
	case backend.EventTimerScheduled:
		var o builtins.TimerOptions
		_ = json.Unmarshal(options, &o)
		return fmt.Sprintf("sleep(%s)", time.Duration(o.DurationMS)*time.Millisecond)
	case backend.EventSignalWait:
		return fmt.Sprintf("wait_signal(%q)", name)
	}
	var list []json.RawMessage
	_ = json.Unmarshal(args, &list)
	parts := []string{name}
	if kind == backend.EventActivityScheduled {
		parts[0] = fmt.Sprintf("%q", name)
	}
	for _, a := range list {
		parts = append(parts, string(a))
	}
	return "durable(" + strings.Join(parts, ", ") + ")"
}

// CheckHistory replays events (an execution's whole history) against the program's
// entry with args and reports the first divergence, or nil when the script agrees with
// every recorded step. The script may go on past the history (new steps are not
// recorded anywhere) or fail: only disagreement with what was recorded counts. A script
// that waits before issuing steps the history holds diverges too.
func (p *Program) CheckHistory(entry string, args json.RawMessage, events []backend.Event) (*Divergence, error) {
	run, err := p.NewRun(entry, args, Config{ExecutionID: "replay"})
	if err != nil {
		return nil, err
	}
	defer run.Close()
	step := run.Advance(events)
	if run.divergence != nil {
		return run.divergence, nil
	}
	if !step.Done && run.seq < run.maxSeq {
		rec, pos := recordedCall(run.recorded[run.seq+1])
		return &Divergence{Seq: run.seq + 1, Recorded: rec, RecordedPos: pos, Current: "a wait for an earlier step", Pos: run.waitingAt}, nil
	}
	return nil, nil
}
