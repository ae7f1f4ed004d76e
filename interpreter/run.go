package interpreter

import (
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"time"

	"go.starlark.net/starlark"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/builtins"
)

// defaultStepLimit bounds the Starlark steps a script may take between two checkpoints.
const defaultStepLimit = 5_000_000

// Config tunes a run.
type Config struct {
	// ExecutionID names the thread, for messages.
	ExecutionID string
	// StepLimit bounds the Starlark steps between two checkpoints (0: 5,000,000).
	StepLimit uint64
	// CheckActivity returns an error naming the registered activities when name is
	// unknown. Nil accepts every name.
	CheckActivity func(name string) error
	// Now is the clock that now() records (nil: time.Now).
	Now func() time.Time
	// LogsCommitted is how many log lines of this execution are already stored; a
	// replay does not write them again.
	LogsCommitted int
	// MaxHistory bounds the steps (sequence numbers) one run may issue; past it the
	// execution fails with a hint to use continue_as_new (0: 100,000).
	MaxHistory int
	// LoadSignals returns the execution's unconsumed signals, oldest first. It is called
	// at most once per Advance, only when the script waits for a signal.
	LoadSignals func() ([]backend.Signal, error)
	// MemoryLimit bounds the memory one step (one Advance) may take, in bytes; past it
	// the step fails with "memory limit exceeded" at the script line it reached
	// (0: DefaultMemoryLimit). See watchMemory for how it is measured.
	MemoryLimit uint64
}

// Scheduled is a command or side effect the script issued that must be recorded.
type Scheduled struct {
	Seq     int
	Kind    backend.EventKind // activity_scheduled, child_scheduled, timer_scheduled or side_effect
	Name    string
	Data    json.RawMessage // the event's Data as it will be stored
	Command *builtins.Command
}

// ScheduledData is the Data of *_scheduled events.
type ScheduledData struct {
	Args    json.RawMessage `json:"args,omitempty"`
	Hash    string          `json:"hash"`
	Pos     string          `json:"pos"`
	Options json.RawMessage `json:"options,omitempty"`
}

// Step is what one Advance produced.
type Step struct {
	Scheduled []Scheduled
	Logs      []string
	// ConsumedSignals are signals the script received in this step; the commit marks
	// them consumed.
	ConsumedSignals []int64
	// CancelTimers are the seqs of signal-wait timeouts that are no longer needed.
	CancelTimers []int
	// ContinueAsNew, when set with Done, restarts the execution with these arguments
	// and a fresh history.
	ContinueAsNew json.RawMessage
	// Done reports the script ended: with Result, or with Err when it failed.
	Done   bool
	Result json.RawMessage
	Err    *backend.ErrorInfo
	// Cancelled, with Err, reports that the script ended on the cancellation it was
	// asked for: the execution ends cancelled, not failed.
	Cancelled bool
}

type outcome struct {
	o  builtins.Outcome
	ok bool
	// at is the ID of the history event that brought the outcome: wait_any picks the
	// future whose outcome came first in history, so a replay picks the same one.
	at int64
}

var errAborted = errors.New("run aborted")

// Run is one execution's script in progress. Between Advance calls its goroutine is
// parked inside the builtin that waits, so resuming costs no replay.
type Run struct {
	prog   *Program
	cfg    Config
	fn     *starlark.Function
	args   starlark.Tuple
	thread *starlark.Thread

	// history index, mutated only while the script goroutine is parked
	recorded      map[int]backend.Event // scheduled commands and side effects by seq
	outcomes      map[int]outcome
	maxSeq        int // highest recorded seq
	resolvedBelow int // every command with a smaller seq has its outcome (see AwaitsOnly)

	// script-side state, touched only by the script goroutine while it runs
	seq      int
	logIndex int
	pending  []Scheduled
	logs     []string
	consumed []int64
	cancels  []int

	// deferred are steps start() issued that have no sequence number yet; they get one
	// (in order) before anything else takes one or the script waits or ends.
	deferred []*builtins.DeferredStep

	inbox       []backend.Signal
	inboxLoaded bool
	received    map[int]bool // seqs resolved by a signal (not a timeout)
	timeouts    map[int]bool // signal waits that have a timeout timer

	started, done bool
	final         Step
	divergence    *Divergence // the first non-determinism this run found
	// cancelled holds the steps a cancellation request answered; cancelSeen is set once
	// the execution's cancel_requested event is ingested.
	cancelled  map[int]bool
	cancelSeen bool
	waitingAt  string // where the script last parked
	// The script runs as a coroutine (iter.Pull): Advance switches to it and it
	// switches back when it parks or ends, with no trip through the scheduler.
	next  func() (struct{}, bool)
	stop  func()
	yield func(struct{}) bool
}

