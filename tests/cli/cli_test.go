package cli_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/stent-go/stent/tests/internal/stentcli"
)

// binDir holds the stent binary every script runs: installed once by README.md's
// install line (readmeInstallLine) into a fresh GOBIN.
var binDir string

func TestMain(m *testing.M) {
	readme, err := os.ReadFile(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	line, err := readmeInstallLine(string(readme))
	if err != nil {
		fmt.Fprintln(os.Stderr, "README.md:", err)
		os.Exit(1)
	}
	stentcli.InstallMain(m, line, func(bin string) { binDir = filepath.Dir(bin) })
}

// pathWithout is the list of directories path without those that hold a stent
// executable, so that only binDir provides one.
func pathWithout(path string) string {
	var keep []string
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		if info, err := os.Stat(filepath.Join(dir, "stent")); err == nil && !info.IsDir() {
			continue
		}
		keep = append(keep, dir)
	}
	return strings.Join(keep, string(os.PathListSeparator))
}

// repoRoot is the module root.
func repoRoot() string { return stentcli.RepoRoot() }

// TestScripts runs every testdata/*.txtar script. Each runs in a fresh $WORK holding a
// copy of workflows/, with the stent that README.md's install line installed on PATH
// (and no other) and no STENT_* variable set, so a line reads
// exactly as a user would type it in a fresh clone.
func TestScripts(t *testing.T) {
	root := repoRoot()
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		RequireExplicitExec: true,
		Condition:           scriptCondition,
		Cmds:                scriptCommands,
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", binDir+string(os.PathListSeparator)+pathWithout(env.Getenv("PATH")))
			env.Setenv("REPO", root)
			vars := env.Vars[:0]
			for _, kv := range env.Vars {
				if !strings.HasPrefix(kv, "STENT_") {
					vars = append(vars, kv)
				}
			}
			env.Vars = vars
			if v := os.Getenv("STENT_TEST_POSTGRES"); v != "" {
				env.Setenv("STENT_TEST_POSTGRES", v)
			}
			if v := os.Getenv("STENT_TEST_REDIS"); v != "" {
				env.Setenv("STENT_TEST_REDIS", v)
			}
			return copyTree(filepath.Join(root, "workflows"), filepath.Join(env.WorkDir, "workflows"))
		},
	})
}

// copyTree copies the directory src to dst, keeping file modes.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
}
