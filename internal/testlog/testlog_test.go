package testlog

import (
	"context"
	"log/slog"
	"testing"
)

func TestSetupLogsWarningsUnlessVerbose(t *testing.T) {
	prev := slog.Default()
	defer slog.SetDefault(prev)
	Setup()
	h := slog.Default().Handler()
	if !h.Enabled(context.Background(), slog.LevelWarn) {
		t.Error("warnings are dropped")
	}
	if got := h.Enabled(context.Background(), slog.LevelInfo); got != testing.Verbose() {
		t.Errorf("info enabled = %v with -v %v", got, testing.Verbose())
	}
}
