package builtins

import (
	"encoding/json"
	"fmt"
	"sort"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// DeferredStep is a step start() issued. Seq is 0 until the host's Flush (or a
// gather that holds it) gives it a sequence number and schedules it.
type DeferredStep struct {
	Cmd Command
	Seq int
	// Held keeps the step out of Flush: a bounded gather schedules it itself.
	Held bool
}

// Future is a step started by start() whose result is not awaited yet.
type Future struct {
	step *DeferredStep
	host Host
	id   int // order of creation, for Hash
}

const futureCountKey = "stent.futures"

func nextFutureID(thread *starlark.Thread) int {
	n, _ := thread.Local(futureCountKey).(int)
	n++
	thread.SetLocal(futureCountKey, n)
	return n
}

// schedule makes sure the future's step has a sequence number: deferred steps are
// flushed in order, and a step held back by a gather that stopped early is scheduled
// on its own.
func (f *Future) schedule(thread *starlark.Thread) (int, error) {
	if f.step.Seq == 0 {
		if err := f.host.Flush(thread); err != nil {
			return 0, err
		}
	}
	if f.step.Seq == 0 {
		seq, err := f.host.Schedule(thread, f.step.Cmd)
		if err != nil {
			return 0, err
		}
		f.step.Seq, f.step.Held = seq, false
	}
	return f.step.Seq, nil
}

var _ starlark.HasAttrs = (*Future)(nil)

func (f *Future) String() string {
	if f.step.Seq == 0 {
		return fmt.Sprintf("<future %s>", f.step.Cmd.Name)
	}
	return fmt.Sprintf("<future %s #%d>", f.step.Cmd.Name, f.step.Seq)
}
func (f *Future) Type() string          { return "future" }
func (f *Future) Freeze()               {}
func (f *Future) Truth() starlark.Bool  { return true }
func (f *Future) Hash() (uint32, error) { return uint32(f.id), nil }
func (f *Future) AttrNames() []string   { return []string{"done", "result", "target"} }
func (f *Future) Attr(name string) (starlark.Value, error) {
	switch name {
	case "target":
		return starlark.String(f.step.Cmd.Name), nil
	case "done":
		return starlark.NewBuiltin("done", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			if err := starlark.UnpackPositionalArgs("done", args, kwargs, 0); err != nil {
				return nil, err
			}
			if f.step.Seq == 0 {
				if err := f.host.Flush(thread); err != nil {
					return nil, err
				}
			}
			if f.step.Seq == 0 {
				return starlark.False, nil // held back by a gather: not even scheduled
			}
			_, ok := f.host.Outcome(f.step.Seq)
			return starlark.Bool(ok), nil
		}), nil
	case "result":
		return starlark.NewBuiltin("result", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			if err := starlark.UnpackPositionalArgs("result", args, kwargs, 0); err != nil {
				return nil, err
			}
			seq, err := f.schedule(thread)
			if err != nil {
				return nil, err
			}
			if err := f.host.Await(thread, []int{seq}, 1); err != nil {
				return nil, err
			}
			o, _ := f.host.Outcome(seq)
			return stepValue("result", seq, f.step.Cmd, o)
		}), nil
	}
	return nil, nil
}

// Result is what attempt() returns: ok, value, error, unwrap().
type Result struct {
	ok    bool
	value starlark.Value
	err   *starlarkstruct.Struct
	step  *StepError
}

func newResult(b string, seq int, cmd Command, o Outcome) (*Result, error) {
	if o.Err != nil {
		se := &StepError{Builtin: b, Kind: cmd.Kind, Target: cmd.Name, Seq: seq, Info: *o.Err}
		typ := o.Err.Type
		if typ == "" {
			typ = "ActivityError"
		}
		errStruct := starlarkstruct.FromStringDict(starlark.String("error"), starlark.StringDict{
			"type":     starlark.String(typ),
			"message":  starlark.String(o.Err.Message),
			"attempts": starlark.MakeInt(o.Err.Attempts),
			"target":   starlark.String(cmd.Name),
		})
		return &Result{err: errStruct, value: starlark.None, step: se}, nil
	}
	v, err := stepValue(b, seq, cmd, o)
	if err != nil {
		return nil, err
	}
	return &Result{ok: true, value: v}, nil
}

var _ starlark.HasAttrs = (*Result)(nil)

