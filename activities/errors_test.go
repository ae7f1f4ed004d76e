package activities

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestNonRetryable(t *testing.T) {
	if NonRetryable(nil) != nil {
		t.Fatalf("NonRetryable(nil): got non-nil, want nil")
	}
	base := fs.ErrNotExist
	err := NonRetryable(base)
	if !IsNonRetryable(err) {
		t.Fatalf("IsNonRetryable(NonRetryable(err)): got false, want true")
	}
	if !errors.Is(err, fs.ErrNotExist) || err.Error() != base.Error() {
		t.Fatalf("NonRetryable hides its error: Is=%v message=%q", errors.Is(err, fs.ErrNotExist), err.Error())
	}
	if IsNonRetryable(base) || IsNonRetryable(nil) {
		t.Fatalf("IsNonRetryable of a plain error or nil: got true, want false")
	}
	wrapped := fmt.Errorf("loading: %w", err)
	if !IsNonRetryable(wrapped) {
		t.Fatalf("IsNonRetryable through fmt.Errorf %%w: got false, want true")
	}
	joined := errors.Join(errors.New("other"), err)
	if !IsNonRetryable(joined) {
		t.Fatalf("IsNonRetryable through errors.Join: got false, want true")
	}
	if NonRetryable(err) != err {
		t.Fatalf("NonRetryable of an already non-retryable error should return it unchanged")
	}
	var pe *fs.PathError
	pathErr := NonRetryable(&fs.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist})
	if !errors.As(pathErr, &pe) || pe.Path != "/x" {
		t.Fatalf("errors.As through NonRetryable: got %v", pe)
	}
	// An outer typed error that is retryable does not hide an inner non-retryable one.
	outer := &Error{Type: "Outer", Message: "outer", Cause: &Error{Type: "Inner", NonRetryable: true}}
	if !IsNonRetryable(outer) {
		t.Fatalf("IsNonRetryable(outer retryable wrapping inner non-retryable): got false, want true")
	}
}

func TestErrorType(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{errors.New("x"), "ActivityError"},
		{nil, "ActivityError"},
		{&Error{Type: "ValueError", Message: "bad"}, "ValueError"},
		{fmt.Errorf("wrap: %w", &Error{Type: "ValueError"}), "ValueError"},
		{NonRetryable(&Error{Type: "ValueError"}), "ValueError"},
		{&Error{Message: "untyped", Cause: &Error{Type: "Inner"}}, "Inner"},
		{&Error{Message: "untyped"}, "ActivityError"},
	}
	for _, tc := range tests {
		if got := ErrorType(tc.err); got != tc.want {
			t.Fatalf("ErrorType(%v): got %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestErrorMessageAndUnwrap(t *testing.T) {
	cause := errors.New("root cause")
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Type: "T", Message: "msg", Cause: cause}, "msg"},
		{&Error{Type: "T", Cause: cause}, "root cause"},
		{&Error{Type: "T"}, "T"},
		{&Error{}, "ActivityError"},
		{NewError("T", "made"), "made"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Fatalf("(%#v).Error(): got %q, want %q", tc.err, got, tc.want)
		}
	}
	if !errors.Is(&Error{Cause: cause}, cause) {
		t.Fatalf("errors.Is through *Error.Unwrap: got false, want true")
	}
}

func TestInfoIdempotencyKey(t *testing.T) {
	tests := []struct {
		info Info
		want string
	}{
		{Info{ExecutionID: "exec-1", Seq: 3, Attempt: 2}, "exec-1/3"},
		{Info{ExecutionID: "order-42", Seq: 0}, "order-42/0"},
		{Info{}, "/0"},
	}
	for _, tc := range tests {
		if got := tc.info.IdempotencyKey(); got != tc.want {
			t.Fatalf("IdempotencyKey(%+v): got %q, want %q", tc.info, got, tc.want)
		}
	}
	a := Info{ExecutionID: "e", Seq: 1, Attempt: 1}
	b := a
	b.Attempt = 5
	if a.IdempotencyKey() != b.IdempotencyKey() {
		t.Fatalf("IdempotencyKey must not depend on the attempt: %q vs %q", a.IdempotencyKey(), b.IdempotencyKey())
	}
}
