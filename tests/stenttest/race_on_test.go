//go:build race

package stenttest_test

// raceEnabled: the race detector slows the pure-Go SQLite driver down by 20-40 times.
const raceEnabled = true
