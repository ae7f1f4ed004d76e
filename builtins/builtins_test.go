package builtins_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/starlarktest"
	"go.starlark.net/syntax"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/builtins"
)

// The builtins are tested in Starlark, as go.starlark.net tests its own: each
// testdata/*.star file is a list of chunks separated by "---" lines; each chunk runs on a
// fresh thread whose host (fakeHost) resolves steps at once, and a line ending in
// `### "regexp"` must raise an error matching it.

// fileOptions is the dialect of workflow scripts (see interpreter.FileOptions).
var fileOptions = &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, Recursion: true}

func TestBuiltinsInStarlark(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.star"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.star files")
	}
	assert, err := starlarktest.LoadAssertModule()
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".star"), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			chunks, err := splitChunks(file, string(src))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range chunks {
				runChunk(t, c, assert)
			}
		})
	}
}

// chunk is a part of a test file, with the errors its lines expect.
type chunk struct {
	file   string
	source string // the chunk, padded with blank lines so positions match the file
	wants  map[int]*regexp.Regexp
}

var wantError = regexp.MustCompile(`###\s*(.*?)\s*$`)

func splitChunks(file, src string) ([]chunk, error) {
	var out []chunk
	var bad error
	lines := strings.Split(src, "\n")
	start := 0
	flush := func(end int) {
		c := chunk{file: file, wants: map[int]*regexp.Regexp{}}
		body := make([]string, 0, end)
		for i := 0; i < start; i++ {
			body = append(body, "")
		}
		for i := start; i < end; i++ {
			l := lines[i]
			if m := wantError.FindStringSubmatch(l); m != nil {
				pattern, err := strconv.Unquote(m[1])
				if err != nil {
					bad = fmt.Errorf("%s:%d: the expected error %s is not a quoted string (use \"...\" or `...`): %v", file, i+1, m[1], err)
					continue
				}
				re, err := regexp.Compile(pattern)
				if err != nil {
					bad = fmt.Errorf("%s:%d: the expected error is not a regular expression: %v", file, i+1, err)
					continue
				}
				c.wants[i+1] = re
			}
			body = append(body, l)
		}
		c.source = strings.Join(body, "\n")
		out = append(out, c)
	}
	for i, l := range lines {
		if strings.TrimSpace(l) == "---" {
			flush(i)
			start = i + 1
		}
	}
	flush(len(lines))
	return out, bad
}

func runChunk(t *testing.T, c chunk, assert starlark.StringDict) {
	t.Helper()
	h := newFakeHost()
	thread := &starlark.Thread{
		Name:  c.file,
		Print: func(th *starlark.Thread, msg string) { h.Log(th, msg) },
		Load: func(_ *starlark.Thread, module string) (starlark.StringDict, error) {
			if module == "assert.star" {
				return assert, nil
			}
			return nil, fmt.Errorf("load: only assert.star can be loaded in these tests, not %q", module)
		},
	}
	thread.SetMaxExecutionSteps(10_000_000)
	starlarktest.SetReporter(thread, t)
	builtins.SetHost(thread, h)
	predeclared := builtins.Universe()
	for k, v := range h.testNames() {
		predeclared[k] = v
	}
	_, err := starlark.ExecFileOptions(fileOptions, thread, c.file, c.source, predeclared)
	if err == nil {
		for line, re := range c.wants {
			t.Errorf("%s:%d: expected an error matching %q, got none", c.file, line, re)
		}
		return
	}
	line := errorLine(err)
	re, ok := c.wants[line]
	if !ok {
		t.Errorf("%s:%d: unexpected error: %v", c.file, line, errText(err))
		return
	}
	if !re.MatchString(errText(err)) {
		t.Errorf("%s:%d: error %q does not match %q", c.file, line, errText(err), re)
	}
	for l, r := range c.wants {
		if l != line {
			t.Errorf("%s:%d: expected an error matching %q, but the chunk stopped at line %d", c.file, l, r, line)
		}
	}
}

// errorLine is the line of the innermost frame of the test file that raised err.
func errorLine(err error) int {
	switch e := err.(type) {
	case *starlark.EvalError:
		for i := len(e.CallStack) - 1; i >= 0; i-- {
			if fr := e.CallStack[i]; fr.Pos.Filename() != "<builtin>" && fr.Pos.Filename() != "assert.star" {
				return int(fr.Pos.Line)
			}
		}
	case syntax.Error:
		return int(e.Pos.Line)
	case resolve.ErrorList:
		if len(e) > 0 {
			return int(e[0].Pos.Line)
		}
	}
	return 0
}

func errText(err error) string {
	if e, ok := err.(*starlark.EvalError); ok {
		return e.Msg
	}
	return err.Error()
}

