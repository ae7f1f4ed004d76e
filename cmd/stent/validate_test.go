package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// strayArgs lists every command that runs (by its path) with the number of arguments it
// takes at most (-1: any number) and the flags it cannot run without.
var strayArgs = []struct {
	path  string
	n     int
	flags []string
}{
	{path: "exec", n: 1}, {path: "dispatch", n: 1}, {path: "worker"}, {path: "wait", n: 1},
	{path: "status", n: 1}, {path: "history", n: 1}, {path: "list"}, {path: "logs", n: 1},
	{path: "migrate"}, {path: "cancel", n: 1}, {path: "signal", n: 3},
	{path: "dlq list"}, {path: "dlq show", n: 1}, {path: "dlq replay", n: 1}, {path: "dlq discard", n: 1},
	{path: "cache clear", n: 1}, {path: "test", n: -1}, {path: "bench"}, {path: "workers"},
	{path: "schedule create", n: 2, flags: []string{"--cron", "@daily"}}, {path: "schedule list"},
	{path: "schedule show", n: 1}, {path: "schedule pause", n: 1}, {path: "schedule resume", n: 1},
	{path: "schedule trigger", n: 1}, {path: "schedule delete", n: 1}, {path: "schedule update", n: 1},
	{path: "prune", flags: []string{"--older-than", "7d"}}, {path: "replay", n: 1},
	{path: "upgrade", n: -1, flags: []string{"--script", "x.star"}}, {path: "retry", n: 1},
	{path: "reset", n: 1, flags: []string{"--to-step", "1"}},
	{path: "terminate", n: 1}, {path: "ui"}, {path: "serve", flags: []string{"--scripts", "."}},
	{path: "backup", n: 1}, {path: "verify"},
}

// leafCommands lists the paths of the commands that run, subcommands included.
func leafCommands(prefix string, cmds []*cli.Command) []string {
	var out []string
	for _, c := range cmds {
		if len(c.Subcommands) > 0 {
			out = append(out, leafCommands(prefix+c.Name+" ", c.Subcommands)...)
			continue
		}
		out = append(out, prefix+c.Name)
	}
	return out
}

// TestStrayArgument runs every command with one argument more than it takes: each
// refuses it as a usage error (exit 2, the command named) before opening the database.
func TestStrayArgument(t *testing.T) {
	var listed []string
	for _, s := range strayArgs {
		listed = append(listed, s.path)
	}
	all := leafCommands("", newApp(nil, nil).Commands)
	slices.Sort(all)
	slices.Sort(listed)
	if !slices.Equal(all, listed) {
		t.Fatalf("strayArgs lists %q; the app's commands are %q: add the new ones", listed, all)
	}
	for _, s := range strayArgs {
		if s.n < 0 {
			continue // takes any number of arguments
		}
		t.Run(s.path, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "stent.db")
			args := append([]string{"stent"}, strings.Fields(s.path)...)
			for i := 0; i <= s.n; i++ {
				args = append(args, "arg"+string(rune('a'+i)))
			}
			args = append(append(args, s.flags...), "--db", db)
			var stdout, stderr bytes.Buffer
			code := run(args, &stdout, &stderr)
			name := s.path + " takes "
			if code != exitUsage || !strings.Contains(stderr.String(), name) {
				t.Fatalf("%q: exit %d, stderr %q; want exit %d saying %q", args[1:], code, stderr.String(), exitUsage, name)
			}
			if _, err := os.Stat(db); !os.IsNotExist(err) {
				t.Fatalf("%q opened the database (%v)", args[1:], err)
			}
		})
	}
}

// TestMaxArgsReadsArgsUsage pins how ArgsUsage is read.
func TestMaxArgsReadsArgsUsage(t *testing.T) {
	for usage, want := range map[string]int{"": 0, "ID": 1, "ID NAME [JSON]": 3, "[ID…]": -1,
		"[PATH…] (files or directories of *.txtar; default: the current directory)": -1, "[NAME]": 1} {
		if got := maxArgs(&cli.Command{ArgsUsage: usage}); got != want {
			t.Errorf("maxArgs(%q) = %d, want %d", usage, got, want)
		}
	}
}

// TestWhereUsage: the batch and list forms of --where refuse their usage mistakes with
// exit 2 before opening the database.
func TestWhereUsage(t *testing.T) {
	for _, args := range [][]string{
		{"list", "--where", "colour=red"},
		{"list", "--where", "status=failed", "--status", "failed"},
		{"cancel", "x", "--where", "status=running"},
		{"terminate", "--yes", "x"},
		{"retry", "--dry-run", "x"},
		{"retry", "--where", "status=failed", "--wait"},
		{"retry", "--where", "status=failed"}, // no terminal to confirm on, no --yes
		{"cancel", "--where", "tag:=x", "--yes"},
		{"retry", "x", "--rate", "5"}, // --rate goes with --where
		{"retry", "--where", "status=failed", "--yes", "--rate", "-1"},
		{"retry", "--where", "status=failed", "--yes", "--rate", "NaN"},
		{"retry", "--resume", "0", "--yes"},
		{"retry", "--resume", "3", "--where", "status=failed", "--yes"},
		{"terminate", "--resume", "3", "x"},
		{"cancel", "--resume", "3"}, // no terminal to confirm on, no --yes
	} {
		db := filepath.Join(t.TempDir(), "stent.db")
		var stdout, stderr bytes.Buffer
		code := run(append(append([]string{"stent"}, args...), "--db", db), &stdout, &stderr)
		if code != exitUsage {
			t.Errorf("%q: exit %d, stderr %q; want exit %d", args, code, stderr.String(), exitUsage)
		}
		if _, err := os.Stat(db); !os.IsNotExist(err) {
			t.Errorf("%q opened the database (%v)", args, err)
		}
	}
}
