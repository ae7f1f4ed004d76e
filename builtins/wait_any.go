package builtins

import (
	"encoding/json"
	"fmt"

	"go.starlark.net/starlark"
)

// wait_any(futures, timeout=None) waits until the first of the futures finishes and
// returns (index, value); the others stay valid and can be waited on later. With a
// timeout it returns None when the timeout passes first. A first future that failed
// raises its error, as future.result() would.
//
// "First" is history order: the future whose completion event was appended first wins,
// so a replay that sees all the completions at once picks the same one. The timeout is
// a timer step ("wait_any"), which loses to a completion recorded before it fired and is
// dropped when a future wins.
func waitAny(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h, err := host(thread, b)
	if err != nil {
		return nil, err
	}
	var it starlark.Iterable
	var timeout starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "futures", &it, "timeout?", &timeout); err != nil {
		return nil, err
	}
	futures, err := futureList(b, it)
	if err != nil {
		return nil, err
	}
	if len(futures) == 0 {
		return nil, fmt.Errorf("%s: no futures to wait for; pass a list of futures from start()", b.Name())
	}
	seqs := make([]int, 0, len(futures)+1)
	for _, f := range futures {
		seq, err := f.schedule(thread)
		if err != nil {
			return nil, err
		}
		seqs = append(seqs, seq)
	}
	timer := 0
	if timeout != starlark.None {
		d, err := durationValue(timeout)
		if err != nil {
			return nil, fmt.Errorf("%s: timeout: %w", b.Name(), err)
		}
		opts, _ := json.Marshal(TimerOptions{DurationMS: d.Milliseconds()})
		timer, err = h.Schedule(thread, Command{Kind: KindTimer, Name: "wait_any", Options: opts, Pos: CallerPos(thread)})
		if err != nil {
			return nil, err
		}
		seqs = append(seqs, timer)
	}
	if err := h.Await(thread, seqs, 1); err != nil {
		return nil, err
	}
	i, _ := h.First(seqs)
	if timer != 0 {
		if i == len(futures) {
			return starlark.None, nil
		}
		if _, fired := h.Outcome(timer); !fired {
			h.CancelTimer(timer)
		}
	}
	f := futures[i]
	o, _ := h.Outcome(f.step.Seq)
	v, err := stepValue(b.Name(), f.step.Seq, f.step.Cmd, o)
	if err != nil {
		return nil, err
	}
	return starlark.Tuple{starlark.MakeInt(i), v}, nil
}
