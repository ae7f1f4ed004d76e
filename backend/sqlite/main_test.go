package sqlite

import (
	"testing"

	"github.com/stent-go/stent/internal/testlog"
)

// TestMain logs at warn unless -v.
func TestMain(m *testing.M) { testlog.Main(m) }
