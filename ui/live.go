package ui

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/stent-go/stent/backend"
)

// live streams Server-Sent Events to a page: a "change" event whenever what the page
// shows has changed, upon which the page fetches itself again and swaps its live part.
// The view looks at the database every Options.Poll, so it sees changes made by any
// process (workers elsewhere, the CLI, another browser).
func (s *Server) live(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var state func(ctx context.Context) (any, error)
	switch {
	case q.Has("exec"):
		id := q.Get("exec")
		state = func(ctx context.Context) (any, error) { return s.execState(ctx, id) }
	case q.Has("list"):
		lq := readListQuery(q)
		state = func(ctx context.Context) (any, error) {
			d, err := s.loadList(r.WithContext(ctx), lq)
			if err != nil {
				return nil, err
			}
			st := []any{d.Chips}
			for _, row := range d.Rows { // not their running durations: those change every tick
				st = append(st, row.ID, row.Status)
			}
			return st, nil
		}
	case q.Has("dlq"):
		status := q.Get("status")
		state = func(ctx context.Context) (any, error) {
			return s.b.ListDeadLetters(ctx, status, deadLetterLimit)
		}
	case q.Has("workers"):
		state = s.workersState
	case q.Has("schedules"):
		state = s.schedulesState
	default:
		http.Error(w, "live: say what to watch (exec=ID, list=1, dlq=1, workers=1 or schedules=1)", http.StatusBadRequest)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "live updates need a streaming connection", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n: watching\n\n")
	flusher.Flush()

	ctx := r.Context()
	var last [32]byte
	first := true
	tick := time.NewTicker(s.opts.Poll)
	defer tick.Stop()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		v, err := state(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.log.Warn("ui: live view", "err", err)
		} else {
			buf, _ := json.Marshal(v)
			sum := sha256.Sum256(buf)
			if !first && sum != last {
				fmt.Fprintf(w, "event: change\ndata: %x\n\n", sum[:6])
				flusher.Flush()
			}
			last, first = sum, false
		}
		select {
		case <-ctx.Done():
			return
		case <-keepAlive.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			flusher.Flush()
		case <-tick.C:
		}
	}
}

// execState is what changes on an execution's page: its row (version bumps with every
// workflow task) and its pending signals.
func (s *Server) execState(ctx context.Context, id string) (any, error) {
	ex, err := s.b.GetExecution(ctx, id)
	if err != nil {
		return nil, err
	}
	st := []any{ex.Status, ex.Version, ex.UpdatedAt.UnixMilli(), ex.Run}
	if !ex.Status.Terminal() {
		sigs, err := s.b.PendingSignals(ctx, id)
		if err != nil {
			return nil, err
		}
		st = append(st, len(sigs))
		// Attempts and leases change without a new version (retries, claims).
		tasks, err := s.b.ExecutionTasks(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, t := range tasks {
			st = append(st, t.Seq, t.Attempt, t.LeaseOwner != "", t.RunAt.UnixMilli())
		}
		// Children report to the parent only when they end; show their progress too.
		kids, err := s.b.ListExecutions(ctx, backend.ListFilter{ParentID: id, Limit: treeLimit})
		if err != nil {
			return nil, err
		}
		for _, k := range kids {
			st = append(st, k.Status)
		}
	}
	return st, nil
}

func jsonDecode(raw []byte, v any) error {
	if len(raw) == 0 {
		return fmt.Errorf("empty JSON")
	}
	return json.Unmarshal(raw, v)
}
