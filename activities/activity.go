package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
)

// Activity is a registered activity: a Go function, a command or an HTTP endpoint.
type Activity struct {
	Name    string
	Options Options

	// Go function activities.
	fn        reflect.Value
	params    []reflect.Type // excluding the context; the last is a slice when variadic
	variadic  bool
	hasResult bool

	// Command activities: argv of the command.
	command []string

	// HTTP activities: where to POST (immutable once registered).
	http *HTTPEndpoint
}

// Kind is "go" for a Go function, "command" for a command activity and "http" for an
// HTTP activity.
func (a *Activity) Kind() string {
	switch {
	case a.command != nil:
		return "command"
	case a.http != nil:
		return "http"
	}
	return "go"
}

// Command returns the argv of a command activity (nil for a Go function).
func (a *Activity) Command() []string {
	return append([]string(nil), a.command...)
}

func (a *Activity) clone() *Activity {
	c := *a
	if a.Options.Retry != nil {
		p := *a.Options.Retry
		p.NonRetryable = append([]string(nil), p.NonRetryable...)
		c.Options.Retry = &p
	}
	return &c
}

// bindFunc validates fn's signature and stores it.
func (a *Activity) bindFunc(fn any) error {
	if fn == nil {
		return errors.New("function is nil")
	}
	v := reflect.ValueOf(fn)
	t := v.Type()
	if t.Kind() != reflect.Func {
		return fmt.Errorf("want a function func(context.Context, ...) (T, error), got %s", t)
	}
	if v.IsNil() {
		return errors.New("function is nil")
	}
	if t.NumIn() == 0 {
		return fmt.Errorf("first parameter must be context.Context, but %s has no parameters", t)
	}
	if t.In(0) != contextType {
		return fmt.Errorf("first parameter must be context.Context, got %s", t.In(0))
	}
	switch {
	case t.NumOut() == 0:
		return fmt.Errorf("must return error or (T, error), but %s returns nothing", t)
	case t.NumOut() > 2:
		return fmt.Errorf("must return error or (T, error), but %s returns %d values", t, t.NumOut())
	case t.Out(t.NumOut()-1) != errorType:
		return fmt.Errorf("last result must be error, got %s", t.Out(t.NumOut()-1))
	}
	params := make([]reflect.Type, 0, t.NumIn()-1)
	for i := 1; i < t.NumIn(); i++ {
		p := t.In(i)
		elem := p
		if t.IsVariadic() && i == t.NumIn()-1 {
			elem = p.Elem()
		}
		if !jsonable(elem) {
			return fmt.Errorf("parameter %d has type %s, which cannot be decoded from JSON", i, elem)
		}
		params = append(params, p)
	}
	if t.NumOut() == 2 && !jsonable(t.Out(0)) {
		return fmt.Errorf("result type %s cannot be encoded as JSON", t.Out(0))
	}
	a.fn, a.params, a.variadic, a.hasResult = v, params, t.IsVariadic(), t.NumOut() == 2
	return nil
}

// jsonable rejects the kinds encoding/json can never handle (checked at the top level
// only; nested fields are checked when values cross).
func jsonable(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.Complex64, reflect.Complex128, reflect.UnsafePointer:
		return false
	}
	return true
}

// Invoke runs the activity once with a JSON array of arguments (empty or null means
// no arguments) and returns its JSON result.
//
// If Options.Timeout is set the attempt runs under that deadline, on a goroutine of
// its own, and fails with an *Error of type "timeout" when it passes. When the deadline
// passes or ctx is cancelled Invoke returns at once, even if a Go function ignores its
// context (its late result is discarded).
//
// Without a timeout (Options.Timeout, or a deadline on ctx) and unless ctx was marked
// with Abandonable, the attempt runs on the caller's goroutine: starting a goroutine
// per attempt and waiting for it costs a wake-up of another thread, a sixth of a short
// sequential step. A Go function without a timeout that ignores its context is then
// waited for when ctx is cancelled; give such a function a timeout.
//
// A panic is recovered and returned as a retryable *Error of type "PanicError".
// Argument errors are non-retryable.
func (a *Activity) Invoke(ctx context.Context, args json.RawMessage) (json.RawMessage, error) {
	if _, deadline := ctx.Deadline(); a.Options.Timeout <= 0 && !deadline && ctx.Value(abandonableKey{}) == nil {
		o := a.call(ctx, args)
		if o.err == nil {
			return o.result, nil
		}
		return nil, a.stoppedErr(ctx, o.err)
	}
	runCtx := ctx
	if a.Options.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, a.Options.Timeout)
		defer cancel()
	}
	done := make(chan outcome, 1)
	go func() { done <- a.call(runCtx, args) }()
	var o outcome
	select {
	case o = <-done:
	case <-runCtx.Done():
		// Prefer an outcome that is already there.
		select {
		case o = <-done:
		default:
			o.err = runCtx.Err()
		}
	}
	if o.err == nil {
		return o.result, nil
	}
	if ctx.Err() == nil && runCtx.Err() != nil {
		return nil, &Error{
			Type:    TypeTimeout,
			Message: fmt.Sprintf("activity %q timed out after %s", a.Name, a.Options.Timeout),
			Cause:   context.DeadlineExceeded,
		}
	}
	return nil, a.stoppedErr(ctx, o.err)
}

