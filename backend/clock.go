package backend

import (
	"context"
	"time"
)

// Clock tells backends and workers the time. Real clocks use time.Now.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// Sleep waits d of real time, or until ctx is done, whichever comes first: the pause
// of a polling loop or a backoff that must not outlive its caller's context.
func Sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
