package stenttest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/activities"
	"github.com/stent-go/stent/backend"
)

// Env is a test's engine: a private in-memory SQLite database, a running worker and
// virtual time, closed when the test ends. The embedded *stent.Engine gives access to
// everything else (Dispatch, WaitFor, History, VirtualClock, ...).
type Env struct {
	*stent.Engine
	t       testing.TB
	cfg     options
	scripts atomic.Int64

	dirOnce sync.Once
	dir     string // where Script writes
}

// New returns an engine for t, with the activities given as Activity options
// registered and a worker serving it. It is stopped and closed when t ends.
//
//	env := stenttest.New(t, stenttest.Activity("fetch_user_data", fetchUser))
//	res := env.Run("workflows/notification/notification.star", []string{"u1"}, "Welcome")
//	res.AssertValue(map[string]any{"delivered": 1})
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	o := buildOptions(opts)
	cfg := o.engine
	if o.builtins != nil {
		cfg.builtins = o.builtins()
	}
	cfg.warn = func(msg string) { t.Log(msg) }
	te, err := startEngine(context.Background(), cfg)
	if err != nil {
		t.Fatalf("stenttest.New: %v", err)
	}
	t.Cleanup(te.stop)
	return &Env{Engine: te.eng, t: t, cfg: o}
}

// Register registers an activity, failing the test if it cannot.
func (e *Env) Register(name string, fn any, opts ...activities.Option) {
	e.t.Helper()
	if err := e.Engine.Register(name, fn, opts...); err != nil {
		e.t.Fatalf("registering activity %q: %v", name, err)
	}
}

// Script writes src to a new file of the test's temporary directory and returns its
// path, for Run. Histories and golden text show the file without the directory.
func (e *Env) Script(src string) string {
	e.t.Helper()
	e.dirOnce.Do(func() { e.dir = e.t.TempDir() })
	p := filepath.Join(e.dir, fmt.Sprintf("workflow%d.star", e.scripts.Add(1)))
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// Run dispatches script's main(args...) and waits until it ends (in virtual time; in
// real time for as long as it makes progress: the test fails when no event is added
// for the Timeout option, 10s by default). A relative script path is
// looked up from the test's directory, then from the module root, so
// "workflows/notification/notification.star" works from any package. A script that cannot be
// dispatched fails the test; a workflow that fails does not (see AssertFailure).
func (e *Env) Run(script string, args ...any) *Result {
	e.t.Helper()
	return e.RunWith(script, args, nil)
}

// RunWith is Run with dispatch options (stent.ID, stent.Entry, ...).
func (e *Env) RunWith(script string, args []any, opts []stent.DispatchOption) *Result {
	e.t.Helper()
	path, err := resolveScript(".", script)
	if err != nil {
		e.t.Fatalf("stenttest: %v", err)
	}
	if args == nil {
		args = []any{}
	}
	ctx := context.Background()
	id, err := e.Dispatch(ctx, path, args, opts...)
	if err != nil {
		e.t.Fatalf("dispatching %s: %v", script, err)
	}
	return e.Wait(id)
}

// Wait waits until the execution id ends.
func (e *Env) Wait(id string) *Result {
	e.t.Helper()
	res, err := waitProgressing(context.Background(), e.Engine, id, e.cfg.engine.timeout)
	if res == nil {
		hist := ""
		if events, herr := e.History(context.Background(), id); herr == nil {
			hist = FormatHistory(events, time.Time{})
		}
		e.t.Fatalf("execution %s made no progress for %s of real time (%v); its history so far:\n%s", id, e.cfg.engine.timeout, err, hist)
	}
	return &Result{Result: res, env: e}
}

// Result is an execution that ended, with assertions.
type Result struct {
	*stent.Result
	env *Env
}

// AssertValue checks that the execution completed with a value equal to want once
// both are encoded as JSON (want may be any Go value, or a json.RawMessage).
func (r *Result) AssertValue(want any) {
	t := r.env.t
	t.Helper()
	if err := r.Err(); err != nil {
		t.Fatalf("execution failed: %v\nhistory:\n%s", err, r.History())
	}
	var wantRaw []byte
	if raw, ok := want.(json.RawMessage); ok {
		wantRaw = raw
	} else {
		var err error
		if wantRaw, err = json.Marshal(want); err != nil {
			t.Fatalf("AssertValue: want is not JSON-encodable: %v", err)
		}
	}
	var got, exp any
	if err := json.Unmarshal(r.Value, &got); err != nil {
		t.Fatalf("result %s is not JSON: %v", r.Value, err)
	}
	if err := json.Unmarshal(wantRaw, &exp); err != nil {
		t.Fatalf("AssertValue: want %s is not JSON: %v", wantRaw, err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Fatalf("result:\n%s\nwant:\n%s", indentJSON(r.Value), indentJSON(wantRaw))
	}
}

// AssertFailure checks that the execution failed with a message containing substr.
func (r *Result) AssertFailure(substr string) {
	t := r.env.t
	t.Helper()
	if r.Status == backend.StatusCompleted {
		t.Fatalf("execution completed with %s, want a failure containing %q", r.Value, substr)
	}
	msg := ""
	if r.Failure != nil {
		msg = r.Failure.Message
	}
	if !strings.Contains(msg, substr) {
		t.Fatalf("execution %s with %q, want a message containing %q", r.Status, msg, substr)
	}
}

// History returns the execution's history in the form of FormatHistory, with uuid and
// random values masked and paths relative to the module root.
func (r *Result) History() string {
	r.env.t.Helper()
	events, err := r.env.Engine.History(context.Background(), r.ID)
	if err != nil {
		r.env.t.Fatalf("reading the history of %s: %v", r.ID, err)
	}
	m := newMasker(&snapshot{execs: []execInfo{{events: events}}}, r.env.maskDirs()...)
	return m.mask(FormatHistory(events, time.Time{}))
}

// AssertHistory compares the history with want (FormatHistory's form; leading and
// trailing blank lines and the indentation common to all lines are ignored, so want
// can be a raw string literal indented with the code).
func (r *Result) AssertHistory(want string) {
	r.env.t.Helper()
	got := r.History()
	if d := Diff("want", dedent(want), "history", got); d != "" {
		r.env.t.Fatalf("history differs:\n%s", d)
	}
}

// Golden returns what a golden file would expect of this execution: result or error,
// log, its history and those of its children.
func (r *Result) Golden() string {
	r.env.t.Helper()
	snap, err := takeSnapshot(context.Background(), r.env.Engine, r.ID, r.Result)
	if err != nil {
		r.env.t.Fatal(err)
	}
	return expectationText(snap.sections(newMasker(snap, r.env.maskDirs()...)))
}

// Logs returns the lines the execution printed.
func (r *Result) Logs() []string {
	r.env.t.Helper()
	lines, err := r.env.Backend().Logs(context.Background(), r.ID)
	if err != nil {
		r.env.t.Fatalf("reading the log of %s: %v", r.ID, err)
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Message
	}
	return out
}

// dedent trims blank lines around s and the indentation its lines share.
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	prefix, first := "", true
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		ws := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if first {
			prefix, first = ws, false
			continue
		}
		for !strings.HasPrefix(ws, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(strings.TrimRight(strings.TrimPrefix(l, prefix), " \t"))
		b.WriteByte('\n')
	}
	return b.String()
}

// maskDirs are the directories left out of paths in histories and golden text.
func (e *Env) maskDirs() []string {
	dirs := []string{moduleRoot(".")}
	if e.dir != "" {
		dirs = append(dirs, e.dir)
	}
	return dirs
}
