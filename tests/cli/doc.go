// Package cli holds the end-to-end tests of the stent command: testscript files
// (*.txtar) in which each line is a command exactly as a user types it, run against the
// real stent binary in a fresh directory with a copy of the example workflows.
package cli
