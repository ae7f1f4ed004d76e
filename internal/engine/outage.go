package engine

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/stent-go/stent/backend"
)

// outageGap is how long the database must have been quiet (no error saying it is
// unavailable) for the next such error to start a new outage.
const outageGap = 10 * time.Second

// outageHandler collapses the warnings and errors a database outage causes (every
// claim, heartbeat and task fails the same way, each retried with backoff) into one
// line per outage: the first record whose err is backend.ErrUnavailable is logged as
// "database unavailable; retrying", those that follow within outageGap of the previous
// one are counted and dropped, and the first line of the next outage reports how many
// the previous one dropped. Other records pass through.
type outageHandler struct {
	next  slog.Handler
	state *outageState
}

type outageState struct {
	mu         sync.Mutex
	last       time.Time // last unavailable error seen
	suppressed int       // dropped since the outage began
}

func withOutageLogging(l *slog.Logger) *slog.Logger {
	if _, ok := l.Handler().(*outageHandler); ok {
		return l
	}
	return slog.New(&outageHandler{next: l.Handler(), state: &outageState{}})
}

func (h *outageHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h *outageHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn || !unavailableErr(r) {
		return h.next.Handle(ctx, r)
	}
	s := h.state
	s.mu.Lock()
	now := time.Now()
	if !s.last.IsZero() && now.Sub(s.last) < outageGap {
		s.last = now
		s.suppressed++
		s.mu.Unlock()
		return nil
	}
	prev := s.suppressed
	s.last, s.suppressed = now, 0
	s.mu.Unlock()
	out := slog.NewRecord(r.Time, slog.LevelWarn, "database unavailable; retrying with backoff (one line per outage)", r.PC)
	out.AddAttrs(slog.String("while", r.Message))
	r.Attrs(func(a slog.Attr) bool { out.AddAttrs(a); return true })
	if prev > 0 {
		out.AddAttrs(slog.Int("previous_outage_lines_dropped", prev))
	}
	return h.next.Handle(ctx, out)
}

func (h *outageHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &outageHandler{next: h.next.WithAttrs(attrs), state: h.state}
}

func (h *outageHandler) WithGroup(name string) slog.Handler {
	return &outageHandler{next: h.next.WithGroup(name), state: h.state}
}

// unavailableErr reports whether the record carries an error that says the database
// could not be reached.
func unavailableErr(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && backend.Retryable(err) {
			found = true
			return false
		}
		return true
	})
	return found
}
