package activities

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

func TestDefaultRetryPolicy(t *testing.T) {
	p := DefaultRetryPolicy()
	if p.MaxAttempts != 1 || p.Attempts() != 1 {
		t.Fatalf("DefaultRetryPolicy: got MaxAttempts %d, want 1", p.MaxAttempts)
	}
	if p.ShouldRetry(1, errors.New("x")) {
		t.Fatalf("DefaultRetryPolicy.ShouldRetry(1, err): got true, want false")
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("DefaultRetryPolicy.Validate: %v", err)
	}
	if (RetryPolicy{}).ShouldRetry(1, errors.New("x")) {
		t.Fatalf("zero RetryPolicy.ShouldRetry: got true, want false")
	}
}

func TestRetryDelay(t *testing.T) {
	s := time.Second
	tests := []struct {
		name string
		p    RetryPolicy
		next int
		want time.Duration
	}{
		{"first attempt has no delay", RetryPolicy{InitialDelay: s}, 1, 0},
		{"first retry", RetryPolicy{InitialDelay: s, BackoffFactor: 2}, 2, s},
		{"second retry", RetryPolicy{InitialDelay: s, BackoffFactor: 2}, 3, 2 * s},
		{"fourth retry", RetryPolicy{InitialDelay: s, BackoffFactor: 2}, 5, 8 * s},
		{"factor 0 means 2", RetryPolicy{InitialDelay: s}, 4, 4 * s},
		{"factor 1 is constant", RetryPolicy{InitialDelay: 500 * time.Millisecond, BackoffFactor: 1}, 9, 500 * time.Millisecond},
		{"factor 1.5", RetryPolicy{InitialDelay: 2 * s, BackoffFactor: 1.5}, 4, 4500 * time.Millisecond},
		{"capped", RetryPolicy{InitialDelay: s, BackoffFactor: 2, MaxDelay: 5 * s}, 10, 5 * s},
		{"no initial delay", RetryPolicy{BackoffFactor: 2}, 5, 0},
		{"huge exponent saturates", RetryPolicy{InitialDelay: s, BackoffFactor: 10}, 500, time.Duration(1<<63 - 1)},
		{"huge exponent capped", RetryPolicy{InitialDelay: s, BackoffFactor: 10, MaxDelay: time.Hour}, 500, time.Hour},
	}
	for _, tc := range tests {
		if got := tc.p.Delay(tc.next); got != tc.want {
			t.Fatalf("%s: Delay(%d): got %s, want %s", tc.name, tc.next, got, tc.want)
		}
	}
}

