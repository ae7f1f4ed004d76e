package activities

import "time"

// Error types set by this package. A workflow sees them as error.type; they can be
// listed in RetryPolicy.NonRetryable.
const (
	// TypeActivityError is the type of an error that is not an *Error.
	TypeActivityError = "ActivityError"
	// TypeArgument: the arguments did not fit the function's parameters (non-retryable).
	TypeArgument = "ArgumentError"
	// TypePanic: the activity panicked (retryable).
	TypePanic = "PanicError"
	// TypeTimeout: an attempt ran longer than Options.Timeout (retryable).
	TypeTimeout = "timeout"
	// TypeResult: the result could not be encoded as JSON (non-retryable).
	TypeResult = "ResultError"
	// TypeCommand: a command activity exited with a non-zero status or was killed.
	TypeCommand = "CommandError"
	// TypeCommandNotFound: a command activity's executable is missing or not
	// executable (non-retryable).
	TypeCommandNotFound = "CommandNotFound"
	// TypeOutput: a command activity wrote something other than JSON on stdout.
	TypeOutput = "OutputError"
	// TypeUnknownActivity: no activity is registered under the name (non-retryable).
	TypeUnknownActivity = "UnknownActivity"
)

// Error is a typed activity failure. Type is shown to workflows as error.type and can
// be matched by RetryPolicy.NonRetryable; NonRetryable stops retries whatever the
// policy says.
type Error struct {
	Type         string
	Message      string
	NonRetryable bool
	Cause        error
	// RetryAfter is the least wait before the next attempt that the failed call asked
	// for (an HTTP Retry-After, say). The worker waits at least this long, and longer
	// when the retry policy says so; it changes nothing when no retry is left.
	RetryAfter time.Duration
}

// NewError returns an *Error of the given type and message.
func NewError(typ, message string) *Error {
	return &Error{Type: typ, Message: message}
}

// Error returns the message, or the cause's message when Message is empty.
func (e *Error) Error() string {
	switch {
	case e.Message != "":
		return e.Message
	case e.Cause != nil:
		return e.Cause.Error()
	case e.Type != "":
		return e.Type
	default:
		return TypeActivityError
	}
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// nonRetryableError marks the error it wraps as non-retryable.
type nonRetryableError struct{ err error }

func (e *nonRetryableError) Error() string { return e.err.Error() }
func (e *nonRetryableError) Unwrap() error { return e.err }

// NonRetryable wraps err so that no retry policy tries the activity again.
// errors.Is and errors.As still see err; NonRetryable(nil) is nil.
func NonRetryable(err error) error {
	if err == nil {
		return nil
	}
	if IsNonRetryable(err) {
		return err
	}
	return &nonRetryableError{err: err}
}

// IsNonRetryable reports whether err, or any error it wraps, was marked with
// NonRetryable or is an *Error with NonRetryable set.
func IsNonRetryable(err error) bool {
	found := false
	walk(err, func(e error) bool {
		switch e := e.(type) {
		case *nonRetryableError:
			found = true
		case *Error:
			found = e != nil && e.NonRetryable
		}
		return found
	})
	return found
}

// ErrorType is the Type of the first *Error in err's chain that has one, else
// "ActivityError".
func ErrorType(err error) string {
	typ := ""
	walk(err, func(e error) bool {
		if te, ok := e.(*Error); ok && te != nil && te.Type != "" {
			typ = te.Type
			return true
		}
		return false
	})
	if typ == "" {
		return TypeActivityError
	}
	return typ
}

// RetryAfter is the longest Error.RetryAfter in err's chain: the soonest after this
// failure that the next attempt may start. 0 when nothing asks for a wait.
func RetryAfter(err error) time.Duration {
	var d time.Duration
	walk(err, func(e error) bool {
		if te, ok := e.(*Error); ok && te != nil && te.RetryAfter > d {
			d = te.RetryAfter
		}
		return false
	})
	return d
}

// walk visits err and every error it wraps (depth first, like errors.Is) until visit
// returns true.
func walk(err error, visit func(error) bool) bool {
	for err != nil {
		if visit(err) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if walk(e, visit) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}
