//go:build !race

package stenttest_test

const raceEnabled = false
