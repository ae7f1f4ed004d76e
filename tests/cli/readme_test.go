package cli_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeCommandsAreTested keeps README.md and the scripts from drifting: every
// command line of a ```sh block in README.md that runs stent (`stent …` or
// `go run ./cmd/stent …`) must appear verbatim in some testdata/*.txtar as
// `exec LINE` or `! exec LINE`. A trailing ` # comment` is not part of the line and
// `\` continuations are joined with one space. `make test` is exempt: it runs this.
func TestReadmeCommandsAreTested(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	commands := readmeCommands(string(readme))
	if len(commands) == 0 {
		t.Fatal("found no stent command in README.md's ```sh blocks; is the extraction broken?")
	}
	tested := map[string]bool{}
	scripts, err := filepath.Glob("testdata/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range scripts {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			line = strings.TrimPrefix(line, "! ")
			if rest, ok := strings.CutPrefix(line, "exec "); ok {
				tested[strings.TrimSpace(rest)] = true
			}
		}
	}
	for _, c := range commands {
		if !tested[c.text] {
			t.Errorf("README.md:%d: %q is not run by any tests/cli/testdata/*.txtar (add `exec %s` to a script)", c.line, c.text, c.text)
		}
	}
}

type readmeCommand struct {
	line int // where it starts in README.md
	text string
}

// readmeCommands extracts the stent command lines of README.md's ```sh blocks.
func readmeCommands(readme string) []readmeCommand {
	var (
		out     []readmeCommand
		inSh    bool
		pending *readmeCommand // a line continued with a backslash
	)
	sc := bufio.NewScanner(strings.NewReader(readme))
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		trimmed := strings.TrimSpace(raw)
		if strings.HasPrefix(trimmed, "```") {
			inSh = !inSh && strings.TrimPrefix(trimmed, "```") == "sh"
			pending = nil
			continue
		}
		if !inSh {
			continue
		}
		text := strings.TrimSpace(stripComment(raw))
		if pending != nil {
			pending.text += " " + text
		} else {
			pending = &readmeCommand{line: n, text: text}
		}
		if cont, ok := strings.CutSuffix(pending.text, `\`); ok {
			pending.text = strings.TrimSpace(cont)
			continue
		}
		c := *pending
		pending = nil
		if (strings.HasPrefix(c.text, "stent ") || strings.HasPrefix(c.text, "go run ./cmd/stent")) && c.text != "make test" {
			out = append(out, c)
		}
	}
	return out
}

// stripComment drops a ` # comment` that is outside quotes.
func stripComment(line string) string {
	var quote rune
	for i, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return line[:i]
		}
	}
	return line
}

func TestReadmeCommandExtraction(t *testing.T) {
	readme := "text\n```sh\ngo run ./cmd/stent exec a.star --args '[\"#x\"]'   # note\n# a comment line\n" +
		"stent dispatch b.star \\\n    --id b   # id\nexport X=1\nmake test\n```\n```go\nstent exec not.star\n```\n" +
		"```sh\nstent wait b\n```\n"
	got := readmeCommands(readme)
	want := []readmeCommand{
		{3, `go run ./cmd/stent exec a.star --args '["#x"]'`},
		{5, "stent dispatch b.star --id b"},
		{14, "stent wait b"},
	}
	if len(got) != len(want) {
		t.Fatalf("readmeCommands = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("command %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// readmeInstallLine is README.md's one line that installs stent: the only
// `go install ./cmd/stent` of its ```sh blocks, before the first line that types
// `stent …`. The CLI scripts run the stent it installs.
func readmeInstallLine(readme string) (string, error) {
	const want = "go install ./cmd/stent"
	var (
		inSh       bool
		install    int
		firstStent int
	)
	sc := bufio.NewScanner(strings.NewReader(readme))
	for n := 1; sc.Scan(); n++ {
		trimmed := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(trimmed, "```") {
			inSh = !inSh && strings.TrimPrefix(trimmed, "```") == "sh"
			continue
		}
		if !inSh {
			continue
		}
		text := strings.TrimSpace(stripComment(trimmed))
		switch {
		case strings.HasPrefix(text, "go install ") || strings.Contains(text, "bin/stent"):
			if text != want || install != 0 {
				return "", fmt.Errorf("line %d: %q: the README installs stent once, with %q", n, text, want)
			}
			install = n
		case strings.HasPrefix(text, "stent ") && firstStent == 0:
			firstStent = n
		}
	}
	switch {
	case install == 0:
		return "", fmt.Errorf("no %q line in a ```sh block: a newcomer's `stent …` is `command not found`", want)
	case firstStent != 0 && firstStent < install:
		return "", fmt.Errorf("line %d types stent before line %d installs it", firstStent, install)
	}
	return want, nil
}

func TestReadmeInstallLine(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readmeInstallLine(string(readme)); err != nil {
		t.Errorf("README.md: %v", err)
	}
	for _, bad := range []string{
		"```sh\nstent exec a.star\n```\n",
		"```sh\nstent exec a.star\ngo install ./cmd/stent\n```\n",
		"```sh\ngo install ./cmd/stent\nmake build && ./bin/stent exec a.star\n```\n",
	} {
		if line, err := readmeInstallLine(bad); err == nil {
			t.Errorf("readmeInstallLine(%q) = %q, want an error", bad, line)
		}
	}
}