// fakeHost resolves steps at once: it records every command and side effect so that a
// test can look at them (recorded()), and answers activities by name:
//
//	echo(x)         returns x (several arguments: the list of them)
//	fail(msg, type) fails with msg (and error type, default ActivityError)
//	never()         never finishes: awaiting it raises an error
//
// Child workflows return [entry, args...]. Signals queued with send_signal(name,
// payload) are delivered to wait_signal; without one, a wait with a timeout times out.
type fakeHost struct {
	now       time.Time
	seq       int
	recorded  []map[string]any
	outcomes  map[int]builtins.Outcome
	logs      []string
	signals   map[string][]json.RawMessage
	continued json.RawMessage
	deferred  []*builtins.DeferredStep
	cancelled []int
}

func newFakeHost() *fakeHost {
	return &fakeHost{
		now:      time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		outcomes: map[int]builtins.Outcome{},
		signals:  map[string][]json.RawMessage{},
	}
}

var _ builtins.Host = (*fakeHost)(nil)

func (h *fakeHost) Now() time.Time { return h.now }

func (h *fakeHost) Defer(step *builtins.DeferredStep) { h.deferred = append(h.deferred, step) }

func (h *fakeHost) Flush(thread *starlark.Thread) error {
	for len(h.deferred) > 0 {
		d := h.deferred[0]
		h.deferred = h.deferred[1:]
		if d.Seq == 0 && !d.Held {
			d.Seq = h.schedule(d.Cmd)
		}
	}
	return nil
}

// First picks the lowest seq that finished: the fake host finishes steps in order.
func (h *fakeHost) First(seqs []int) (int, bool) {
	best := -1
	for i, s := range seqs {
		if _, ok := h.outcomes[s]; ok && (best < 0 || s < seqs[best]) {
			best = i
		}
	}
	return best, best >= 0
}

func (h *fakeHost) CancelTimer(seq int) { h.cancelled = append(h.cancelled, seq) }

func (h *fakeHost) Schedule(thread *starlark.Thread, cmd builtins.Command) (int, error) {
	_ = h.Flush(thread)
	return h.schedule(cmd), nil
}

func (h *fakeHost) schedule(cmd builtins.Command) int {
	h.seq++
	var args, opts any
	_ = json.Unmarshal(cmd.Args, &args)
	_ = json.Unmarshal(cmd.Options, &opts)
	h.recorded = append(h.recorded, map[string]any{"seq": h.seq, "kind": cmd.Kind, "name": cmd.Name, "args": args, "options": opts})
	switch cmd.Kind {
	case builtins.KindActivity:
		var list []json.RawMessage
		_ = json.Unmarshal(cmd.Args, &list)
		switch cmd.Name {
		case "echo":
			v := json.RawMessage(cmd.Args)
			if len(list) == 1 {
				v = list[0]
			}
			h.outcomes[h.seq] = builtins.Outcome{Value: v}
		case "fail":
			info := &backend.ErrorInfo{Message: "failed", Type: "ActivityError", Activity: cmd.Name, Attempts: 1}
			if len(list) > 0 {
				_ = json.Unmarshal(list[0], &info.Message)
			}
			if len(list) > 1 {
				_ = json.Unmarshal(list[1], &info.Type)
			}
			if len(list) > 2 {
				_ = json.Unmarshal(list[2], &info.Attempts)
			}
			h.outcomes[h.seq] = builtins.Outcome{Err: info}
		}
	case builtins.KindChild:
		out, _ := json.Marshal(append([]any{cmd.Name}, args.([]any)...))
		h.outcomes[h.seq] = builtins.Outcome{Value: out}
	case builtins.KindTimer:
		var o builtins.TimerOptions
		_ = json.Unmarshal(cmd.Options, &o)
		if cmd.Name != "wait_any" || o.DurationMS < 1000 {
			// wait_any timeouts of a second or more never fire: the steps win.
			h.outcomes[h.seq] = builtins.Outcome{Value: json.RawMessage("null")}
		}
	}
	return h.seq
}

func (h *fakeHost) Await(thread *starlark.Thread, seqs []int, n int) error {
	_ = h.Flush(thread)
	done := 0
	for _, s := range seqs {
		if _, ok := h.outcomes[s]; ok {
			done++
		}
	}
	if done < n {
		return fmt.Errorf("fake host: waiting for steps %v that never finish", seqs)
	}
	return nil
}

func (h *fakeHost) Outcome(seq int) (builtins.Outcome, bool) {
	o, ok := h.outcomes[seq]
	return o, ok
}

