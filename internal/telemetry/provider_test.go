package telemetry

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// An exporter that cannot reach its collector warns once, then stays quiet.
func TestExportErrorsWarnOnce(t *testing.T) {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	defer slog.SetDefault(prev)
	h := warnOnce("http://127.0.0.1:1")
	for range 3 {
		h.Handle(errors.New("connection refused"))
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") ||
		!strings.Contains(lines[0], "endpoint=http://127.0.0.1:1") || !strings.Contains(lines[0], "connection refused") {
		t.Errorf("logged %q, want one warning naming the endpoint and the error", buf.String())
	}
}
