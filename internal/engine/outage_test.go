package engine

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stent-go/stent/backend"
)

// A burst of errors saying the database is unavailable is logged once; other
// warnings pass through.
func TestOutageLoggedOnce(t *testing.T) {
	var buf bytes.Buffer
	l := withOutageLogging(slog.New(slog.NewTextHandler(&buf, nil)))
	down := fmt.Errorf("claiming tasks: %w: connection reset", backend.ErrUnavailable)
	for i := 0; i < 50; i++ {
		l.Error("claiming tasks", "err", down)
		l.With("worker_id", "w1").Warn("worker heartbeat", "err", down)
	}
	l.Warn("schedule paused", "err", errors.New("bad cron"))
	out := buf.String()
	if n := strings.Count(out, "database unavailable; retrying"); n != 1 {
		t.Errorf("%d outage lines, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "schedule paused") {
		t.Errorf("an unrelated warning was dropped:\n%s", out)
	}
	if n := strings.Count(out, "\n"); n != 2 {
		t.Errorf("%d lines, want 2:\n%s", n, out)
	}
}
