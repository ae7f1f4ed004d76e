package builtins

import (
	"encoding/json"
	"fmt"

	"go.starlark.net/starlark"
)

// WorkflowTarget is what workflow() returns: an entry point of another script of the
// bundle, with its arguments and step options, for durable, start or attempt to run as
// a child execution.
type WorkflowTarget struct {
	entry string // as the child's Entry: "path:fn", or "fn" for the main script
	args  json.RawMessage
	opts  CallOptions
}

var _ starlark.Value = (*WorkflowTarget)(nil)

func (w *WorkflowTarget) String() string        { return fmt.Sprintf("<workflow %s>", w.entry) }
func (w *WorkflowTarget) Type() string          { return "workflow" }
func (w *WorkflowTarget) Freeze()               {}
func (w *WorkflowTarget) Truth() starlark.Bool  { return true }
func (w *WorkflowTarget) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable type: workflow") }

// workflow(path, *args, entry="main", queue=None, priority=0) names entry of the
// script at path (relative to the calling file, inside the main script's directory
// tree) as a child workflow: durable(workflow("billing.star", user)) runs it. The file is
// pinned with the execution at dispatch, which finds workflow() calls whose path is a
// string literal.
func workflowBuiltin(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	h, err := host(thread, b)
	if err != nil {
		return nil, err
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("%s: missing the script path (workflow(\"other.star\", *args, entry=\"main\"))", b.Name())
	}
	p, ok := starlark.AsString(args[0])
	if !ok {
		return nil, fmt.Errorf("%s: the script path must be a string, got %s", b.Name(), args[0].Type())
	}
	entry := "main"
	var rest []starlark.Tuple
	for _, kv := range kwargs {
		if string(kv[0].(starlark.String)) != "entry" {
			rest = append(rest, kv)
			continue
		}
		s, ok := starlark.AsString(kv[1])
		if !ok || s == "" {
			return nil, fmt.Errorf("%s: entry= wants a function name, got %s", b.Name(), kv[1].String())
		}
		entry = s
	}
	t := &WorkflowTarget{}
	if err := parseCallOptions(b.Name(), rest, &t.opts); err != nil {
		return nil, err
	}
	if t.opts.activityOnly() {
		return nil, fmt.Errorf("%s: retry=, timeout= and cache options apply to activities, not to child workflows (queue= and priority= do)", b.Name())
	}
	from := "?"
	if thread.CallStackDepth() >= 2 {
		from = thread.CallFrame(1).Pos.Filename()
	}
	if t.entry, err = h.WorkflowEntry(from, p, entry); err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	if t.args, err = TupleToJSON(args[1:], 1); err != nil {
		return nil, fmt.Errorf("%s(%q): %w", b.Name(), p, err)
	}
	return t, nil
}
