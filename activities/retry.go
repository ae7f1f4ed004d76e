package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy says how often and how fast a failed activity is tried again. The zero
// value (and DefaultRetryPolicy) makes one attempt and never retries.
//
// The wait before attempt n (n >= 2) is InitialDelay * BackoffFactor^(n-2), randomised
// by ±Jitter of itself and then capped at MaxDelay.
//
// In JSON (as stored with a scheduled activity) the fields are snake_case and durations
// are strings such as "1.5s" or numbers of seconds.
type RetryPolicy struct {
	MaxAttempts   int           // total attempts including the first; 0 or 1 = no retry
	InitialDelay  time.Duration // wait before the first retry
	BackoffFactor float64       // multiplier per retry; 0 is treated as 2.0
	MaxDelay      time.Duration // cap on the wait; 0 = unbounded
	Jitter        float64       // 0..1: fraction of the wait randomised (+/-)
	// NonRetryable lists error types (see ErrorType) or message substrings that stop
	// retrying.
	NonRetryable []string
}

// DefaultRetryPolicy is the policy of an activity registered without WithRetry: a
// single attempt. Activities are not retried unless asked.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 1, BackoffFactor: 2}
}

// Attempts is the total number of attempts the policy allows (at least 1).
func (p RetryPolicy) Attempts() int {
	return max(1, p.MaxAttempts)
}

// Delay is the wait before attempt number next (2 for the first retry; 0 for next < 2).
// It is deterministic when Jitter is 0; otherwise it draws from math/rand/v2.
func (p RetryPolicy) Delay(next int) time.Duration {
	return p.delay(next, rand.Float64)
}

// DelayAfter is the wait before attempt number next after a failure with err: Delay(next),
// or the RetryAfter the error asks for when that is longer. MaxDelay caps the policy's
// own delay, not the error's request.
func (p RetryPolicy) DelayAfter(next int, err error) time.Duration {
	return max(p.Delay(next), RetryAfter(err))
}

// DelayWithRand is Delay drawing its jitter from r (math/rand/v2 when r is nil), for
// reproducible schedules in tests.
func (p RetryPolicy) DelayWithRand(next int, r *rand.Rand) time.Duration {
	if r == nil {
		return p.Delay(next)
	}
	return p.delay(next, r.Float64)
}

func (p RetryPolicy) delay(next int, random func() float64) time.Duration {
	if next < 2 || p.InitialDelay <= 0 {
		return 0
	}
	factor := p.BackoffFactor
	if factor == 0 {
		factor = 2
	}
	d := float64(p.InitialDelay) * math.Pow(factor, float64(next-2))
	if j := min(p.Jitter, 1); j > 0 {
		d *= 1 + j*(2*random()-1)
	}
	if p.MaxDelay > 0 && d > float64(p.MaxDelay) {
		return p.MaxDelay
	}
	switch {
	case math.IsNaN(d) || d <= 0:
		return 0
	case d >= float64(math.MaxInt64):
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(d)
}

// ShouldRetry reports whether another attempt is allowed after attempt number attempt
// (1 for the first) failed with err: attempts are left, err is not marked non-retryable
// (NonRetryable, Error.NonRetryable), its type or message is not matched by
// p.NonRetryable, and it is not a context.Canceled (the worker stopping the attempt).
func (p RetryPolicy) ShouldRetry(attempt int, err error) bool {
	if err == nil || attempt >= p.Attempts() {
		return false
	}
	if IsNonRetryable(err) || errors.Is(err, context.Canceled) {
		return false
	}
	typ, msg := ErrorType(err), err.Error()
	for _, s := range p.NonRetryable {
		if s != "" && (s == typ || strings.Contains(msg, s)) {
			return false
		}
	}
	return true
}

// Validate reports the first field that makes no sense.
func (p RetryPolicy) Validate() error {
	switch {
	case p.MaxAttempts < 0:
		return fmt.Errorf("retry policy: max_attempts must be >= 0, got %d", p.MaxAttempts)
	case p.InitialDelay < 0:
		return fmt.Errorf("retry policy: initial_delay must be >= 0, got %s", p.InitialDelay)
	case math.IsNaN(p.BackoffFactor) || math.IsInf(p.BackoffFactor, 0) ||
		(p.BackoffFactor != 0 && p.BackoffFactor < 1):
		return fmt.Errorf("retry policy: backoff_factor must be >= 1 (0 means 2), got %v", p.BackoffFactor)
	case p.MaxDelay < 0:
		return fmt.Errorf("retry policy: max_delay must be >= 0, got %s", p.MaxDelay)
	case p.MaxDelay > 0 && p.InitialDelay > p.MaxDelay:
		return fmt.Errorf("retry policy: initial_delay (%s) is larger than max_delay (%s)", p.InitialDelay, p.MaxDelay)
	case math.IsNaN(p.Jitter) || p.Jitter < 0 || p.Jitter > 1:
		return fmt.Errorf("retry policy: jitter must be between 0 and 1, got %v", p.Jitter)
	}
	for i, s := range p.NonRetryable {
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("retry policy: non_retryable[%d] is empty", i)
		}
	}
	return nil
}

