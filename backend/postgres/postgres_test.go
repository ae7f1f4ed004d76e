package postgres

import (
	"testing"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/backend/backendtest"
)

// TestConformance runs the shared backend suite, each subtest on a schema of its own
// (see openTestBackend).
func TestConformance(t *testing.T) {
	testDSN(t)
	backendtest.Run(t, func(t *testing.T, clock backend.Clock) backend.Backend {
		return openTestBackend(t, clock)
	})
}
