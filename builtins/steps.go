package builtins

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.starlark.net/starlark"

	"github.com/stent-go/stent/backend"
)

// StepError is the error a failed step raises in the script. It carries the recorded
// failure so the execution's own failure can keep the activity's message and type.
type StepError struct {
	Builtin string
	Kind    string // KindActivity or KindChild
	Target  string
	Seq     int
	Info    backend.ErrorInfo
}

func (e *StepError) Error() string {
	if e.Info.Type == "cancelled" && e.Kind != KindChild {
		return fmt.Sprintf("%s: cancelled: %s", e.Builtin, e.Info.Message)
	}
	what := fmt.Sprintf("activity %q", e.Target)
	if e.Kind == KindChild {
		what = fmt.Sprintf("child workflow %s", e.Target)
	}
	msg := e.Info.Message
	if e.Info.Attempts > 1 {
		return fmt.Sprintf("%s: %s failed after %d attempts: %s", e.Builtin, what, e.Info.Attempts, msg)
	}
	return fmt.Sprintf("%s: %s failed: %s", e.Builtin, what, msg)
}

func parseStep(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (Host, Command, error) {
	h, err := host(thread, b)
	if err != nil {
		return nil, Command{}, err
	}
	if len(args) == 0 {
		return nil, Command{}, fmt.Errorf("%s: missing target (an activity name or a function of this script)", b.Name())
	}
	cmd := Command{Pos: CallerPos(thread)}
	switch t := args[0].(type) {
	case starlark.String:
		cmd.Kind, cmd.Name = KindActivity, string(t)
		if err := h.CheckActivity(cmd.Name); err != nil {
			return nil, Command{}, fmt.Errorf("%s: %w", b.Name(), err)
		}
	case *ActivityRef:
		cmd.Kind, cmd.Name = KindActivity, t.name
		if err := h.CheckActivity(cmd.Name); err != nil {
			return nil, Command{}, fmt.Errorf("%s: %w", b.Name(), err)
		}
	case *starlark.Function:
		entry, err := h.ChildEntry(t)
		if err != nil {
			return nil, Command{}, fmt.Errorf("%s: %w", b.Name(), err)
		}
		cmd.Kind, cmd.Name = KindChild, entry
	case *WorkflowTarget:
		if len(args) > 1 {
			return nil, Command{}, fmt.Errorf("%s: pass the arguments of child workflow %s to workflow(), not to %s", b.Name(), t.entry, b.Name())
		}
		cmd.Kind, cmd.Name = KindChild, t.entry
	default:
		return nil, Command{}, fmt.Errorf("%s: target must be an activity name (string), a function of this script or a workflow(...), got %s", b.Name(), args[0].Type())
	}
	var opts CallOptions
	if w, ok := args[0].(*WorkflowTarget); ok {
		cmd.Args, opts = w.args, w.opts
	} else if cmd.Args, err = TupleToJSON(args[1:], 1); err != nil {
		return nil, Command{}, fmt.Errorf("%s(%s): %w", b.Name(), cmd.Name, err)
	}
	if ref, ok := args[0].(*ActivityRef); ok {
		opts = ref.opts
	}
	if err := parseCallOptions(b.Name(), kwargs, &opts); err != nil {
		return nil, Command{}, err
	}
	if cmd.Kind == KindChild && opts.activityOnly() {
		return nil, Command{}, fmt.Errorf("%s: retry=, timeout=, schedule_to_start_timeout= and cache options apply to activities, not to child workflow %s (queue= and priority= do)", b.Name(), cmd.Name)
	}
	if !opts.empty() {
		cmd.Options, _ = json.Marshal(opts)
	}
	return h, cmd, nil
}

func stepValue(b string, seq int, cmd Command, o Outcome) (starlark.Value, error) {
	if o.Err != nil {
		return nil, &StepError{Builtin: b, Kind: cmd.Kind, Target: cmd.Name, Seq: seq, Info: *o.Err}
	}
	v, err := FromJSON(o.Value)
	if err != nil {
		return nil, fmt.Errorf("%s: result of %s: %w", b, cmd.Name, err)
	}
	return v, nil
}

func runStep(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (int, Command, Outcome, error) {
	h, cmd, err := parseStep(thread, b, args, kwargs)
	if err != nil {
		return 0, cmd, Outcome{}, err
	}
	seq, err := h.Schedule(thread, cmd)
	if err != nil {
		return 0, cmd, Outcome{}, err
	}
	if err := h.Await(thread, []int{seq}, 1); err != nil {
		return 0, cmd, Outcome{}, err
	}
	o, _ := h.Outcome(seq)
	return seq, cmd, o, nil
}

// durable(target, *args, retry=None, timeout=None) runs a step and returns its result.
func durable(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	seq, cmd, o, err := runStep(thread, b, args, kwargs)
	if err != nil {
		return nil, err
	}
	return stepValue(b.Name(), seq, cmd, o)
}

// attempt(target, *args, **opts) runs a step and returns a result value instead of failing.
func attempt(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	seq, cmd, o, err := runStep(thread, b, args, kwargs)
	if err != nil {
		return nil, err
	}
	return newResult(b.Name(), seq, cmd, o)
}

// start(target, *args, **opts) issues a step and returns a future at once. The step is
// deferred: it gets its sequence number (and is scheduled) before the script next takes
// a sequence number, waits, or ends, in the order start() was called, unless a bounded
// gather() takes it first and holds it back until one of its slots is free.
func start(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h, cmd, err := parseStep(thread, b, args, kwargs)
	if err != nil {
		return nil, err
	}
	step := &DeferredStep{Cmd: cmd}
	h.Defer(step)
	return &Future{step: step, host: h, id: nextFutureID(thread)}, nil
}

// futureList reads the futures argument of gather and wait_any.
func futureList(b *starlark.Builtin, it starlark.Iterable) ([]*Future, error) {
	var futures []*Future
	iter := it.Iterate()
	defer iter.Done()
	var x starlark.Value
	for i := 0; iter.Next(&x); i++ {
		f, ok := x.(*Future)
		if !ok {
			return nil, fmt.Errorf("%s: element %d is %s, want a future from start()", b.Name(), i, x.Type())
		}
		futures = append(futures, f)
	}
	return futures, nil
}

// gather(futures, return_errors=False, max_concurrency=None) waits for every future and
// returns their results in order; the first failure (in completion order) fails the
// gather. With max_concurrency=N at most N of its steps are scheduled and unfinished
// at a time: the next (in list order) is scheduled as one finishes.
func gather(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h, err := host(thread, b)
	if err != nil {
		return nil, err
	}
	var it starlark.Iterable
	returnErrors := false
	var maxConcurrency starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "futures", &it, "return_errors?", &returnErrors, "max_concurrency?", &maxConcurrency); err != nil {
		return nil, err
	}
	futures, err := futureList(b, it)
	if err != nil {
		return nil, err
	}
	limit := len(futures)
	if maxConcurrency != starlark.None {
		n, err := starlark.AsInt32(maxConcurrency)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: max_concurrency must be a positive int or None, got %s", b.Name(), maxConcurrency.String())
		}
		limit = n
		for _, f := range futures {
			if f.step.Seq == 0 {
				f.step.Held = true
			}
		}
	}
	next := 0 // futures[:next] are scheduled
	for {
		running := 0
		for _, f := range futures[:next] {
			o, ok := h.Outcome(f.step.Seq)
			if !ok {
				running++
			} else if o.Err != nil && !returnErrors {
				return nil, &StepError{Builtin: b.Name(), Kind: f.step.Cmd.Kind, Target: f.step.Cmd.Name, Seq: f.step.Seq, Info: *o.Err}
			}
		}
		failed := false
		for next < len(futures) && !failed && (running < limit || futures[next].step.Seq != 0) {
			seq, err := futures[next].schedule(thread)
			if err != nil {
				return nil, err
			}
			next++
			o, ok := h.Outcome(seq)
			if !ok {
				running++
			}
			// Fail fast: once a step failed, schedule no more.
			failed = ok && o.Err != nil && !returnErrors
		}
		done := 0
		var waiting []int
		for _, f := range futures[:next] {
			o, ok := h.Outcome(f.step.Seq)
			if !ok {
				waiting = append(waiting, f.step.Seq)
				continue
			}
			done++
			if o.Err != nil && !returnErrors {
				return nil, &StepError{Builtin: b.Name(), Kind: f.step.Cmd.Kind, Target: f.step.Cmd.Name, Seq: f.step.Seq, Info: *o.Err}
			}
		}
		if done == len(futures) {
			break
		}
		if err := h.Await(thread, waiting, 1); err != nil {
			return nil, err
		}
	}
	out := make([]starlark.Value, len(futures))
	for i, f := range futures {
		o, _ := h.Outcome(f.step.Seq)
		var v starlark.Value
		var err error
		if returnErrors {
			v, err = newResult(b.Name(), f.step.Seq, f.step.Cmd, o)
		} else {
			v, err = stepValue(b.Name(), f.step.Seq, f.step.Cmd, o)
		}
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return starlark.NewList(out), nil
}

// sleep(duration) waits on a durable timer.
func sleep(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h, err := host(thread, b)
	if err != nil {
		return nil, err
	}
	var dv starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &dv); err != nil {
		return nil, err
	}
	d, err := durationValue(dv)
	if err != nil {
		return nil, fmt.Errorf("sleep: %w", err)
	}
	opts, _ := json.Marshal(TimerOptions{DurationMS: d.Milliseconds()})
	seq, err := h.Schedule(thread, Command{Kind: KindTimer, Name: "sleep", Options: opts, Pos: CallerPos(thread)})
	if err != nil {
		return nil, err
	}
	if err := h.Await(thread, []int{seq}, 1); err != nil {
		return nil, err
	}
	if o, _ := h.Outcome(seq); o.Err != nil { // the execution was cancelled
		return nil, &StepError{Builtin: b.Name(), Kind: KindTimer, Target: "sleep", Seq: seq, Info: *o.Err}
	}
	return starlark.None, nil
}

