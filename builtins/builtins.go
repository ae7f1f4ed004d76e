// Package builtins defines the Starlark names a workflow script sees: durable, start,
// gather, wait_any, attempt, workflow, sleep, now, uuid, random, retry_policy, log,
// set_status, set_tags, and the json, math and time modules.
//
// Builtins own argument checking and the conversion of values across checkpoints. They
// do not own history: every call that must be recorded goes through the Host installed
// on the thread by package interpreter, which replays or schedules it.
package builtins

import (
	"encoding/json"
	"fmt"
	"time"

	starjson "go.starlark.net/lib/json"
	starmath "go.starlark.net/lib/math"
	startime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"

	"github.com/stent-go/stent/backend"
)

// Command kinds a script can issue.
const (
	KindActivity = "activity"
	KindChild    = "child"
	KindTimer    = "timer"
	KindSignal   = "signal"
)

// Command is a step a script asks for. The host gives it a sequence number, checks it
// against history on replay and records it otherwise.
type Command struct {
	Kind    string          // KindActivity, KindChild or KindTimer
	Name    string          // activity name, child entry, or "sleep"
	Args    json.RawMessage // JSON array of arguments (activity, child)
	Options json.RawMessage // CallOptions for activities; TimerOptions for timers
	Pos     string          // file:line:col of the call in the script
}

// CallOptions are the per-call options of an activity step, as recorded.
type CallOptions struct {
	Retry              *RetrySpec `json:"retry,omitempty"`
	TimeoutMS          int64      `json:"timeout_ms,omitempty"`
	HeartbeatTimeoutMS int64      `json:"heartbeat_timeout_ms,omitempty"`
	Cached             bool       `json:"cached,omitempty"`
	CacheTTLMS         int64      `json:"cache_ttl_ms,omitempty"`
	Queue              string     `json:"queue,omitempty"`
	Priority           int        `json:"priority,omitempty"`
	// ScheduleToStartMS fails the step with a timeout when no worker starts an attempt
	// within it (the backend computes the task's deadline from this key).
	ScheduleToStartMS int64 `json:"schedule_to_start_ms,omitempty"`
}

// empty reports whether no option is set.
func (o CallOptions) empty() bool { return o == (CallOptions{}) }

// activityOnly reports whether an option that only activities take is set.
func (o CallOptions) activityOnly() bool {
	o.Queue, o.Priority = "", 0
	return !o.empty()
}

// RetrySpec is a retry policy as written in a script.
type RetrySpec struct {
	MaxAttempts    int      `json:"max_attempts,omitempty"`
	InitialDelayMS int64    `json:"initial_delay_ms,omitempty"`
	BackoffFactor  float64  `json:"backoff_factor,omitempty"`
	MaxDelayMS     int64    `json:"max_delay_ms,omitempty"`
	Jitter         float64  `json:"jitter,omitempty"`
	NonRetryable   []string `json:"non_retryable,omitempty"`
}

// TimerOptions are recorded with a timer command.
type TimerOptions struct {
	DurationMS int64 `json:"duration_ms"`
}