// NewRun prepares a run of entry with JSON array args. Nothing runs until Advance.
func (p *Program) NewRun(entry string, args json.RawMessage, cfg Config) (*Run, error) {
	fn, err := p.Entry(entry)
	if err != nil {
		return nil, err
	}
	targs, err := builtins.ArgsFromJSON(args)
	if err != nil {
		return nil, fmt.Errorf("arguments of %s: %w", entry, err)
	}
	if cfg.StepLimit == 0 {
		cfg.StepLimit = defaultStepLimit
	}
	if cfg.MaxHistory == 0 {
		cfg.MaxHistory = 100_000
	}
	if cfg.MemoryLimit == 0 {
		cfg.MemoryLimit = DefaultMemoryLimit
	}
	r := &Run{
		prog: p, cfg: cfg, fn: fn, args: targs,
		recorded:  map[int]backend.Event{},
		outcomes:  map[int]outcome{},
		received:  map[int]bool{},
		cancelled: map[int]bool{},
		timeouts:  map[int]bool{},
	}
	r.thread = &starlark.Thread{
		Name:  cfg.ExecutionID,
		Print: func(t *starlark.Thread, msg string) { r.Log(t, msg) },
		Load: func(*starlark.Thread, string) (starlark.StringDict, error) {
			return nil, errors.New("load() is only allowed at the top level of a file")
		},
		OnMaxSteps: func(t *starlark.Thread) {
			t.Cancel(fmt.Sprintf("step limit exceeded: more than %d Starlark steps without reaching a checkpoint (durable, sleep, ...); is there an infinite loop?", r.cfg.StepLimit))
		},
	}
	builtins.SetHost(r.thread, r)
	return r, nil
}

// Advance feeds new history events to the run and lets the script continue until it
// waits for something not recorded yet, or ends. Events already seen are ignored.
func (r *Run) Advance(events []backend.Event) *Step {
	if r.done {
		s := r.final
		return &s
	}
	r.ingest(events)
	r.inboxLoaded = false
	stopWatch := watchMemory(r.thread, r.cfg.MemoryLimit)
	if !r.started {
		r.started = true
		r.next, r.stop = iter.Pull(func(yield func(struct{}) bool) {
			r.yield = yield
			r.main()
		})
	}
	_, parked := r.next()
	stopWatch()
	step := &Step{Scheduled: r.pending, Logs: r.logs, ConsumedSignals: r.consumed, CancelTimers: r.cancels}
	r.pending, r.logs, r.consumed, r.cancels = nil, nil, nil, nil
	if !parked {
		r.done = true
		step.Done, step.Result, step.Err, step.ContinueAsNew, step.Cancelled = true, r.final.Result, r.final.Err, r.final.ContinueAsNew, r.final.Cancelled
		if step.ContinueAsNew != nil {
			// The new run starts from nothing: steps scheduled after the last wait are dropped.
			step.Scheduled, step.ConsumedSignals, step.CancelTimers = nil, nil, nil
		}
		r.final = Step{Done: true, Result: step.Result, Err: step.Err, ContinueAsNew: step.ContinueAsNew, Cancelled: step.Cancelled}
	}
	return step
}

// Close stops a parked script goroutine. The run cannot be used afterwards.
func (r *Run) Close() {
	if r.started && !r.done {
		r.done = true
		r.stop() // park sees it and unwinds the script
	}
}

