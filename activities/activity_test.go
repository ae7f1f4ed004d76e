package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

type user struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Age   int      `json:"age"`
	Tags  []string `json:"tags,omitempty"`
	Admin bool     `json:"admin"`
}

func mustRegister(t *testing.T, r *Registry, name string, fn any, opts ...Option) *Activity {
	t.Helper()
	if err := r.Register(name, fn, opts...); err != nil {
		t.Fatalf("Register(%q): unexpected error: %v", name, err)
	}
	a, ok := r.Lookup(name)
	if !ok {
		t.Fatalf("Lookup(%q): not found after Register", name)
	}
	return a
}

func invoke(t *testing.T, a *Activity, args string) (string, error) {
	t.Helper()
	out, err := a.Invoke(context.Background(), json.RawMessage(args))
	return string(out), err
}

func wantErrContains(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected an error containing %q, got nil", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error message:\n  got:  %s\n  want it to contain: %s", err, w)
		}
	}
}

func TestRegisterValidation(t *testing.T) {
	ok := func(ctx context.Context, s string) (string, error) { return s, nil }
	tests := []struct {
		name string
		act  string
		fn   any
		opts []Option
		want string
	}{
		{"empty name", "", ok, nil, `registering activity "": empty activity name`},
		{"space in name", "a b", ok, nil, "must not contain spaces"},
		{"nil fn", "x", nil, nil, `registering activity "x": function is nil`},
		{"typed nil fn", "x", (func(context.Context) error)(nil), nil, "function is nil"},
		{"not a func", "x", 42, nil, "want a function"},
		{"no params", "x", func() error { return nil }, nil, "first parameter must be context.Context, but func() error has no parameters"},
		{"first not ctx", "x", func(s string) error { return nil }, nil, `registering activity "x": first parameter must be context.Context, got string`},
		{"no results", "x", func(ctx context.Context) {}, nil, "returns nothing"},
		{"three results", "x", func(ctx context.Context) (int, int, error) { return 0, 0, nil }, nil, "returns 3 values"},
		{"last not error", "x", func(ctx context.Context) (int, string) { return 0, "" }, nil, "last result must be error, got string"},
		{"only non-error", "x", func(ctx context.Context) int { return 0 }, nil, "last result must be error, got int"},
		{"chan param", "x", func(ctx context.Context, c chan int) error { return nil }, nil, "parameter 1 has type chan int, which cannot be decoded from JSON"},
		{"func result", "x", func(ctx context.Context) (func(), error) { return nil, nil }, nil, "result type func() cannot be encoded as JSON"},
		{"bad timeout", "x", ok, []Option{WithTimeout(-time.Second)}, "timeout must be >= 0"},
		{"bad retry", "x", ok, []Option{WithRetry(RetryPolicy{MaxAttempts: -1})}, "max_attempts must be >= 0, got -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRegistry()
			err := r.Register(tc.act, tc.fn, tc.opts...)
			wantErrContains(t, err, tc.want)
			if got := r.Names(); len(got) != 0 {
				t.Fatalf("Names after failed Register: got %v, want []", got)
			}
		})
	}
}

func TestRegisterDuplicateAndNames(t *testing.T) {
	r := NewRegistry()
	fn := func(ctx context.Context) error { return nil }
	for _, n := range []string{"zeta", "alpha", "mid.step"} {
		mustRegister(t, r, n, fn)
	}
	err := r.Register("alpha", fn)
	wantErrContains(t, err, `registering activity "alpha": an activity with that name is already registered`)
	if err := r.RegisterCommand("zeta=/bin/true"); err == nil {
		t.Fatalf("RegisterCommand with a taken name: got nil error, want duplicate error")
	}
	got := strings.Join(r.Names(), ",")
	if want := "alpha,mid.step,zeta"; got != want {
		t.Fatalf("Names: got %s, want %s", got, want)
	}
	if _, ok := r.Lookup("nope"); ok {
		t.Fatalf("Lookup of unknown name: got ok=true, want false")
	}
	_, err = r.Get("nope")
	wantErrContains(t, err, `unknown activity "nope" (registered: alpha, mid.step, zeta)`)
	if !IsNonRetryable(err) || ErrorType(err) != TypeUnknownActivity {
		t.Fatalf("Get error: got nonRetryable=%v type=%q, want true %q", IsNonRetryable(err), ErrorType(err), TypeUnknownActivity)
	}
}