// IsStepError reports whether err (from a script run) is a failed step, and returns it.
func IsStepError(err error) (*StepError, bool) {
	var se *StepError
	ok := errors.As(err, &se)
	return se, ok
}

func joinArgs(args starlark.Tuple) string {
	parts := make([]string, len(args))
	for i, a := range args {
		if s, ok := a.(starlark.String); ok {
			parts[i] = string(s)
		} else {
			parts[i] = a.String()
		}
	}
	return strings.Join(parts, " ")
}

// parseCallOptions applies keyword options of an activity step to opts.
func parseCallOptions(fn string, kwargs []starlark.Tuple, opts *CallOptions) error {
	for _, kv := range kwargs {
		name := string(kv[0].(starlark.String))
		v := kv[1]
		switch name {
		case "retry":
			if v == starlark.None {
				opts.Retry = nil
				continue
			}
			rp, ok := v.(*RetryPolicy)
			if !ok {
				return fmt.Errorf("%s: retry= wants a retry_policy(...), got %s", fn, v.Type())
			}
			spec := rp.spec
			opts.Retry = &spec
		case "timeout", "heartbeat_timeout", "cache_ttl", "schedule_to_start_timeout":
			var ms int64
			if v != starlark.None {
				d, err := durationValue(v)
				if err != nil {
					return fmt.Errorf("%s: %s=: %w", fn, name, err)
				}
				ms = max(d.Milliseconds(), 1)
			}
			switch name {
			case "timeout":
				opts.TimeoutMS = ms
			case "heartbeat_timeout":
				opts.HeartbeatTimeoutMS = ms
			case "schedule_to_start_timeout":
				opts.ScheduleToStartMS = ms
			default:
				opts.CacheTTLMS = ms
				if ms > 0 {
					opts.Cached = true
				}
			}
		case "queue":
			q, ok := starlark.AsString(v)
			if !ok && v != starlark.None {
				return fmt.Errorf("%s: queue= wants a string, got %s", fn, v.Type())
			}
			opts.Queue = q
		case "priority":
			p, err := starlark.AsInt32(v)
			if err != nil {
				return fmt.Errorf("%s: priority= wants an int: %v", fn, err)
			}
			opts.Priority = p
		case "cached":
			b, ok := v.(starlark.Bool)
			if !ok {
				return fmt.Errorf("%s: cached= wants True or False, got %s", fn, v.Type())
			}
			opts.Cached = bool(b)
		default:
			return fmt.Errorf("%s: unexpected keyword argument %q (known: retry, timeout, heartbeat_timeout, schedule_to_start_timeout, cached, cache_ttl, queue, priority)", fn, name)
		}
	}
	return nil
}
