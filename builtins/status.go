package builtins

import (
	"encoding/json"
	"fmt"

	"go.starlark.net/starlark"

	"github.com/stent-go/stent/backend"
)

// set_status(value) records value (JSON: progress, a phase) as the execution's custom
// status, shown by `stent status`. It is a recorded step (a side_effect event named
// set_status): written once, and a replay keeps the recorded value.
func setStatus(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h, err := host(thread, b)
	if err != nil {
		return nil, err
	}
	var v starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &v); err != nil {
		return nil, err
	}
	raw, err := ToJSON(v, "value")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	if _, err := h.SideEffect(thread, backend.CustomStatusName, func() json.RawMessage { return raw }); err != nil {
		return nil, err
	}
	return starlark.None, nil
}
