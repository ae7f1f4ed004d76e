// Package stentcli builds the stent command once for a test binary and runs it the way
// a user does, for the CLI tests in tests/ and tests/cli.
package stentcli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// RepoRoot is the module root.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(file))))
}

// Main builds ./cmd/stent (with -race when the tests run with it) into a fresh
// temporary directory, hands its path to setBin, runs the tests and exits with their
// status. It is a test package's TestMain.
func Main(m *testing.M, setBin func(bin string)) {
	dir, err := os.MkdirTemp("", "stent-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin := filepath.Join(dir, "stent")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/stent")...)
	cmd.Dir = RepoRoot()
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building stent:", err)
		os.Exit(1)
	}
	setBin(bin)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Run runs cmd and returns what it printed and its exit code; a command that could not
// run at all fails t.
func Run(t testing.TB, cmd *exec.Cmd) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running stent %v: %v", cmd.Args[1:], err)
	}
	return out.String(), errb.String(), code
}