func TestLookupReturnsCopy(t *testing.T) {
	r := NewRegistry()
	mustRegister(t, r, "x", func(ctx context.Context) error { return nil },
		WithRetry(RetryPolicy{MaxAttempts: 3}), WithTimeout(time.Second), WithCache(time.Hour), WithVersion("v2"))
	a, _ := r.Lookup("x")
	a.Options.Retry.MaxAttempts = 99
	a.Options.Timeout = 0
	b, _ := r.Lookup("x")
	if b.Options.Retry.MaxAttempts != 3 || b.Options.Timeout != time.Second {
		t.Fatalf("registry changed through a Lookup result: got %+v", b.Options)
	}
	if !b.Options.Cached || b.Options.CacheTTL != time.Hour || b.Options.Version != "v2" {
		t.Fatalf("options: got %+v, want cached for 1h, version v2", b.Options)
	}
	if b.Kind() != "go" {
		t.Fatalf("Kind: got %q, want go", b.Kind())
	}
}

func TestInvokeTypes(t *testing.T) {
	r := NewRegistry()
	tests := []struct {
		name string
		fn   any
		args string
		want string
	}{
		{"string", func(ctx context.Context, s string) (string, error) { return "Hello, " + s + "!", nil }, `["Ann"]`, `"Hello, Ann!"`},
		{"int", func(ctx context.Context, a, b int) (int, error) { return a + b, nil }, `[2, 40]`, `42`},
		{"float", func(ctx context.Context, x float64) (float64, error) { return x * 2, nil }, `[1.25]`, `2.5`},
		{"int into float", func(ctx context.Context, x float64) (float64, error) { return x / 2, nil }, `[3]`, `1.5`},
		{"bool", func(ctx context.Context, b bool) (bool, error) { return !b, nil }, `[false]`, `true`},
		{"struct in and out", func(ctx context.Context, u user) (user, error) { u.Age++; return u, nil },
			`[{"id":"u1","name":"Ann","age":41,"admin":true}]`, `{"id":"u1","name":"Ann","age":42,"admin":true}`},
		{"pointer struct", func(ctx context.Context, u *user) (*user, error) { return u, nil }, `[null]`, `null`},
		{"slice", func(ctx context.Context, xs []string) (int, error) { return len(xs), nil }, `[["a","b","c"]]`, `3`},
		{"map", func(ctx context.Context, m map[string]int) ([]string, error) {
			return []string{fmt.Sprint(m["a"] + m["b"])}, nil
		}, `[{"a":1,"b":2}]`, `["3"]`},
		{"any", func(ctx context.Context, v any) (any, error) { return v, nil }, `[{"k":[1,"x",null]}]`, `{"k":[1,"x",null]}`},
		{"raw message", func(ctx context.Context, v json.RawMessage) (json.RawMessage, error) { return v, nil }, `[{"a": 1}]`, `{"a":1}`},
		{"no args", func(ctx context.Context) (string, error) { return "ok", nil }, ``, `"ok"`},
		{"null args", func(ctx context.Context) (string, error) { return "ok", nil }, `null`, `"ok"`},
		{"variadic none", func(ctx context.Context, sep string, xs ...string) (string, error) { return strings.Join(xs, sep), nil }, `["-"]`, `""`},
		{"variadic many", func(ctx context.Context, sep string, xs ...string) (string, error) { return strings.Join(xs, sep), nil }, `["-","a","b","c"]`, `"a-b-c"`},
		{"html not escaped", func(ctx context.Context) (string, error) { return "<a href='x'>&</a>", nil }, `[]`, `"<a href='x'>&</a>"`},
		{"error only", func(ctx context.Context, s string) error { return nil }, `["x"]`, `null`},
		{"nil slice result", func(ctx context.Context) ([]int, error) { return nil, nil }, `[]`, `null`},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := mustRegister(t, r, fmt.Sprintf("act%d", i), tc.fn)
			got, err := invoke(t, a, tc.args)
			if err != nil {
				t.Fatalf("Invoke(%s): unexpected error: %v", tc.args, err)
			}
			if got != tc.want {
				t.Fatalf("Invoke(%s):\n  got:  %s\n  want: %s", tc.args, got, tc.want)
			}
		})
	}
}