func (r *Result) String() string {
	if r.ok {
		return fmt.Sprintf("result(ok=True, value=%s)", r.value.String())
	}
	return fmt.Sprintf("result(ok=False, error=%q)", r.step.Info.Message)
}
func (r *Result) Type() string          { return "result" }
func (r *Result) Freeze()               { r.value.Freeze() }
func (r *Result) Truth() starlark.Bool  { return starlark.Bool(r.ok) }
func (r *Result) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable type: result") }
func (r *Result) AttrNames() []string   { return []string{"error", "ok", "unwrap", "value"} }
func (r *Result) Attr(name string) (starlark.Value, error) {
	switch name {
	case "ok":
		return starlark.Bool(r.ok), nil
	case "value":
		return r.value, nil
	case "error":
		if r.err == nil {
			return starlark.None, nil
		}
		return r.err, nil
	case "unwrap":
		return starlark.NewBuiltin("unwrap", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			if err := starlark.UnpackPositionalArgs("unwrap", args, kwargs, 0); err != nil {
				return nil, err
			}
			if !r.ok {
				return nil, r.step
			}
			return r.value, nil
		}), nil
	}
	return nil, nil
}

// RetryPolicy is the value retry_policy() returns.
type RetryPolicy struct{ spec RetrySpec }

// Spec returns the policy as recorded.
func (p *RetryPolicy) Spec() RetrySpec { return p.spec }

func (p *RetryPolicy) String() string {
	b, _ := json.Marshal(p.spec)
	return "retry_policy(" + string(b) + ")"
}
func (p *RetryPolicy) Type() string          { return "retry_policy" }
func (p *RetryPolicy) Freeze()               {}
func (p *RetryPolicy) Truth() starlark.Bool  { return true }
func (p *RetryPolicy) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable type: retry_policy") }

func retryPolicy(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		maxAttempts                           = 3
		initialDelay, maxDelay starlark.Value = starlark.MakeInt(1), starlark.None
		backoff                               = 2.0
		jitter                                = 0.0
		nonRetryable           *starlark.List
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs,
		"max_attempts?", &maxAttempts, "initial_delay?", &initialDelay, "backoff_factor?", &backoff,
		"max_delay?", &maxDelay, "jitter?", &jitter, "non_retryable?", &nonRetryable); err != nil {
		return nil, err
	}
	if maxAttempts < 1 {
		return nil, fmt.Errorf("retry_policy: max_attempts must be at least 1, got %d", maxAttempts)
	}
	if backoff < 1 {
		return nil, fmt.Errorf("retry_policy: backoff_factor must be at least 1.0, got %v", backoff)
	}
	if jitter < 0 || jitter > 1 {
		return nil, fmt.Errorf("retry_policy: jitter must be between 0 and 1, got %v", jitter)
	}
	spec := RetrySpec{MaxAttempts: maxAttempts, BackoffFactor: backoff, Jitter: jitter}
	d, err := durationValue(initialDelay)
	if err != nil {
		return nil, fmt.Errorf("retry_policy: initial_delay: %w", err)
	}
	spec.InitialDelayMS = d.Milliseconds()
	if maxDelay != starlark.None {
		d, err := durationValue(maxDelay)
		if err != nil {
			return nil, fmt.Errorf("retry_policy: max_delay: %w", err)
		}
		spec.MaxDelayMS = d.Milliseconds()
	}
	if nonRetryable != nil {
		for i := 0; i < nonRetryable.Len(); i++ {
			s, ok := starlark.AsString(nonRetryable.Index(i))
			if !ok {
				return nil, fmt.Errorf("retry_policy: non_retryable[%d] must be a string, got %s", i, nonRetryable.Index(i).Type())
			}
			spec.NonRetryable = append(spec.NonRetryable, s)
		}
		sort.Strings(spec.NonRetryable)
	}
	return &RetryPolicy{spec: spec}, nil
}

// ActivityRef is what activity() returns: an activity name with default options. Call
// it like durable, or pass it to durable, start or attempt as the target.
type ActivityRef struct {
	name string
	opts CallOptions
}

var _ starlark.Callable = (*ActivityRef)(nil)

func (a *ActivityRef) String() string        { return fmt.Sprintf("<activity %s>", a.name) }
func (a *ActivityRef) Type() string          { return "activity" }
func (a *ActivityRef) Freeze()               {}
func (a *ActivityRef) Truth() starlark.Bool  { return true }
func (a *ActivityRef) Hash() (uint32, error) { return starlark.String(a.name).Hash() }
func (a *ActivityRef) Name() string          { return a.name }

// CallInternal runs the activity as durable(self, *args, **kwargs) would.
func (a *ActivityRef) CallInternal(thread *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	all := append(starlark.Tuple{a}, args...)
	return durable(thread, durableBuiltin, all, kwargs)
}

var durableBuiltin = starlark.NewBuiltin("durable", durable)

// activity(name, retry=None, timeout=None, heartbeat_timeout=None, cached=False,
// cache_ttl=None) returns a callable that runs the activity with these defaults.
func activityBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	if err := starlark.UnpackPositionalArgs(b.Name(), args, nil, 1, &name); err != nil {
		return nil, err
	}
	ref := &ActivityRef{name: name}
	if err := parseCallOptions(b.Name(), kwargs, &ref.opts); err != nil {
		return nil, err
	}
	return ref, nil
}
