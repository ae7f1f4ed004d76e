package stenttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	starjson "go.starlark.net/lib/json"
	starmath "go.starlark.net/lib/math"
	startime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarktest"
	"go.starlark.net/syntax"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/activities"
	"github.com/stent-go/stent/builtins"
)

// mockFileOptions are the dialect of mock files: the same as workflow scripts.
var mockFileOptions = &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, Recursion: true}

// mockStepLimit stops a mock that loops forever.
const mockStepLimit = 10_000_000

// mockSet is the activities of a golden test, written in Starlark: every top-level
// function of mocks.star (but those starting with _) is registered as an activity of the
// same name. The names mocks see are listed in the package documentation.
type mockSet struct {
	names   []string
	globals starlark.StringDict
	clock   func() *stent.VirtualClock

	calls    sync.Mutex // held while a mock runs
	mu       sync.Mutex
	problems []string
}

// loadMocks runs a mocks file and collects its functions. clock returns the engine's
// virtual clock once the engine exists.
func loadMocks(filename string, src []byte, clock func() *stent.VirtualClock) (*mockSet, error) {
	m := &mockSet{clock: clock}
	if len(strings.TrimSpace(string(src))) == 0 {
		return m, nil
	}
	assert, err := starlarktest.LoadAssertModule()
	if err != nil {
		return nil, fmt.Errorf("loading the assert module: %w", err)
	}
	predeclared := starlark.StringDict{
		"attempt":      starlark.NewBuiltin("attempt", mockAttempt),
		"fail":         starlark.NewBuiltin("fail", mockFail),
		"advance":      starlark.NewBuiltin("advance", m.advance),
		"now":          starlark.NewBuiltin("now", m.now),
		"execution_id": starlark.NewBuiltin("execution_id", mockExecutionID),
		"assert_eq":    starlark.NewBuiltin("assert_eq", mockAssertEq),
		"json":         starjson.Module,
		"math":         starmath.Module,
		"time":         startime.Module,
	}
	for k, v := range assert {
		predeclared[k] = v
	}
	thread := &starlark.Thread{Name: "mocks", Print: func(*starlark.Thread, string) {}}
	starlarktest.SetReporter(thread, reporterFunc(m.report))
	thread.SetMaxExecutionSteps(mockStepLimit)
	// Not ExecFile: it freezes the globals, and mocks may keep state in them (a list
	// of the calls seen, a counter).
	_, prog, err := starlark.SourceProgramOptions(mockFileOptions, filename, src, predeclared.Has)
	if err != nil {
		return nil, err
	}
	globals, err := prog.Init(thread, predeclared)
	if err != nil {
		return nil, mockError(err)
	}
	m.globals = globals
	for name, v := range globals {
		if _, ok := v.(*starlark.Function); ok && !strings.HasPrefix(name, "_") {
			m.names = append(m.names, name)
		}
	}
	sort.Strings(m.names)
	if err := m.takeProblems(); err != nil {
		return nil, err
	}
	return m, nil
}

// activities returns the Go activities that run the mocks.
func (m *mockSet) activities() []activityReg {
	regs := make([]activityReg, 0, len(m.names))
	for _, name := range m.names {
		fn := m.globals[name].(*starlark.Function)
		regs = append(regs, activityReg{name: name, fn: m.activity(name, fn)})
	}
	return regs
}

func (m *mockSet) activity(name string, fn *starlark.Function) func(ctx context.Context, args ...json.RawMessage) (json.RawMessage, error) {
	return func(ctx context.Context, args ...json.RawMessage) (json.RawMessage, error) {
		info, _ := activities.InfoFromContext(ctx)
		thread := &starlark.Thread{Name: "mock " + name, Print: func(*starlark.Thread, string) {}}
		thread.SetLocal("stenttest.info", info)
		starlarktest.SetReporter(thread, reporterFunc(func(msg string) {
			m.report(fmt.Sprintf("mock %s (execution %s, step #%d, attempt %d): %s", name, info.ExecutionID, info.Seq, info.Attempt, msg))
		}))
		thread.SetMaxExecutionSteps(mockStepLimit)
		sargs := make(starlark.Tuple, len(args))
		for i, a := range args {
			v, err := builtins.FromJSON(a)
			if err != nil {
				return nil, m.broken(name, fmt.Errorf("argument %d: %w", i+1, err))
			}
			sargs[i] = v
		}
		// Mocks share their module's mutable globals: one runs at a time.
		m.calls.Lock()
		v, err := starlark.Call(thread, fn, sargs, nil)
		m.calls.Unlock()
		if err != nil {
			var f *mockFailure
			if errors.As(err, &f) {
				return nil, &activities.Error{Type: f.typ, Message: f.msg, NonRetryable: f.nonRetryable}
			}
			return nil, m.broken(name, mockError(err))
		}
		out, err := builtins.ToJSON(v, "the return value of mock "+name)
		if err != nil {
			return nil, m.broken(name, err)
		}
		return out, nil
	}
}