func TestInvokeReceivesContext(t *testing.T) {
	r := NewRegistry()
	var got Info
	var beats []any
	a := mustRegister(t, r, "ctx", func(ctx context.Context) (string, error) {
		got, _ = InfoFromContext(ctx)
		Heartbeat(ctx, "half")
		Heartbeat(ctx, 2)
		i, _ := InfoFromContext(ctx)
		return i.IdempotencyKey(), nil
	})
	ctx := WithInfo(context.Background(), Info{ExecutionID: "e1", Seq: 7, Attempt: 2, Name: "ctx"})
	ctx = WithHeartbeatFunc(ctx, func(d any) { beats = append(beats, d) })
	out, err := a.Invoke(ctx, json.RawMessage(`[]`))
	if err != nil {
		t.Fatalf("Invoke: unexpected error: %v", err)
	}
	if string(out) != `"e1/7"` {
		t.Fatalf("result: got %s, want %q", out, `"e1/7"`)
	}
	if got.ExecutionID != "e1" || got.Seq != 7 || got.Attempt != 2 || got.Name != "ctx" || got.LastHeartbeat != nil {
		t.Fatalf("Info in activity: got %+v", got)
	}
	if fmt.Sprint(beats) != "[half 2]" {
		t.Fatalf("heartbeats: got %v, want [half 2]", beats)
	}
	// No heartbeat function: a no-op.
	Heartbeat(context.Background(), "ignored")
	if _, ok := InfoFromContext(context.Background()); ok {
		t.Fatalf("InfoFromContext(Background): got ok=true, want false")
	}
}

func TestInvokeArgumentErrors(t *testing.T) {
	r := NewRegistry()
	mustRegister(t, r, "fetch_user_data", func(ctx context.Context, id string) (user, error) { return user{}, nil })
	mustRegister(t, r, "add", func(ctx context.Context, a, b int) (int, error) { return a + b, nil })
	mustRegister(t, r, "none", func(ctx context.Context) error { return nil })
	mustRegister(t, r, "join", func(ctx context.Context, sep string, xs ...int) error { return nil })
	mustRegister(t, r, "save", func(ctx context.Context, u user) error { return nil })
	mustRegister(t, r, "list", func(ctx context.Context, xs []string) error { return nil })
	tests := []struct {
		act, args, want string
	}{
		{"fetch_user_data", `["u1", "u2"]`, `activity "fetch_user_data": expects 1 argument (string), got 2`},
		{"fetch_user_data", `[]`, `activity "fetch_user_data": expects 1 argument (string), got 0`},
		{"add", `[1]`, `activity "add": expects 2 arguments (int, int), got 1`},
		{"none", `[1]`, `activity "none": expects no arguments, got 1`},
		{"join", `[]`, `activity "join": expects at least 1 argument (string, ...int), got 0`},
		{"add", `[1, "abc"]`, `activity "add": argument 2: cannot use "abc" (JSON string) as int`},
		{"add", `[1.5, 2]`, `activity "add": argument 1: cannot use 1.5 (JSON number) as int`},
		{"fetch_user_data", `[42]`, `activity "fetch_user_data": argument 1: cannot use 42 (JSON number) as string`},
		{"join", `[",", 1, "x"]`, `activity "join": argument 3: cannot use "x" (JSON string) as int`},
		{"save", `[{"id":"u1","age":"old"}]`, `activity "save": argument 1: cannot use {"id":"u1","age":"old"} (JSON object) as activities.user: field "age": cannot use JSON string as int`},
		{"save", `["u1"]`, `argument 1: cannot use "u1" (JSON string) as activities.user`},
		{"list", `[{"a":1}]`, `argument 1: cannot use {"a":1} (JSON object) as []string`},
		{"add", `{"a":1}`, `activity "add": arguments must be a JSON array, got a JSON object`},
		{"add", `[1,`, `activity "add": arguments are not valid JSON`},
	}
	for _, tc := range tests {
		a, _ := r.Lookup(tc.act)
		_, err := invoke(t, a, tc.args)
		wantErrContains(t, err, tc.want)
		if !IsNonRetryable(err) {
			t.Fatalf("%s(%s): argument error should be non-retryable: %v", tc.act, tc.args, err)
		}
		if got := ErrorType(err); got != TypeArgument {
			t.Fatalf("%s(%s): ErrorType: got %q, want %q", tc.act, tc.args, got, TypeArgument)
		}
	}
}

