package activities

import (
	"os"
	"testing"
)

// TestMain runs this test binary as a command's supervisor when it is started as one,
// so the command activities of these tests run supervised, as in the stent CLI.
func TestMain(m *testing.M) {
	SupervisorMain()
	os.Exit(m.Run())
}