type retryPolicyJSON struct {
	MaxAttempts   int          `json:"max_attempts,omitempty"`
	InitialDelay  jsonDuration `json:"initial_delay,omitempty"`
	BackoffFactor float64      `json:"backoff_factor,omitempty"`
	MaxDelay      jsonDuration `json:"max_delay,omitempty"`
	Jitter        float64      `json:"jitter,omitempty"`
	NonRetryable  []string     `json:"non_retryable,omitempty"`
}

// MarshalJSON encodes the policy with snake_case keys and durations as strings.
func (p RetryPolicy) MarshalJSON() ([]byte, error) {
	return json.Marshal(retryPolicyJSON{
		MaxAttempts:   p.MaxAttempts,
		InitialDelay:  jsonDuration(p.InitialDelay),
		BackoffFactor: p.BackoffFactor,
		MaxDelay:      jsonDuration(p.MaxDelay),
		Jitter:        p.Jitter,
		NonRetryable:  p.NonRetryable,
	})
}

// UnmarshalJSON decodes what MarshalJSON writes; durations may also be numbers of
// seconds or strings with the units ms s m h d w.
func (p *RetryPolicy) UnmarshalJSON(data []byte) error {
	var v retryPolicyJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("retry policy: %w", err)
	}
	*p = RetryPolicy{
		MaxAttempts:   v.MaxAttempts,
		InitialDelay:  time.Duration(v.InitialDelay),
		BackoffFactor: v.BackoffFactor,
		MaxDelay:      time.Duration(v.MaxDelay),
		Jitter:        v.Jitter,
		NonRetryable:  v.NonRetryable,
	}
	return nil
}

// jsonDuration is a time.Duration written as a string ("1m30s") and read from a
// string or a number of seconds.
type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *jsonDuration) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		v, err := ParseDuration(s)
		if err != nil {
			return err
		}
		*d = jsonDuration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(data, &secs); err != nil {
		return fmt.Errorf("duration must be a string like \"1m30s\" or a number of seconds, got %s", data)
	}
	if math.IsNaN(secs) || math.Abs(secs*1e9) >= float64(math.MaxInt64) {
		return fmt.Errorf("duration %v seconds is out of range", secs)
	}
	*d = jsonDuration(time.Duration(secs * float64(time.Second)))
	return nil
}

// ParseDuration parses a duration like time.ParseDuration and also accepts the units
// d (24h) and w (7d), as in "2d8h" or "1w". An empty string is 0.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if !strings.ContainsAny(s, "dw") {
		return time.ParseDuration(s)
	}
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && (s[i] == '.' || s[i] >= '0' && s[i] <= '9') {
			i++
		}
		j := i
		for j < len(s) && !(s[j] == '.' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		num, unit := s[:i], s[i:j]
		s = s[j:]
		var part time.Duration
		switch unit {
		case "d", "w":
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q", orig)
			}
			h := 24.0
			if unit == "w" {
				h = 24 * 7
			}
			part = time.Duration(f * h * float64(time.Hour))
		default:
			v, err := time.ParseDuration(num + unit)
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q", orig)
			}
			part = v
		}
		total += part
	}
	if neg {
		total = -total
	}
	return total, nil
}
