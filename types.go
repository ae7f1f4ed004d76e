package stent

import (
	"time"

	"github.com/stent-go/stent/internal/engine"
)

// Limits and defaults.
const (
	// DefaultCancelGrace is how long a cancelled script may run its compensations
	// before the execution is ended anyway.
	DefaultCancelGrace = engine.DefaultCancelGrace
	// DefaultCatchup is the catch-up window of a schedule created without one.
	DefaultCatchup = engine.DefaultCatchup
	// DefaultCrashLimit is how many times a step may kill the worker running it
	// before its execution is failed (see WithCrashLimit).
	DefaultCrashLimit = engine.DefaultCrashLimit
	// DefaultMaxPayload bounds one value crossing a checkpoint (execution arguments,
	// a step's arguments or result, a signal's payload, an execution's result).
	DefaultMaxPayload = engine.DefaultMaxPayload
	// DefaultScriptMemory is the memory one step of a script may take by default.
	DefaultScriptMemory = engine.DefaultScriptMemory
	// MaxIDBytes bounds an execution ID, the same on every backend.
	MaxIDBytes = engine.MaxIDBytes
)

// Result is how an execution ended: its status, its value as JSON when it completed,
// or why it did not. Decode unmarshals the value; Err returns the *ExecutionError of
// an execution that did not complete.
type Result = engine.Result

// ExecutionError is an execution that failed, was cancelled or timed out.
type ExecutionError = engine.ExecutionError

// InputError marks an error caused by what the caller passed (a script that does not
// compile, arguments that are not JSON, an unknown database scheme). The CLI exits 2.
type InputError = engine.InputError

// WorkerOptions configures Serve (and Bootstrap, through WithWorkerOptions). Zero
// values take the defaults.
type WorkerOptions = engine.WorkerOptions

// WorkerInfo describes a live worker (see Engine.Workers).
type WorkerInfo = engine.WorkerInfo

// VirtualClock is the clock of an engine opened WithVirtualTime: it stands still while
// work is runnable and jumps to the next due task (timer, retry, delayed start) when
// the engine's worker is idle, so durable sleeps of days finish at once in tests.
type VirtualClock = engine.VirtualClock

// NewVirtualClock returns a clock standing at start.
func NewVirtualClock(start time.Time) *VirtualClock { return engine.NewVirtualClock(start) }

// Wait is one thing a running execution waits for, as shown by `stent status`.
type Wait = engine.Wait

// Description is what `stent status` shows of an execution beside its row: what it
// waits for, its custom status and tags, the live workers it lacks and its resets.
type Description = engine.Description

// WaitKind says what a Wait is for.
type WaitKind = engine.WaitKind

// The kinds of Wait: what a running execution waits for.
const (
	WaitStart    = engine.WaitStart    // a delayed execution waits for its start time (At)
	WaitActivity = engine.WaitActivity // an activity attempt runs on Worker, or the next is due At
	WaitTimer    = engine.WaitTimer    // a sleep() fires At
	WaitSignal   = engine.WaitSignal   // wait_signal(Name) times out At (zero: no timeout)
	WaitChild    = engine.WaitChild    // a child execution (ChildID, ChildStatus) has not reported yet
	WaitWorkflow = engine.WaitWorkflow // the script waits for a worker to run its next workflow task
)

// Schedule is a cron schedule that dispatches a pinned script at every tick.
type Schedule = engine.Schedule

// ScheduleOptions configures CreateSchedule.
type ScheduleOptions = engine.ScheduleOptions

// ScheduleUpdate changes a schedule (see UpdateSchedule); nil fields stay as they are.
type ScheduleUpdate = engine.ScheduleUpdate

// ScheduleTick records what one tick of a schedule did.
type ScheduleTick = engine.ScheduleTick

// PruneOptions selects what Prune deletes.
type PruneOptions = engine.PruneOptions

// PruneReport counts what Prune deleted (or would delete, with DryRun).
type PruneReport = engine.PruneReport

// ReplayReport is the outcome of Replay and Upgrade: whether the recorded history
// replays against the script, and the first divergence when it does not.
type ReplayReport = engine.ReplayReport

// ErrIDConflict is what Dispatch and Run return (inside an *InputError, as an
// *IDConflictError) when their ID names an execution of another script, entry function
// or other arguments. An ID is an idempotency key: the same request gets the existing
// execution back; a different one under the same key is refused and changes nothing.
var ErrIDConflict = engine.ErrIDConflict

// IDConflictError names the execution that holds an ID and what differs.
type IDConflictError = engine.IDConflictError

// ResetOptions tunes Reset: the script to run instead of the pinned one.
type ResetOptions = engine.ResetOptions

// ResetReport is what Reset did: the new execution, the step it runs from.
type ResetReport = engine.ResetReport

// ResetMismatchError is a reset refused because the script does not replay the
// steps before the step reset to; it names the first differing step.
type ResetMismatchError = engine.ResetMismatchError
