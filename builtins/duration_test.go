package builtins_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stent-go/stent/builtins"
)

// TestParseDurationBounds checks the edges of the representable range: the longest
// duration parses, one nanosecond more is an error, never a wrapped-around value.
func TestParseDurationBounds(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "106751d23h47m16s854ms", want: 106751*24*time.Hour + 23*time.Hour + 47*time.Minute + 16*time.Second + 854*time.Millisecond},
		{in: "106751d23h47m16s855ms", wantErr: "too long (at most about 292 years)"},
		{in: "9223372036.854775807", wantErr: "too long"},
		{in: "9223372036", want: 9223372036 * time.Second},
		{in: "5000000000s5000000000s5000000000s5000000000s", wantErr: "too long"},
		{in: "NaN", wantErr: "must be a non-negative number of seconds"},
		{in: "-Inf", wantErr: "must be a non-negative number of seconds"},
		{in: "+Inf", wantErr: "must be a non-negative number of seconds"},
		{in: "1e300", wantErr: "too long"},
		{in: "99999999999999999999999999999w", wantErr: "too long"},
	} {
		got, err := builtins.ParseDuration(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseDuration(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParseDuration: any input either fails or gives a non-negative duration.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"1h30m", "2d8h", "500ms", "1.5s", "30", "0", "9223372036.854775807", "5000000000s5000000000s", "NaN", "inf", "1e308", "..", "1.2.3s", " 10s "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := builtins.ParseDuration(s)
		if err != nil {
			if d != 0 {
				t.Fatalf("ParseDuration(%q) returned %v with error %v", s, d, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v: negative", s, d)
		}
	})
}