// outcome is what one call of the activity gave.
type outcome struct {
	result json.RawMessage
	err    error
}

// call runs the activity once, turning a panic into a *Error of type "PanicError".
func (a *Activity) call(ctx context.Context, args json.RawMessage) (o outcome) {
	defer func() {
		if r := recover(); r != nil {
			o = outcome{err: a.panicError(r)}
		}
	}()
	o.result, o.err = a.run(ctx, args)
	return o
}

type abandonableKey struct{}

// Abandonable marks ctx as one that may be cancelled for a reason the function may not
// heed in time (a heartbeat watchdog, say): Invoke then runs the attempt on a goroutine
// of its own and returns as soon as ctx is done, as it does under a timeout.
func Abandonable(ctx context.Context) context.Context {
	return context.WithValue(ctx, abandonableKey{}, true)
}

// stoppedErr is err, or, when the worker stopped the attempt (ctx is done), err
// explained by that: whatever failed, that is why.
func (a *Activity) stoppedErr(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	if errors.Is(err, ctx.Err()) {
		return fmt.Errorf("activity %q stopped: %w", a.Name, err)
	}
	return fmt.Errorf("activity %q stopped: %w: %w", a.Name, ctx.Err(), err)
}

func (a *Activity) run(ctx context.Context, args json.RawMessage) (json.RawMessage, error) {
	if a.command != nil {
		return a.runCommand(ctx, args)
	}
	if a.http != nil {
		return a.runHTTP(ctx, args)
	}
	if !a.fn.IsValid() {
		return nil, &Error{Type: TypeActivityError, Message: fmt.Sprintf("activity %q has no function", a.Name), NonRetryable: true}
	}
	in, err := a.decodeArgs(args)
	if err != nil {
		return nil, err
	}
	in[0] = reflect.ValueOf(&ctx).Elem()
	out := a.fn.Call(in)
	if errV := out[len(out)-1]; !errV.IsNil() {
		return nil, errV.Interface().(error)
	}
	if !a.hasResult {
		return json.RawMessage("null"), nil
	}
	return a.encodeResult(out[0])
}

// splitArgs decodes a JSON array into its elements.
func (a *Activity) splitArgs(args json.RawMessage) ([]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(args)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil, nil
	}
	if !json.Valid(trimmed) {
		return nil, a.argError("arguments are not valid JSON: %s", excerpt(trimmed, 60))
	}
	if trimmed[0] != '[' {
		return nil, a.argError("arguments must be a JSON array, got a JSON %s", jsonKind(trimmed))
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(trimmed, &elems); err != nil {
		return nil, a.argError("arguments are not a valid JSON array: %v", err)
	}
	return elems, nil
}

func (a *Activity) decodeArgs(args json.RawMessage) ([]reflect.Value, error) {
	elems, err := a.splitArgs(args)
	if err != nil {
		return nil, err
	}
	fixed := len(a.params)
	if a.variadic {
		fixed--
	}
	if len(elems) < fixed || (!a.variadic && len(elems) > fixed) {
		return nil, a.argError("%s, got %d", a.expects(), len(elems))
	}
	in := make([]reflect.Value, 0, 1+len(elems))
	in = append(in, reflect.Value{}) // the context, set by the caller
	for i, raw := range elems {
		t := a.paramType(i)
		p := reflect.New(t)
		if err := json.Unmarshal(raw, p.Interface()); err != nil {
			return nil, a.argError("argument %d: %s", i+1, describeDecodeError(raw, t, err))
		}
		in = append(in, p.Elem())
	}
	return in, nil
}