func TestRetryDelayJitter(t *testing.T) {
	p := RetryPolicy{InitialDelay: time.Second, BackoffFactor: 2, Jitter: 0.25}
	seen := map[time.Duration]bool{}
	for range 200 {
		d := p.Delay(3) // 2s ± 25%
		if d < 1500*time.Millisecond || d > 2500*time.Millisecond {
			t.Fatalf("Delay(3) with jitter 0.25: got %s, want within [1.5s, 2.5s]", d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Fatalf("jitter: got %d distinct delays in 200 draws, want many", len(seen))
	}
	a := p.DelayWithRand(3, rand.New(rand.NewPCG(1, 2)))
	b := p.DelayWithRand(3, rand.New(rand.NewPCG(1, 2)))
	if a != b {
		t.Fatalf("DelayWithRand with the same seed: got %s and %s, want equal", a, b)
	}
	capped := RetryPolicy{InitialDelay: time.Second, MaxDelay: time.Second, Jitter: 1}
	for range 100 {
		if d := capped.Delay(5); d > time.Second || d < 0 {
			t.Fatalf("capped jittered delay: got %s, want within [0, 1s]", d)
		}
	}
}

func TestShouldRetry(t *testing.T) {
	plain := errors.New("connection refused")
	p := RetryPolicy{MaxAttempts: 3, NonRetryable: []string{"ValueError", "invalid card"}}
	tests := []struct {
		name    string
		p       RetryPolicy
		attempt int
		err     error
		want    bool
	}{
		{"nil error", p, 1, nil, false},
		{"first failure", p, 1, plain, true},
		{"second failure", p, 2, plain, true},
		{"attempts exhausted", p, 3, plain, false},
		{"beyond max", p, 4, plain, false},
		{"max 0 means one attempt", RetryPolicy{}, 1, plain, false},
		{"max 1 means one attempt", RetryPolicy{MaxAttempts: 1}, 1, plain, false},
		{"NonRetryable wrapper", p, 1, NonRetryable(plain), false},
		{"NonRetryable wrapped again", p, 1, fmt.Errorf("ctx: %w", NonRetryable(plain)), false},
		{"Error.NonRetryable", p, 1, &Error{Type: "X", Message: "m", NonRetryable: true}, false},
		{"listed type", p, 1, &Error{Type: "ValueError", Message: "bad value"}, false},
		{"listed type wrapped", p, 1, fmt.Errorf("step: %w", &Error{Type: "ValueError"}), false},
		{"listed message substring", p, 1, errors.New("charge failed: invalid card number"), false},
		{"unlisted type", p, 1, &Error{Type: "IOError", Message: "disk"}, true},
		{"timeout retried", p, 1, &Error{Type: TypeTimeout, Message: "slow", Cause: context.DeadlineExceeded}, true},
		{"timeout listed", RetryPolicy{MaxAttempts: 3, NonRetryable: []string{"timeout"}}, 1, &Error{Type: TypeTimeout, Message: "slow"}, false},
		{"panic retried", p, 1, &Error{Type: TypePanic, Message: "boom"}, true},
		{"worker cancelled", p, 1, fmt.Errorf("activity stopped: %w", context.Canceled), false},
		{"deadline of the caller retried", p, 1, context.DeadlineExceeded, true},
		{"argument error", p, 1, &Error{Type: TypeArgument, NonRetryable: true}, false},
		{"exit 65", p, 1, &Error{Type: TypeCommand, Message: "bad input (exit status 65)", NonRetryable: true}, false},
	}
	for _, tc := range tests {
		if got := tc.p.ShouldRetry(tc.attempt, tc.err); got != tc.want {
			t.Fatalf("%s: ShouldRetry(%d, %v): got %v, want %v", tc.name, tc.attempt, tc.err, got, tc.want)
		}
	}
}

func TestRetryPolicyValidate(t *testing.T) {
	tests := []struct {
		p    RetryPolicy
		want string // "" = valid
	}{
		{RetryPolicy{}, ""},
		{RetryPolicy{MaxAttempts: 5, InitialDelay: time.Second, BackoffFactor: 2, MaxDelay: time.Minute, Jitter: 0.2, NonRetryable: []string{"ValueError"}}, ""},
		{RetryPolicy{MaxAttempts: -1}, "max_attempts must be >= 0, got -1"},
		{RetryPolicy{InitialDelay: -time.Second}, "initial_delay must be >= 0, got -1s"},
		{RetryPolicy{BackoffFactor: 0.5}, "backoff_factor must be >= 1 (0 means 2), got 0.5"},
		{RetryPolicy{BackoffFactor: -2}, "backoff_factor must be >= 1"},
		{RetryPolicy{MaxDelay: -1}, "max_delay must be >= 0"},
		{RetryPolicy{InitialDelay: time.Minute, MaxDelay: time.Second}, "initial_delay (1m0s) is larger than max_delay (1s)"},
		{RetryPolicy{Jitter: 1.5}, "jitter must be between 0 and 1, got 1.5"},
		{RetryPolicy{Jitter: -0.1}, "jitter must be between 0 and 1"},
		{RetryPolicy{NonRetryable: []string{"a", " "}}, "non_retryable[1] is empty"},
	}
	for _, tc := range tests {
		err := tc.p.Validate()
		if tc.want == "" {
			if err != nil {
				t.Fatalf("Validate(%+v): got %v, want nil", tc.p, err)
			}
			continue
		}
		wantErrContains(t, err, "retry policy: "+tc.want)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"", 0, false},
		{"1s", time.Second, false},
		{"1h30m", 90 * time.Minute, false},
		{"250ms", 250 * time.Millisecond, false},
		{"2d8h", 56 * time.Hour, false},
		{"1w", 7 * 24 * time.Hour, false},
		{"1.5d", 36 * time.Hour, false},
		{"-1d", -24 * time.Hour, false},
		{"d", 0, true},
		{"1x", 0, true},
		{"1dd", 0, true},
	}
	for _, tc := range tests {
		got, err := ParseDuration(tc.in)
		if tc.bad {
			if err == nil {
				t.Fatalf("ParseDuration(%q): got %s, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Fatalf("ParseDuration(%q): got (%s, %v), want (%s, nil)", tc.in, got, err, tc.want)
		}
	}
}

func TestRetryDelayAfter(t *testing.T) {
	s := time.Second
	p := RetryPolicy{MaxAttempts: 5, InitialDelay: s, BackoffFactor: 2, MaxDelay: 4 * s}
	hint := &Error{Type: "HTTPError", Message: "busy", RetryAfter: 30 * s}
	tests := []struct {
		name string
		err  error
		next int
		want time.Duration
	}{
		{"no hint: the policy's delay", errors.New("x"), 3, 2 * s},
		{"hint longer than the policy's delay, and than MaxDelay", hint, 2, 30 * s},
		{"hint shorter than the policy's delay", &Error{RetryAfter: s / 2}, 3, 2 * s},
		{"hint found through wrapping", fmt.Errorf("calling: %w", hint), 2, 30 * s},
		{"the longest hint in a joined error", errors.Join(&Error{RetryAfter: 5 * s}, hint), 2, 30 * s},
		{"nil error", nil, 2, s},
	}
	for _, tc := range tests {
		if got := p.DelayAfter(tc.next, tc.err); got != tc.want {
			t.Errorf("%s: DelayAfter(%d): got %s, want %s", tc.name, tc.next, got, tc.want)
		}
	}
	if got := RetryAfter(NonRetryable(hint)); got != 30*s {
		t.Errorf("RetryAfter(NonRetryable(hint)): got %s, want 30s", got)
	}
}
