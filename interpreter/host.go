package interpreter

import (
	"encoding/json"
	"fmt"
	"time"

	"go.starlark.net/starlark"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/builtins"
)

// The builtins.Host side of a Run: what the Starlark builtins ask of the execution.

// Now implements builtins.Clock.
func (r *Run) Now() time.Time {
	if r.cfg.Now != nil {
		return r.cfg.Now()
	}
	return time.Now()
}

var kindEvents = map[string]backend.EventKind{
	builtins.KindActivity: backend.EventActivityScheduled,
	builtins.KindChild:    backend.EventChildScheduled,
	builtins.KindTimer:    backend.EventTimerScheduled,
	builtins.KindSignal:   backend.EventSignalWait,
}

func commandHash(c builtins.Command) string {
	if c.Kind == builtins.KindTimer || c.Kind == builtins.KindSignal {
		return Hash(c.Options)[:12]
	}
	return Hash(c.Args)[:12]
}

// nextSeq hands out the next sequence number, enforcing the history limit.
func (r *Run) nextSeq() (int, error) {
	if r.seq >= r.cfg.MaxHistory {
		return 0, fmt.Errorf("history limit: this execution has issued %d steps, the most one run may hold; a long-running loop should call continue_as_new(...) to go on with fresh history", r.cfg.MaxHistory)
	}
	r.seq++
	return r.seq, nil
}

// Defer implements builtins.Host.
func (r *Run) Defer(step *builtins.DeferredStep) { r.deferred = append(r.deferred, step) }

// Flush implements builtins.Host: deferred steps that are not held get their sequence
// numbers, in the order start() issued them.
func (r *Run) Flush(thread *starlark.Thread) error {
	for len(r.deferred) > 0 {
		d := r.deferred[0]
		r.deferred = r.deferred[1:]
		if d.Seq != 0 || d.Held {
			continue
		}
		seq, err := r.schedule(thread, d.Cmd)
		if err != nil {
			return err
		}
		d.Seq = seq
	}
	return nil
}

// Schedule implements builtins.Host.
func (r *Run) Schedule(thread *starlark.Thread, cmd builtins.Command) (int, error) {
	if err := r.Flush(thread); err != nil {
		return 0, err
	}
	return r.schedule(thread, cmd)
}

func (r *Run) schedule(thread *starlark.Thread, cmd builtins.Command) (int, error) {
	seq, err := r.nextSeq()
	if err != nil {
		return 0, err
	}
	kind := kindEvents[cmd.Kind]
	hash := commandHash(cmd)
	if cmd.Kind == builtins.KindSignal {
		var o builtins.SignalOptions
		_ = json.Unmarshal(cmd.Options, &o)
		r.timeouts[seq] = o.TimeoutMS > 0
	}
	if ev, ok := r.recorded[seq]; ok {
		var d ScheduledData
		_ = json.Unmarshal(ev.Data, &d)
		if ev.Kind != kind || ev.Name != cmd.Name || d.Hash != hash {
			return 0, r.diverge(&NonDeterminismError{Seq: seq, Recorded: describeEvent(ev), Current: describeCommand(cmd, hash), Pos: cmd.Pos},
				ev, callText(kind, cmd.Name, cmd.Args, cmd.Options))
		}
		r.resetSteps()
		return seq, nil
	}
	data, _ := json.Marshal(ScheduledData{Args: cmd.Args, Hash: hash, Pos: cmd.Pos, Options: cmd.Options})
	c := cmd
	r.pending = append(r.pending, Scheduled{Seq: seq, Kind: kind, Name: cmd.Name, Data: data, Command: &c})
	r.recorded[seq] = backend.Event{Seq: seq, Kind: kind, Name: cmd.Name, Data: data}
	if seq > r.maxSeq {
		r.maxSeq = seq
	}
	return seq, nil
}

// Await implements builtins.Host.
func (r *Run) Await(thread *starlark.Thread, seqs []int, n int) error {
	if err := r.Flush(thread); err != nil {
		return err
	}
	for {
		done := 0
		for _, s := range seqs {
			if r.outcomes[s].ok {
				done++
			}
		}
		if done >= n {
			r.resetSteps()
			return nil
		}
		if err := r.park(); err != nil {
			return err
		}
	}
}

// Outcome implements builtins.Host.
func (r *Run) Outcome(seq int) (builtins.Outcome, bool) {
	o := r.outcomes[seq]
	return o.o, o.ok
}