func TestInvokeActivityErrors(t *testing.T) {
	r := NewRegistry()
	sentinel := errors.New("card declined")
	a := mustRegister(t, r, "charge", func(ctx context.Context, n int) (string, error) {
		switch n {
		case 1:
			return "", sentinel
		case 2:
			return "", NonRetryable(fmt.Errorf("charging: %w", sentinel))
		default:
			return "", &Error{Type: "InsufficientFunds", Message: "balance too low"}
		}
	})
	_, err := invoke(t, a, `[1]`)
	if !errors.Is(err, sentinel) || IsNonRetryable(err) || ErrorType(err) != TypeActivityError {
		t.Fatalf("plain error: got %v (nonRetryable=%v type=%q), want the sentinel, retryable, ActivityError", err, IsNonRetryable(err), ErrorType(err))
	}
	_, err = invoke(t, a, `[2]`)
	if !errors.Is(err, sentinel) || !IsNonRetryable(err) || err.Error() != "charging: card declined" {
		t.Fatalf("NonRetryable error: got %v (nonRetryable=%v), want wrapped sentinel, non-retryable", err, IsNonRetryable(err))
	}
	_, err = invoke(t, a, `[3]`)
	var ae *Error
	if !errors.As(err, &ae) || ae.Type != "InsufficientFunds" || err.Error() != "balance too low" {
		t.Fatalf("typed error: got %v, want *Error InsufficientFunds", err)
	}
	a2 := mustRegister(t, r, "fail", func(ctx context.Context) error { return sentinel })
	out, err := invoke(t, a2, `[]`)
	if !errors.Is(err, sentinel) || out != "" {
		t.Fatalf("error-only function: got (%q, %v), want (\"\", card declined)", out, err)
	}
}

func TestInvokePanic(t *testing.T) {
	r := NewRegistry()
	a := mustRegister(t, r, "boom", func(ctx context.Context, n int) (int, error) {
		if n == 0 {
			panic("kaboom")
		}
		var m map[string]int
		m["x"] = n // nil map write
		return 0, nil
	})
	_, err := invoke(t, a, `[0]`)
	wantErrContains(t, err, `activity "boom" panicked: kaboom`, "activity_test.go")
	if IsNonRetryable(err) || ErrorType(err) != TypePanic {
		t.Fatalf("panic error: got nonRetryable=%v type=%q, want false %q", IsNonRetryable(err), ErrorType(err), TypePanic)
	}
	_, err = invoke(t, a, `[1]`)
	wantErrContains(t, err, `activity "boom" panicked: assignment to entry in nil map`)
	var re interface{ RuntimeError() }
	if !errors.As(err, &re) {
		t.Fatalf("runtime panic: the runtime.Error should be the cause, got %#v", err)
	}
}

func TestInvokeResultEncodingError(t *testing.T) {
	r := NewRegistry()
	a := mustRegister(t, r, "weird", func(ctx context.Context) (map[string]any, error) {
		return map[string]any{"c": make(chan int)}, nil
	})
	_, err := invoke(t, a, `[]`)
	wantErrContains(t, err, `activity "weird": cannot encode result of type map[string]interface {} as JSON`)
	if ErrorType(err) != TypeResult {
		t.Fatalf("ErrorType: got %q, want %q", ErrorType(err), TypeResult)
	}
}

