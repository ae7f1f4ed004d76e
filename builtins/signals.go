package builtins

import (
	"encoding/json"
	"fmt"

	"go.starlark.net/starlark"
)

// wait_signal(name, timeout=None) waits for the next signal called name sent to this
// execution and returns its payload; with a timeout, returns None when it passes first.
// Signals sent before anyone waits are buffered, in order.
func waitSignal(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h, err := host(thread, b)
	if err != nil {
		return nil, err
	}
	var name string
	var timeout starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "timeout?", &timeout); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, fmt.Errorf("wait_signal: the signal name must not be empty")
	}
	var opts SignalOptions
	if timeout != starlark.None {
		d, err := durationValue(timeout)
		if err != nil {
			return nil, fmt.Errorf("wait_signal: timeout=: %w", err)
		}
		opts.TimeoutMS = max(d.Milliseconds(), 1)
	}
	raw, _ := json.Marshal(opts)
	seq, err := h.Schedule(thread, Command{Kind: KindSignal, Name: name, Options: raw, Pos: CallerPos(thread)})
	if err != nil {
		return nil, err
	}
	payload, ok, err := h.WaitSignal(thread, seq, name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return starlark.None, nil
	}
	v, err := FromJSON(payload)
	if err != nil {
		return nil, fmt.Errorf("wait_signal: payload of %q: %w", name, err)
	}
	return v, nil
}

// continue_as_new(*args) ends this run and starts the execution again from the top with
// args and a fresh history, under the same ID.
func continueAsNew(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h, err := host(thread, b)
	if err != nil {
		return nil, err
	}
	if len(kwargs) > 0 {
		return nil, fmt.Errorf("continue_as_new: takes positional arguments only, got %s=", string(kwargs[0][0].(starlark.String)))
	}
	raw, err := TupleToJSON(args, 1)
	if err != nil {
		return nil, fmt.Errorf("continue_as_new: %w", err)
	}
	return nil, h.ContinueAsNew(thread, raw)
}
