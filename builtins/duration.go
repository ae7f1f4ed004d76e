package builtins

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	startime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"
)

var durationUnits = map[string]time.Duration{
	"ms": time.Millisecond,
	"s":  time.Second,
	"m":  time.Minute,
	"h":  time.Hour,
	"d":  24 * time.Hour,
	"w":  7 * 24 * time.Hour,
}

// ParseDuration parses a duration written as a sequence of numbers with units
// ms, s, m, h, d, w ("1h30m", "2d8h", "500ms", "1.5s"), or a plain number of seconds.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, fmt.Errorf("empty duration (write e.g. \"30s\", \"1h30m\" or \"2d\")")
	}
	if f, err := strconv.ParseFloat(in, 64); err == nil {
		return secondsToDuration(f, s)
	}
	var total time.Duration
	rest := in
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("invalid duration %q: expected a number at %q (units: ms s m h d w)", s, rest)
		}
		num, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: bad number %q", s, rest[:i])
		}
		rest = rest[i:]
		j := 0
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') && rest[j] != '.' {
			j++
		}
		unit := rest[:j]
		rest = rest[j:]
		mult, ok := durationUnits[unit]
		if !ok {
			if unit == "" {
				return 0, fmt.Errorf("invalid duration %q: missing unit after %v (units: ms s m h d w)", s, num)
			}
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q (units: ms s m h d w)", s, unit)
		}
		part := num * float64(mult)
		if math.IsNaN(part) || math.IsInf(part, 0) || part >= maxDurationFloat || total > math.MaxInt64-time.Duration(part) {
			return 0, fmt.Errorf("invalid duration %q: too long (at most %s)", s, maxDurationText)
		}
		total += time.Duration(part)
	}
	return total, nil
}

// maxDurationFloat is the first float64 past the longest time.Duration (2^63 ns): a
// product at or above it would wrap around when converted.
const maxDurationFloat = float64(math.MaxInt64)

// maxDurationText names the longest duration in the units users write.
const maxDurationText = "about 292 years"

func secondsToDuration(f float64, orig string) (time.Duration, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0, fmt.Errorf("invalid duration %q: must be a non-negative number of seconds", orig)
	}
	if f*float64(time.Second) >= maxDurationFloat {
		return 0, fmt.Errorf("invalid duration %q: too long (at most %s)", orig, maxDurationText)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// durationValue converts a Starlark duration argument: seconds as int or float, a
// string with units, or a time.duration.
func durationValue(v starlark.Value) (time.Duration, error) {
	switch x := v.(type) {
	case starlark.Int:
		i, ok := x.Int64()
		if !ok {
			return 0, fmt.Errorf("duration %s is too large", x)
		}
		return secondsToDuration(float64(i), x.String())
	case starlark.Float:
		return secondsToDuration(float64(x), x.String())
	case starlark.String:
		return ParseDuration(string(x))
	case startime.Duration:
		if x < 0 {
			return 0, fmt.Errorf("duration %s is negative", x)
		}
		return time.Duration(x), nil
	}
	return 0, fmt.Errorf("want a duration (seconds as a number, or a string like \"1h30m\"), got %s", v.Type())
}
