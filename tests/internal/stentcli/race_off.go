//go:build !race

package stentcli

const raceEnabled = false
