package builtins

import (
	"encoding/json"
	"fmt"

	"go.starlark.net/starlark"

	"github.com/stent-go/stent/backend"
)

// tagsLocal is the thread-local key of the tags set_tags set so far in this run.
const tagsLocal = "stent.tags"

// set_tags({"customer": "42"}) tags the execution: string keys and values, indexed by
// the store so that `stent list --where tag:customer=42` finds it. A later call with
// the same key replaces the value. It is a recorded step (a side_effect event named
// set_tags), written once; a replay keeps the recorded tags. The bounds
// (backend.MaxTags keys set by the script, backend.MaxTagBytes per key and value)
// fail the call.
func setTags(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h, err := host(thread, b)
	if err != nil {
		return nil, err
	}
	var d *starlark.Dict
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &d); err != nil {
		return nil, err
	}
	set, _ := thread.Local(tagsLocal).(map[string]string)
	merged := make(map[string]string, len(set)+d.Len())
	for k, v := range set {
		merged[k] = v
	}
	tags := make(map[string]string, d.Len())
	for _, item := range d.Items() {
		k, ok := starlark.AsString(item[0])
		if !ok {
			return nil, fmt.Errorf("%s: tag keys are strings, got %s %s", b.Name(), item[0].Type(), item[0])
		}
		v, ok := starlark.AsString(item[1])
		if !ok {
			return nil, fmt.Errorf("%s: the value of tag %q is of type %s, want a string (use str(...))", b.Name(), k, item[1].Type())
		}
		if err := backend.CheckTag(k, v); err != nil {
			return nil, fmt.Errorf("%s: %w", b.Name(), err)
		}
		tags[k], merged[k] = v, v
	}
	if len(merged) > backend.MaxTags {
		return nil, fmt.Errorf("%s: the script would have set %d tags, over the limit of %d", b.Name(), len(merged), backend.MaxTags)
	}
	raw, err := json.Marshal(tags)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	rec, err := h.SideEffect(thread, backend.TagsName, func() json.RawMessage { return raw })
	if err != nil {
		return nil, err
	}
	// On replay the recorded tags count, not those of this call.
	var got map[string]string
	if err := json.Unmarshal(rec, &got); err != nil {
		return nil, fmt.Errorf("%s: decoding the recorded tags: %w", b.Name(), err)
	}
	next := make(map[string]string, len(set)+len(got))
	for k, v := range set {
		next[k] = v
	}
	for k, v := range got {
		next[k] = v
	}
	thread.SetLocal(tagsLocal, next)
	return starlark.None, nil
}