func (h *fakeHost) SideEffect(thread *starlark.Thread, name string, gen func() json.RawMessage) (json.RawMessage, error) {
	_ = h.Flush(thread)
	h.seq++
	v := gen()
	var decoded any
	_ = json.Unmarshal(v, &decoded)
	h.recorded = append(h.recorded, map[string]any{"seq": h.seq, "kind": "side_effect", "name": name, "value": decoded})
	return v, nil
}

func (h *fakeHost) WaitSignal(thread *starlark.Thread, seq int, name string) (json.RawMessage, bool, error) {
	if q := h.signals[name]; len(q) > 0 {
		h.signals[name] = q[1:]
		return q[0], true, nil
	}
	var o builtins.SignalOptions
	for _, r := range h.recorded {
		if r["seq"] == seq {
			if m, ok := r["options"].(map[string]any); ok {
				if ms, ok := m["timeout_ms"].(float64); ok {
					o.TimeoutMS = int64(ms)
				}
			}
		}
	}
	if o.TimeoutMS > 0 {
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("fake host: no signal %q will ever come", name)
}

func (h *fakeHost) ContinueAsNew(thread *starlark.Thread, args json.RawMessage) error {
	h.continued = args
	return &builtins.ContinueAsNewError{Args: args}
}

func (h *fakeHost) Log(thread *starlark.Thread, msg string) { h.logs = append(h.logs, msg) }

func (h *fakeHost) ChildEntry(fn *starlark.Function) (string, error) {
	if fn.Name() == "lambda" {
		return "", fmt.Errorf("function lambda is not a top-level function of the script")
	}
	return fn.Name(), nil
}

// WorkflowEntry accepts paths ending in .star and names the entry "path:fn".
func (h *fakeHost) WorkflowEntry(from, path, entry string) (string, error) {
	if !strings.HasSuffix(path, ".star") {
		return "", fmt.Errorf("%s is not pinned with this execution", path)
	}
	return path + ":" + entry, nil
}

func (h *fakeHost) CheckActivity(name string) error {
	switch name {
	case "echo", "fail", "never":
		return nil
	}
	return fmt.Errorf("unknown activity %q (registered: echo, fail, never)", name)
}

// testNames are the helpers test files see beside the builtins and assert.
func (h *fakeHost) testNames() starlark.StringDict {
	return starlark.StringDict{
		// recorded() returns what the host recorded, as dicts: seq, kind, name, args,
		// options (commands) or value (side effects).
		"recorded": starlark.NewBuiltin("recorded", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			raw, err := json.Marshal(append([]map[string]any{}, h.recorded...))
			if err != nil {
				return nil, err
			}
			return builtins.FromJSON(raw)
		}),
		// cancelled_timers() returns the seqs of timers the builtins dropped.
		"cancelled_timers": starlark.NewBuiltin("cancelled_timers", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			out := make([]starlark.Value, len(h.cancelled))
			for i, s := range h.cancelled {
				out[i] = starlark.MakeInt(s)
			}
			return starlark.NewList(out), nil
		}),
		// logs() returns the lines written by log() and print().
		"logs": starlark.NewBuiltin("logs", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			out := make([]starlark.Value, len(h.logs))
			for i, l := range h.logs {
				out[i] = starlark.String(l)
			}
			return starlark.NewList(out), nil
		}),
		// send_signal(name, payload) queues a signal for wait_signal.
		"send_signal": starlark.NewBuiltin("send_signal", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var name string
			var payload starlark.Value = starlark.None
			if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &name, &payload); err != nil {
				return nil, err
			}
			raw, err := builtins.ToJSON(payload, "payload")
			if err != nil {
				return nil, err
			}
			h.signals[name] = append(h.signals[name], raw)
			return starlark.None, nil
		}),
		// continued() returns the arguments continue_as_new was called with, or None.
		"continued": starlark.NewBuiltin("continued", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			if h.continued == nil {
				return starlark.None, nil
			}
			return builtins.FromJSON(h.continued)
		}),
		// without_host(fn) calls fn on a thread with no workflow host, as the top level
		// of a script file runs.
		"without_host": starlark.NewBuiltin("without_host", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var fn starlark.Callable
			if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &fn); err != nil {
				return nil, err
			}
			return starlark.Call(&starlark.Thread{Name: "no host"}, fn, nil, nil)
		}),
		"struct": starlark.NewBuiltin("struct", starlarkstruct.Make),
		// matches(pattern, s) reports whether the regular expression matches s.
		"matches": starlark.NewBuiltin("matches", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var pattern, str string
			if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 2, &pattern, &str); err != nil {
				return nil, err
			}
			ok, err := regexp.MatchString(pattern, str)
			if err != nil {
				return nil, fmt.Errorf("matches: %w", err)
			}
			return starlark.Bool(ok), nil
		}),
	}
}
