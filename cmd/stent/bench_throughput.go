package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
)

// p6Workers is how many worker processes serve P6 on PostgreSQL unless --workers says.
const p6Workers = 4

// p6Script is P6's workflow: five sequential activities.
const p6Script = `
def main():
    for i in range(5):
        durable("work", i)
    return 5
`

// runThroughput is P6: n executions of five sequential activities, dispatched at once
// (from 32 goroutines), served by every worker process of the run. The wall time ends
// when the store counts them all completed (read every 100 ms, without waiting on each
// execution, which would add a write per execution on PostgreSQL: its end announced).
func runThroughput(ctx context.Context, eng *stent.Engine, dir string, n int) (runStats, error) {
	script := filepath.Join(dir, "five.star")
	prefix := "p6-" + randomSuffix() + "-"
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		mu     sync.Mutex
		dErr   error
		sent   = make([]time.Time, n)
		start  = time.Now()
		dispCx = ctx
	)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				sent[i] = time.Now()
				if _, err := eng.DispatchJSON(dispCx, script, nil, stent.ID(fmt.Sprintf("%s%d", prefix, i))); err != nil {
					mu.Lock()
					dErr = fmt.Errorf("dispatch: %w", err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if dErr != nil {
		return runStats{}, dErr
	}
	st := runStats{dispatch: time.Since(start)}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		counts, err := eng.Backend().CountExecutions(ctx, backend.ListFilter{IDPrefix: prefix})
		if err != nil {
			return runStats{}, fmt.Errorf("counting executions: %w", err)
		}
		if bad := n - counts[backend.StatusCompleted] - counts[backend.StatusRunning] - counts[backend.StatusScheduled]; bad > 0 {
			return runStats{}, fmt.Errorf("%d of %d executions did not complete: %v", bad, n, counts)
		}
		if counts[backend.StatusCompleted] == n {
			st.wall = time.Since(start)
			break
		}
		select {
		case <-ctx.Done():
			return runStats{}, fmt.Errorf("waiting for %d executions (%v): %w", n, counts, ctx.Err())
		case <-tick.C:
		}
	}
	// Latency from dispatch to completion, of a sample (reading all would take long).
	for i := 0; i < n; i += max(1, n/500) {
		ex, err := eng.Get(ctx, fmt.Sprintf("%s%d", prefix, i))
		if err != nil {
			return runStats{}, err
		}
		if ex.CompletedAt != nil {
			st.latencies = append(st.latencies, ex.CompletedAt.Sub(sent[i]))
		}
	}
	return st, nil
}
