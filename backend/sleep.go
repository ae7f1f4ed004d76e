package backend

import (
	"context"
	"time"
)

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