func TestInvokeTimeout(t *testing.T) {
	r := NewRegistry()
	polite := mustRegister(t, r, "polite", func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}, WithTimeout(50*time.Millisecond))
	release := make(chan struct{})
	defer close(release)
	stubborn := mustRegister(t, r, "stubborn", func(ctx context.Context) error {
		<-release // ignores its context
		return nil
	}, WithTimeout(50*time.Millisecond))
	quick := mustRegister(t, r, "quick", func(ctx context.Context) (int, error) { return 1, nil }, WithTimeout(time.Second))

	for _, a := range []*Activity{polite, stubborn} {
		start := time.Now()
		_, err := invoke(t, a, `[]`)
		wantErrContains(t, err, fmt.Sprintf("activity %q timed out after 50ms", a.Name))
		var ae *Error
		if !errors.As(err, &ae) || ae.Type != "timeout" || IsNonRetryable(err) {
			t.Fatalf("%s: got %#v, want a retryable *Error of type timeout", a.Name, err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: errors.Is(err, DeadlineExceeded) = false, want true", a.Name)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%s: Invoke returned after %s, want about 50ms", a.Name, d)
		}
	}
	if out, err := invoke(t, quick, `[]`); err != nil || out != "1" {
		t.Fatalf("quick: got (%s, %v), want (1, nil)", out, err)
	}
}

func TestInvokeCancelled(t *testing.T) {
	r := NewRegistry()
	started := make(chan struct{})
	a := mustRegister(t, r, "slow", func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}, WithTimeout(time.Minute))
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err := a.Invoke(ctx, json.RawMessage(`[]`))
	if !errors.Is(err, context.Canceled) || ErrorType(err) == TypeTimeout {
		t.Fatalf("cancelled Invoke: got %v (type %q), want context.Canceled, not a timeout", err, ErrorType(err))
	}
	if DefaultRetryPolicy().ShouldRetry(1, err) || (RetryPolicy{MaxAttempts: 5}).ShouldRetry(1, err) {
		t.Fatalf("ShouldRetry after worker cancellation: got true, want false")
	}
}

func TestRegistryConcurrent(t *testing.T) {
	r := NewRegistry()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			name := fmt.Sprintf("a%02d", i)
			if err := r.Register(name, func(ctx context.Context, n int) (int, error) { return n * 2, nil }); err != nil {
				t.Errorf("Register(%s): %v", name, err)
				return
			}
			a, ok := r.Lookup(name)
			if !ok {
				t.Errorf("Lookup(%s): not found", name)
				return
			}
			if out, err := a.Invoke(context.Background(), json.RawMessage(`[21]`)); err != nil || string(out) != "42" {
				t.Errorf("Invoke(%s): got (%s, %v), want (42, nil)", name, out, err)
			}
			_ = r.Names()
		})
	}
	wg.Wait()
	if n := len(r.Names()); n != 20 {
		t.Fatalf("Names: got %d names, want 20", n)
	}
}

