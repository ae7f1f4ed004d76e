package builtins

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	randv2 "math/rand/v2"
	"strconv"
	"time"

	startime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"
)

// recordedNow returns the clock value recorded for this point of the script.
func recordedNow(thread *starlark.Thread, h Host) (time.Time, error) {
	raw, err := h.SideEffect(thread, "now", func() json.RawMessage {
		b, _ := json.Marshal(nowFunc(h).UTC().Format(time.RFC3339Nano))
		return b
	})
	if err != nil {
		return time.Time{}, err
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, fmt.Errorf("now: recorded value %s is not a time: %w", raw, err)
	}
	return time.Parse(time.RFC3339Nano, s)
}

// Clock is implemented by hosts that provide their own time (e.g. virtual time in tests).
type Clock interface{ Now() time.Time }

func nowFunc(h Host) time.Time {
	if c, ok := h.(Clock); ok {
		return c.Now()
	}
	return time.Now()
}

// now() returns the current time as a time.time, recorded once.
func now(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h, err := host(thread, b)
	if err != nil {
		return nil, err
	}
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
		return nil, err
	}
	t, err := recordedNow(thread, h)
	if err != nil {
		return nil, err
	}
	return startime.Time(t), nil
}

// uuid() returns a random UUID (version 4) string, recorded once.
func uuidBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h, err := host(thread, b)
	if err != nil {
		return nil, err
	}
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
		return nil, err
	}
	raw, err := h.SideEffect(thread, "uuid", func() json.RawMessage {
		b, _ := json.Marshal(newUUID())
		return b
	})
	if err != nil {
		return nil, err
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("uuid: recorded value %s is not a string", raw)
	}
	return starlark.String(s), nil
}

func newUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = (u[6] & 0x0f) | 0x40
	u[8] = (u[8] & 0x3f) | 0x80
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// random() returns a float in [0, 1), recorded once.
func random(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h, err := host(thread, b)
	if err != nil {
		return nil, err
	}
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
		return nil, err
	}
	raw, err := h.SideEffect(thread, "random", func() json.RawMessage {
		return json.RawMessage(formatFloat(randv2.Float64()))
	})
	if err != nil {
		return nil, err
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return nil, fmt.Errorf("random: recorded value %s is not a number", raw)
	}
	return starlark.Float(f), nil
}

// log(*values) writes the values, separated by spaces, to the execution's log once.
func logBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h, err := host(thread, b)
	if err != nil {
		return nil, err
	}
	if len(kwargs) > 0 {
		return nil, fmt.Errorf("log: unexpected keyword argument %s", kwargs[0][0])
	}
	h.Log(thread, joinArgs(args))
	return starlark.None, nil
}