// broken records a mock that failed in a way a test did not mean (a Starlark error),
// and fails the attempt for good.
func (m *mockSet) broken(name string, err error) error {
	m.report(fmt.Sprintf("mock %s: %v", name, err))
	return &activities.Error{Type: "MockError", Message: fmt.Sprintf("mock %s: %v", name, err), NonRetryable: true}
}

func (m *mockSet) report(msg string) {
	m.mu.Lock()
	m.problems = append(m.problems, msg)
	m.mu.Unlock()
}

// takeProblems returns (and forgets) what went wrong in mocks so far.
func (m *mockSet) takeProblems() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.problems) == 0 {
		return nil
	}
	err := errors.New(strings.Join(m.problems, "\n"))
	m.problems = nil
	return err
}

type reporterFunc func(string)

func (f reporterFunc) Error(args ...any) { f(fmt.Sprint(args...)) }

// mockFailure is what fail() raises.
type mockFailure struct {
	msg, typ     string
	nonRetryable bool
}

func (f *mockFailure) Error() string { return f.msg }

func mockFail(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	f := &mockFailure{}
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "message", &f.msg, "type?", &f.typ, "non_retryable?", &f.nonRetryable); err != nil {
		return nil, err
	}
	return nil, f
}

func callInfo(thread *starlark.Thread, b *starlark.Builtin) (activities.Info, error) {
	info, ok := thread.Local("stenttest.info").(activities.Info)
	if !ok {
		return info, fmt.Errorf("%s: only available while a mock runs, not at the top level of the mocks file", b.Name())
	}
	return info, nil
}

// infoBuiltin is a builtin of no arguments returning get of the running mock's call.
func infoBuiltin(get func(activities.Info) starlark.Value) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
			return nil, err
		}
		info, err := callInfo(thread, b)
		if err != nil {
			return nil, err
		}
		return get(info), nil
	}
}

var (
	mockAttempt     = infoBuiltin(func(info activities.Info) starlark.Value { return starlark.MakeInt(info.Attempt) })
	mockExecutionID = infoBuiltin(func(info activities.Info) starlark.Value { return starlark.String(info.ExecutionID) })
)

func (m *mockSet) advance(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var v starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &v); err != nil {
		return nil, err
	}
	d, err := durationArg(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	if vc := m.clock(); vc != nil {
		vc.Advance(d)
	}
	return starlark.None, nil
}

func (m *mockSet) now(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
		return nil, err
	}
	t := DefaultStart
	if vc := m.clock(); vc != nil {
		t = vc.Now()
	}
	return starlark.String(t.UTC().Format(time.RFC3339Nano)), nil
}

func mockAssertEq(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var got, want starlark.Value
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 2, &got, &want); err != nil {
		return nil, err
	}
	eq, err := starlark.Equal(got, want)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	if !eq {
		msg := fmt.Sprintf("%s: got %s, want %s", b.Name(), got, want)
		if stack := thread.CallStack(); len(stack) > 1 {
			msg = stack[len(stack)-2].Pos.String() + ": " + msg
		}
		starlarktest.GetReporter(thread).Error(msg)
	}
	return starlark.None, nil
}

// durationArg reads a duration the way scripts write them: seconds as a number, or a
// string with units.
func durationArg(v starlark.Value) (time.Duration, error) {
	switch x := v.(type) {
	case starlark.String:
		return builtins.ParseDuration(string(x))
	case starlark.Int:
		i, ok := x.Int64()
		if !ok || i < 0 {
			return 0, fmt.Errorf("invalid duration %s", x)
		}
		return time.Duration(i) * time.Second, nil
	case starlark.Float:
		if x < 0 {
			return 0, fmt.Errorf("invalid duration %s", x)
		}
		return time.Duration(float64(x) * float64(time.Second)), nil
	case startime.Duration:
		return time.Duration(x), nil
	}
	return 0, fmt.Errorf("want a duration (seconds, or a string like \"1m30s\"), got %s", v.Type())
}

// mockError formats a Starlark error with the position where it was raised.
func mockError(err error) error {
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		for i := len(ee.CallStack) - 1; i >= 0; i-- {
			if pos := ee.CallStack[i].Pos; pos.Filename() != "" && pos.Filename() != "<builtin>" {
				return fmt.Errorf("%s: %s", pos, ee.Msg)
			}
		}
		return errors.New(ee.Msg)
	}
	return err
}