func (r *Run) ingest(events []backend.Event) {
	for _, ev := range events {
		switch ev.Kind {
		case backend.EventActivityScheduled, backend.EventChildScheduled, backend.EventTimerScheduled, backend.EventSignalWait:
			r.recorded[ev.Seq] = ev
		case backend.EventSignalReceived:
			// A received signal beats a timeout recorded for the same wait: the live run
			// that consumed it returned the payload, whatever the timer did meanwhile.
			r.outcomes[ev.Seq] = outcome{o: builtins.Outcome{Value: ev.Data}, ok: true, at: ev.ID}
			r.received[ev.Seq] = true
		case backend.EventSideEffect:
			r.recorded[ev.Seq] = ev
			r.outcomes[ev.Seq] = outcome{o: builtins.Outcome{Value: ev.Data}, ok: true}
		case backend.EventCancelRequested:
			r.cancelRequested(ev)
			continue
		case backend.EventActivityCompleted, backend.EventChildCompleted, backend.EventTimerFired, backend.EventSignalTimedOut:
			// A signal wait's timeout is signal_timed_out, or timer_fired in older histories.
			if r.outcomes[ev.Seq].ok {
				continue
			}
			r.outcomes[ev.Seq] = outcome{o: builtins.Outcome{Value: ev.Data, Err: ev.Error}, ok: true, at: ev.ID}
		case backend.EventRetried:
			// stent retry: the step's recorded failure no longer counts; it runs again.
			if ev.Seq > 0 {
				delete(r.outcomes, ev.Seq)
			}
			continue
		case backend.EventActivityFailed:
			if r.cancelled[ev.Seq] {
				continue // the cancellation answered this step already
			}
			info := ev.Error
			if info == nil {
				info = &backend.ErrorInfo{Message: "activity failed"}
			}
			r.outcomes[ev.Seq] = outcome{o: builtins.Outcome{Err: info}, ok: true, at: ev.ID}
		case backend.EventActivityAttemptFailed:
			// Informational: a failed attempt that was retried. The step's outcome is
			// its activity_completed or activity_failed.
			continue
		case backend.EventDeadLetterReplayed:
			// The step runs again: its recorded failure no longer counts; the outcome is
			// whatever follows.
			delete(r.outcomes, ev.Seq)
			continue
		default:
			continue
		}
		if ev.Seq > r.maxSeq && (ev.Kind == backend.EventActivityScheduled || ev.Kind == backend.EventChildScheduled ||
			ev.Kind == backend.EventTimerScheduled || ev.Kind == backend.EventSideEffect || ev.Kind == backend.EventSignalWait) {
			r.maxSeq = ev.Seq
		}
	}
}

func (r *Run) main() {
	var (
		v   starlark.Value
		err error
	)
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("internal error: %v", p)
			}
		}()
		r.resetSteps()
		v, err = starlark.Call(r.thread, r.fn, r.args, nil)
		if err == nil {
			// Futures nobody waited for are scheduled as start() always did.
			err = r.Flush(r.thread)
		}
	}()
	if errors.Is(err, errAborted) {
		return
	}
	var can *builtins.ContinueAsNewError
	if errors.As(err, &can) {
		r.final = Step{Done: true, ContinueAsNew: can.Args}
		return
	}
	if err == nil && r.seq < r.maxSeq {
		ev := r.recorded[r.seq+1]
		err = r.diverge(&NonDeterminismError{
			Seq:      r.seq + 1,
			Recorded: describeEvent(ev),
			Current:  fmt.Sprintf("%s returns (the script ended)", r.fn.Name()),
			Pos:      r.fn.Position().String(),
		}, ev, "return")
	}
	if err != nil {
		r.final = Step{Done: true, Err: errorInfo(err), Cancelled: r.endsCancelled(err)}
	} else if res, jerr := builtins.ToJSON(v, "the return value of "+r.fn.Name()); jerr != nil {
		r.final = Step{Done: true, Err: &backend.ErrorInfo{Type: "script", Message: fmt.Sprintf("%s: %v", r.prog.returnPos(r.fn), jerr)}}
	} else {
		r.final = Step{Done: true, Result: res}
	}
}

func (r *Run) resetSteps() {
	r.thread.SetMaxExecutionSteps(r.thread.ExecutionSteps() + r.cfg.StepLimit)
}

// park hands control back to Advance and waits to be resumed.
func (r *Run) park() error {
	r.waitingAt = builtins.CallerPos(r.thread)
	if !r.yield(struct{}{}) {
		r.thread.Cancel("execution evicted from this worker")
		return errAborted
	}
	return nil
}