// First implements builtins.Host: of the seqs that have an outcome, the index of the
// one whose outcome came first in history.
func (r *Run) First(seqs []int) (int, bool) {
	best, bestAt := -1, int64(0)
	for i, s := range seqs {
		o := r.outcomes[s]
		if !o.ok {
			continue
		}
		if best < 0 || o.at < bestAt {
			best, bestAt = i, o.at
		}
	}
	return best, best >= 0
}

// CancelTimer implements builtins.Host.
func (r *Run) CancelTimer(seq int) { r.cancels = append(r.cancels, seq) }

// SideEffect implements builtins.Host.
func (r *Run) SideEffect(thread *starlark.Thread, name string, gen func() json.RawMessage) (json.RawMessage, error) {
	if err := r.Flush(thread); err != nil {
		return nil, err
	}
	seq, err := r.nextSeq()
	if err != nil {
		return nil, err
	}
	if ev, ok := r.recorded[seq]; ok {
		if ev.Kind != backend.EventSideEffect || ev.Name != name {
			return nil, r.diverge(&NonDeterminismError{Seq: seq, Recorded: describeEvent(ev), Current: name + "()", Pos: builtins.CallerPos(thread)},
				ev, name+"()")
		}
		return ev.Data, nil
	}
	v := gen()
	ev := backend.Event{Seq: seq, Kind: backend.EventSideEffect, Name: name, Data: v}
	r.pending = append(r.pending, Scheduled{Seq: seq, Kind: ev.Kind, Name: name, Data: v})
	r.recorded[seq] = ev
	r.outcomes[seq] = outcome{o: builtins.Outcome{Value: v}, ok: true}
	if seq > r.maxSeq {
		r.maxSeq = seq
	}
	return v, nil
}

// WaitSignal implements builtins.Host: it waits at seq for the next unconsumed signal
// called name (or the timeout timer of that seq) and returns the payload, or ok=false
// on timeout.
func (r *Run) WaitSignal(thread *starlark.Thread, seq int, name string) (json.RawMessage, bool, error) {
	for {
		if o := r.outcomes[seq]; o.ok {
			if r.received[seq] {
				return o.o.Value, true, nil
			}
			if o.o.Err != nil { // cancelled
				return nil, false, &builtins.StepError{Builtin: "wait_signal", Kind: builtins.KindSignal, Target: name, Seq: seq, Info: *o.o.Err}
			}
			return nil, false, nil
		}
		if !r.inboxLoaded && r.cfg.LoadSignals != nil {
			sigs, err := r.cfg.LoadSignals()
			if err != nil {
				return nil, false, fmt.Errorf("wait_signal: loading signals: %w", err)
			}
			r.inbox, r.inboxLoaded = sigs, true
		}
		for i, sg := range r.inbox {
			if sg.Name != name {
				continue
			}
			r.inbox = append(r.inbox[:i:i], r.inbox[i+1:]...)
			payload := sg.Payload
			if len(payload) == 0 {
				payload = json.RawMessage("null")
			}
			r.consumed = append(r.consumed, sg.ID)
			r.pending = append(r.pending, Scheduled{Seq: seq, Kind: backend.EventSignalReceived, Name: name, Data: payload})
			r.received[seq] = true
			r.outcomes[seq] = outcome{o: builtins.Outcome{Value: payload}, ok: true}
			if r.timeouts[seq] {
				r.cancels = append(r.cancels, seq)
			}
			r.resetSteps()
			return payload, true, nil
		}
		if err := r.park(); err != nil {
			return nil, false, err
		}
	}
}

// ContinueAsNew implements builtins.Host.
func (r *Run) ContinueAsNew(thread *starlark.Thread, args json.RawMessage) error {
	return &builtins.ContinueAsNewError{Args: args}
}

// Log implements builtins.Host: a line is written once; a replay skips the lines the
// execution already stored.
func (r *Run) Log(thread *starlark.Thread, msg string) {
	r.logIndex++
	if r.logIndex <= r.cfg.LogsCommitted {
		return
	}
	r.logs = append(r.logs, msg)
}

// Recorded returns the scheduled event of seq, as recorded or as issued by this run.
func (r *Run) Recorded(seq int) (backend.Event, bool) {
	ev, ok := r.recorded[seq]
	return ev, ok
}

// ChildEntry implements builtins.Host.
func (r *Run) ChildEntry(fn *starlark.Function) (string, error) { return r.prog.EntryName(fn) }

// CheckActivity implements builtins.Host.
func (r *Run) CheckActivity(name string) error {
	if r.cfg.CheckActivity == nil {
		return nil
	}
	return r.cfg.CheckActivity(name)
}
