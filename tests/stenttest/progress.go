package stenttest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stent-go/stent"
)

// waitProgressing waits until execution id ends, for as long as it makes progress:
// it gives up (ErrStuck) only when idle passes in real time without a new event in its
// history. A loaded machine slows a run down but does not stop it, so a run is judged
// stuck by its standstill, never by its total time: the replay check of a long
// workflow replays it after every event and may take minutes on a busy machine.
func waitProgressing(ctx context.Context, eng *stent.Engine, id string, idle time.Duration) (*stent.Result, error) {
	seen := 0
	if events, err := eng.History(ctx, id); err == nil {
		seen = len(events)
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, idle)
		res, err := eng.WaitFor(wctx, id)
		cancel()
		if res != nil || ctx.Err() != nil || !errors.Is(wctx.Err(), context.DeadlineExceeded) {
			return res, err
		}
		events, herr := eng.History(ctx, id)
		if herr != nil {
			return nil, fmt.Errorf("reading the history of %s: %w", id, herr)
		}
		if len(events) <= seen {
			return nil, errStuck
		}
		seen = len(events)
	}
}
