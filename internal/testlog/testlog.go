// Package testlog quiets a test binary's default logger: the engine logs through
// slog.Default() unless it is given a logger, and a suite's hundreds of INFO lines
// ("execution ended") would bury its failures. Only for tests.
package testlog

import (
	"flag"
	"log/slog"
	"os"
	"testing"
)

// Setup makes slog.Default() write warnings and errors only, to stderr, unless the
// tests run with -v (then info too).
func Setup() {
	if !flag.Parsed() {
		flag.Parse()
	}
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
}

// Main is a TestMain that calls Setup, then runs the tests.
func Main(m *testing.M) {
	Setup()
	os.Exit(m.Run())
}
