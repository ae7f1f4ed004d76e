package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/backend/sqlite"
)

// outageBackend fails every claim with backend.ErrUnavailable while down is set, and
// tells when each claim was tried.
type outageBackend struct {
	backend.Backend
	down   atomic.Bool
	claims chan time.Time
}

func (b *outageBackend) ClaimTasks(ctx context.Context, req backend.ClaimRequest) ([]backend.Task, error) {
	select {
	case b.claims <- time.Now():
	default:
	}
	if b.down.Load() {
		return nil, fmt.Errorf("claiming tasks: %w", backend.ErrUnavailable)
	}
	return b.Backend.ClaimTasks(ctx, req)
}

// A worker whose claims fail backs off, but claims again as soon as it is woken: after
// a failover the listener's reconnection to the new primary is that wake-up, and the
// worker must not sleep out its backoff with the database back.
func TestClaimBackoffEndsOnWake(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	sb, err := sqlite.Open(ctx, filepath.Join(dir, "stent.db"))
	if err != nil {
		t.Fatal(err)
	}
	ob := &outageBackend{Backend: sb, claims: make(chan time.Time, 64)}
	ob.down.Store(true)
	eng := openQuiet(t, dir, WithBackend(ob))
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- eng.Serve(serveCtx, WorkerOptions{Concurrency: 1}) }()
	next := func() time.Time {
		t.Helper()
		select {
		case at := <-ob.claims:
			return at
		case <-ctx.Done():
			t.Fatal("the worker stopped claiming")
			return time.Time{}
		}
	}
	// Backoffs of 50, 100, 200, 400 and 800 ms; after the sixth failure, claimBackoffMax.
	for range 6 {
		next()
	}
	time.Sleep(50 * time.Millisecond)
	ob.down.Store(false)
	woken := time.Now()
	eng.wake.Notify()
	if d := next().Sub(woken); d > claimBackoffMax/2 {
		t.Errorf("the worker claimed %s after the wake-up; want at once, not after its backoff of %s", d, claimBackoffMax)
	}
	stop()
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