// SignalOptions are recorded with a signal wait.
type SignalOptions struct {
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// ContinueAsNewError unwinds a script that called continue_as_new.
type ContinueAsNewError struct{ Args json.RawMessage }

func (e *ContinueAsNewError) Error() string { return "continue_as_new" }

// Outcome is the recorded result of a step.
type Outcome struct {
	Value json.RawMessage
	Err   *backend.ErrorInfo
}

// Host is implemented by the interpreter; builtins reach it through the thread.
type Host interface {
	// Schedule gives cmd the next sequence number. On replay it checks cmd against the
	// recorded command (a mismatch is a non-determinism error); otherwise it records cmd
	// to be committed when the script next waits. It never blocks.
	Schedule(thread *starlark.Thread, cmd Command) (seq int, err error)
	// Await blocks until at least n of seqs have an outcome.
	Await(thread *starlark.Thread, seqs []int, n int) error
	// Outcome returns the recorded outcome of seq, if any.
	Outcome(seq int) (Outcome, bool)
	// First returns the index of the seq whose outcome came first in history, among
	// those that have one (ok=false when none has).
	First(seqs []int) (index int, ok bool)
	// Defer queues a step start() issued; Flush gives it a sequence number.
	Defer(step *DeferredStep)
	// Flush schedules the deferred steps that are not held, in order. Schedule,
	// SideEffect and Await flush first, and so does the end of the script.
	Flush(thread *starlark.Thread) error
	// CancelTimer drops the pending timer of seq (a timeout no longer needed).
	CancelTimer(seq int)
	// SideEffect returns the recorded value of the next side effect, or records gen().
	SideEffect(thread *starlark.Thread, name string, gen func() json.RawMessage) (json.RawMessage, error)
	// WaitSignal blocks until the signal wait at seq resolves: with the payload of the
	// next unconsumed signal called name, or ok=false when its timeout fired.
	WaitSignal(thread *starlark.Thread, seq int, name string) (payload json.RawMessage, ok bool, err error)
	// ContinueAsNew returns the error that ends this run and restarts the execution.
	ContinueAsNew(thread *starlark.Thread, args json.RawMessage) error
	// Log writes a line to the execution's log, once (not again on replay).
	Log(thread *starlark.Thread, msg string)
	// ChildEntry names a script function as an entry point for a child execution.
	ChildEntry(fn *starlark.Function) (string, error)
	// CheckActivity returns an error naming the registered activities if name is unknown.
	CheckActivity(name string) error
	// WorkflowEntry resolves workflow(path, entry=entry) called in file from to a child
	// entry ("path:fn"), checking the file is pinned with the execution and defines entry.
	WorkflowEntry(from, path, entry string) (string, error)
}

const hostKey = "stent.host"

// SetHost installs the host on a thread, and makes the time module's now() read the
// recorded clock.
func SetHost(thread *starlark.Thread, h Host) {
	thread.SetLocal(hostKey, h)
	startime.SetNow(thread, func() (time.Time, error) { return recordedNow(thread, h) })
}

func host(thread *starlark.Thread, b *starlark.Builtin) (Host, error) {
	h, _ := thread.Local(hostKey).(Host)
	if h == nil {
		return nil, fmt.Errorf("%s: can only be called while a workflow function runs, not at the top level of a file", b.Name())
	}
	return h, nil
}

// Universe returns the predeclared names of a workflow script.
func Universe() starlark.StringDict {
	return starlark.StringDict{
		"durable":         starlark.NewBuiltin("durable", durable),
		"start":           starlark.NewBuiltin("start", start),
		"gather":          starlark.NewBuiltin("gather", gather),
		"wait_any":        starlark.NewBuiltin("wait_any", waitAny),
		"set_status":      starlark.NewBuiltin("set_status", setStatus),
		"set_tags":        starlark.NewBuiltin("set_tags", setTags),
		"workflow":        starlark.NewBuiltin("workflow", workflowBuiltin),
		"attempt":         starlark.NewBuiltin("attempt", attempt),
		"sleep":           starlark.NewBuiltin("sleep", sleep),
		"now":             starlark.NewBuiltin("now", now),
		"uuid":            starlark.NewBuiltin("uuid", uuidBuiltin),
		"random":          starlark.NewBuiltin("random", random),
		"retry_policy":    starlark.NewBuiltin("retry_policy", retryPolicy),
		"log":             starlark.NewBuiltin("log", logBuiltin),
		"activity":        starlark.NewBuiltin("activity", activityBuiltin),
		"wait_signal":     starlark.NewBuiltin("wait_signal", waitSignal),
		"continue_as_new": starlark.NewBuiltin("continue_as_new", continueAsNew),
		"json":            starjson.Module,
		"math":            starmath.Module,
		"time":            startime.Module,
	}
}

// CallerPos returns the file:line:col of the Starlark code that called the running builtin.
func CallerPos(thread *starlark.Thread) string {
	if thread.CallStackDepth() < 2 {
		return "?"
	}
	return thread.CallFrame(1).Pos.String()
}