func TestOptionsMergeAndJSON(t *testing.T) {
	base := NewOptions(WithRetry(RetryPolicy{MaxAttempts: 3, InitialDelay: time.Second}), WithTimeout(time.Minute), WithVersion("v1"))
	if base.RetryPolicy().MaxAttempts != 3 {
		t.Fatalf("RetryPolicy(): got %+v", base.RetryPolicy())
	}
	if got := (Options{}).RetryPolicy(); got.MaxAttempts != 1 {
		t.Fatalf("default RetryPolicy(): got MaxAttempts %d, want 1", got.MaxAttempts)
	}
	m := base.Merge(Options{Timeout: 5 * time.Second, Cached: true})
	if m.Timeout != 5*time.Second || !m.Cached || m.Version != "v1" || m.Retry.MaxAttempts != 3 {
		t.Fatalf("Merge: got %+v", m)
	}
	m.Retry.MaxAttempts = 10
	if base.Retry.MaxAttempts != 3 {
		t.Fatalf("Merge result shares its retry policy with the base: base now has %d attempts", base.Retry.MaxAttempts)
	}
	p := RetryPolicy{MaxAttempts: 2}
	m2 := base.Merge(Options{Retry: &p})
	p.MaxAttempts = 7
	if m2.Retry.MaxAttempts != 2 {
		t.Fatalf("Merge copies the override retry policy: got %d, want 2", m2.Retry.MaxAttempts)
	}

	o := NewOptions(WithRetry(RetryPolicy{MaxAttempts: 3, InitialDelay: 1500 * time.Millisecond, BackoffFactor: 2, NonRetryable: []string{"ValueError"}}),
		WithTimeout(30*time.Second), WithCache(0))
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatalf("Marshal options: %v", err)
	}
	want := `{"retry":{"max_attempts":3,"initial_delay":"1.5s","backoff_factor":2,"non_retryable":["ValueError"]},"timeout":"30s","cached":true}`
	if string(b) != want {
		t.Fatalf("Marshal options:\n  got:  %s\n  want: %s", b, want)
	}
	var back Options
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("Unmarshal options: %v", err)
	}
	if back.Timeout != o.Timeout || !back.Cached || back.Retry.InitialDelay != 1500*time.Millisecond || back.Retry.NonRetryable[0] != "ValueError" {
		t.Fatalf("round trip: got %+v (retry %+v)", back, back.Retry)
	}
	var fromSeconds Options
	if err := json.Unmarshal([]byte(`{"timeout": 2.5, "retry": {"max_delay": "1d"}, "heartbeat_timeout": "1m"}`), &fromSeconds); err != nil {
		t.Fatalf("Unmarshal with numbers of seconds: %v", err)
	}
	if fromSeconds.Timeout != 2500*time.Millisecond || fromSeconds.Retry.MaxDelay != 24*time.Hour || fromSeconds.HeartbeatTimeout != time.Minute {
		t.Fatalf("Unmarshal with numbers of seconds: got %+v (retry %+v)", fromSeconds, fromSeconds.Retry)
	}
	if err := json.Unmarshal([]byte(`{"timeout": "soon"}`), &fromSeconds); err == nil {
		t.Fatalf("Unmarshal of a bad duration: got nil error")
	}
}

// Under a deadline of the caller's ctx, or with ctx marked Abandonable, a function that
// ignores its context is abandoned when ctx is done, as under Options.Timeout.
func TestInvokeAbandonsUnderCallerDeadlineOrMark(t *testing.T) {
	r := NewRegistry()
	release := make(chan struct{})
	defer close(release)
	stubborn := mustRegister(t, r, "stubborn2", func(ctx context.Context) error {
		<-release // ignores its context
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := stubborn.Invoke(ctx, json.RawMessage(`[]`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("under the caller's deadline: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Invoke returned after %s under a 50ms deadline", d)
	}
	mctx, mcancel := context.WithCancel(Abandonable(context.Background()))
	time.AfterFunc(50*time.Millisecond, mcancel)
	start = time.Now()
	if _, err := stubborn.Invoke(mctx, json.RawMessage(`[]`)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Abandonable, cancelled: %v, want Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Invoke returned after %s, cancelled at 50ms", d)
	}
}

// Without a timeout, deadline or mark, the attempt runs on the caller's goroutine (its
// stack holds this test), and a panic is still recovered.
func TestInvokeInlineWithoutTimeout(t *testing.T) {
	r := NewRegistry()
	var stack string
	a := mustRegister(t, r, "inline", func(ctx context.Context) (int, error) {
		stack = string(debug.Stack())
		panic("boom")
	})
	_, err := a.Invoke(context.Background(), json.RawMessage(`[]`))
	if ErrorType(err) != "PanicError" {
		t.Fatalf("panic inline: %v, want a PanicError", err)
	}
	if !strings.Contains(stack, "TestInvokeInlineWithoutTimeout(") {
		t.Fatalf("the function ran on another goroutine:\n%s", stack)
	}
	b := mustRegister(t, r, "timed", func(ctx context.Context) (int, error) {
		stack = string(debug.Stack())
		return 1, nil
	}, WithTimeout(time.Minute))
	if _, err := b.Invoke(context.Background(), json.RawMessage(`[]`)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stack, "TestInvokeInlineWithoutTimeout(") {
		t.Fatal("an activity with a timeout ran on the caller's goroutine")
	}
}
