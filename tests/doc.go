// Package tests holds Stent's end-to-end tests: the CLI driven as a user drives it,
// crashes (SIGKILL) and resumptions, pinned scripts, and bad input. Golden script tests
// live in tests/golden and the importable helper in tests/stenttest.
package tests