// paramType is the Go type argument i (0-based, excluding the context) decodes into.
func (a *Activity) paramType(i int) reflect.Type {
	if a.variadic && i >= len(a.params)-1 {
		return a.params[len(a.params)-1].Elem()
	}
	return a.params[i]
}

// expects describes the parameter list: `expects 1 argument (string)`.
func (a *Activity) expects() string {
	if len(a.params) == 0 {
		return "expects no arguments"
	}
	names := make([]string, len(a.params))
	for i, p := range a.params {
		names[i] = p.String()
		if a.variadic && i == len(a.params)-1 {
			names[i] = "..." + p.Elem().String()
		}
	}
	n := len(a.params)
	quant := ""
	if a.variadic {
		n--
		quant = "at least "
	}
	plural := "s"
	if n == 1 {
		plural = ""
	}
	return fmt.Sprintf("expects %s%d argument%s (%s)", quant, n, plural, strings.Join(names, ", "))
}

func (a *Activity) argError(format string, args ...any) error {
	return &Error{
		Type:         TypeArgument,
		Message:      fmt.Sprintf("activity %q: ", a.Name) + fmt.Sprintf(format, args...),
		NonRetryable: true,
	}
}

func (a *Activity) encodeResult(v reflect.Value) (json.RawMessage, error) {
	b, err := MarshalJSON(v.Interface())
	if err != nil {
		return nil, &Error{
			Type:         TypeResult,
			Message:      fmt.Sprintf("activity %q: cannot encode result of type %s as JSON: %v", a.Name, v.Type(), err),
			NonRetryable: true,
			Cause:        err,
		}
	}
	return b, nil
}

// MarshalJSON encodes v as every value crossing a checkpoint is encoded: without HTML
// escaping and without a trailing newline.
func MarshalJSON(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return json.RawMessage(bytes.TrimRight(buf.Bytes(), "\n")), nil
}

func (a *Activity) panicError(r any) error {
	msg := fmt.Sprintf("activity %q panicked: %v", a.Name, r)
	if where := panicLocation(); where != "" {
		msg += " (at " + where + ")"
	}
	e := &Error{Type: TypePanic, Message: msg}
	if err, ok := r.(error); ok {
		e.Cause = err
	}
	return e
}

// panicLocation finds the frame that panicked: the first one below the runtime's
// panic machinery. It must be called from the deferred function.
func panicLocation() string {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	sawPanic := false
	for {
		f, more := frames.Next()
		if strings.HasPrefix(f.Function, "runtime.") || strings.HasPrefix(f.Function, "internal/runtime/") {
			sawPanic = sawPanic || f.Function == "runtime.gopanic" || strings.HasPrefix(f.Function, "runtime.panic")
		} else if sawPanic && f.Function != "" {
			return fmt.Sprintf("%s %s:%d", f.Function, filepath.Base(f.File), f.Line)
		}
		if !more {
			return ""
		}
	}
}

// describeDecodeError explains why raw does not decode into t.
func describeDecodeError(raw json.RawMessage, t reflect.Type, err error) string {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) && ute.Field != "" {
		return fmt.Sprintf("cannot use %s (JSON %s) as %s: field %q: cannot use JSON %s as %s",
			excerpt(raw, 60), jsonKind(raw), t, ute.Field, ute.Value, ute.Type)
	}
	if ute != nil && ute.Type == t {
		return fmt.Sprintf("cannot use %s (JSON %s) as %s", excerpt(raw, 60), jsonKind(raw), t)
	}
	return fmt.Sprintf("cannot use %s (JSON %s) as %s: %v", excerpt(raw, 60), jsonKind(raw), t, err)
}

// jsonKind names the kind of a JSON value from its first byte.
func jsonKind(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// excerpt returns at most n bytes of b (cut at a rune boundary), with "..." when cut.
func excerpt(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) <= n {
		return string(b)
	}
	cut := n
	for cut > 0 && !isRuneStart(b[cut]) {
		cut--
	}
	return string(b[:cut]) + "..."
}

func isRuneStart(c byte) bool { return c&0xC0 != 0x80 }
