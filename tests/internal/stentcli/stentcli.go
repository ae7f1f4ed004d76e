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
	"strings"
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
	args := []string{"build", "-o", "$DIR/stent"}
	if raceEnabled {
		args = append(args, "-race")
	}
	mainWith(m, setBin, func(dir string) *exec.Cmd {
		args[2] = filepath.Join(dir, "stent")
		return exec.Command("go", append(args, "./cmd/stent")...)
	})
}

// InstallMain is Main with stent installed the way README.md says: installLine (such
// as `go install ./cmd/stent`) runs in the module root with GOBIN set to the fresh
// directory (and -race in GOFLAGS when the tests run with it).
func InstallMain(m *testing.M, installLine string, setBin func(bin string)) {
	mainWith(m, setBin, func(dir string) *exec.Cmd {
		cmd := exec.Command("sh", "-c", installLine)
		flags := os.Getenv("GOFLAGS")
		if raceEnabled {
			flags = strings.TrimSpace(flags + " -race")
		}
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS="+flags)
		return cmd
	})
}

// mainWith runs the command build returns for a fresh directory, which must leave the
// stent binary in it, then the tests.
func mainWith(m *testing.M, setBin func(bin string), build func(dir string) *exec.Cmd) {
	dir, err := os.MkdirTemp("", "stent-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin := filepath.Join(dir, "stent")
	cmd := build(dir)
	cmd.Dir = RepoRoot()
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building stent (%v): %v\n", cmd.Args, err)
		os.Exit(1)
	}
	if _, err := os.Stat(bin); err != nil {
		fmt.Fprintf(os.Stderr, "%v left no stent binary in %s: %v\n", cmd.Args, dir, err)
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
