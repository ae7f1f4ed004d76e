package cli_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// fragmentImports are the packages a README fragment may use without importing them:
// the test wrapping a fragment imports those whose name it mentions.
var fragmentImports = map[string]string{
	"context":       "context",
	"errors":        "errors",
	"fmt":           "fmt",
	"http":          "net/http",
	"log":           "log",
	"time":          "time",
	"stent":         "github.com/stent-go/stent",
	"activities":    "github.com/stent-go/stent/activities",
	"ui":            "github.com/stent-go/stent/ui",
	"otlptracehttp": "go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp",
	"sdktrace":      "go.opentelemetry.io/otel/sdk/trace",
	"sdkmetric":     "go.opentelemetry.io/otel/sdk/metric",
	"otelprom":      "go.opentelemetry.io/otel/exporters/prometheus",
	"promhttp":      "github.com/prometheus/client_golang/prometheus/promhttp",
	"trace":         "go.opentelemetry.io/otel/trace",
}

type goBlock struct {
	line int
	text string
}

// readmeGoBlocks returns the ```go blocks of README.md.
func readmeGoBlocks(readme string) []goBlock {
	var (
		out []goBlock
		cur *goBlock
	)
	sc := bufio.NewScanner(strings.NewReader(readme))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && trimmed == "```go":
			cur = &goBlock{line: n + 1}
		case cur != nil && trimmed == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		}
	}
	return out
}

// TestReadmeGoBlocksCompile compiles every ```go block of README.md in a scratch module
// that uses this checkout of Stent. A block is a whole file (it starts with `package`)
// or, when it says `// fragment` in a comment, the body of a function with ctx in
// scope; the test adds the imports a fragment names (fragmentImports).
func TestReadmeGoBlocksCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Go programs")
	}
	root := repoRoot()
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeGoBlocks(string(readme))
	if len(blocks) == 0 {
		t.Fatal("found no ```go block in README.md; is the extraction broken?")
	}
	dir := t.TempDir()
	gomod := "module readmecheck\n\ngo 1.26.0\n\nrequire github.com/stent-go/stent v0.0.0\n\nreplace github.com/stent-go/stent => " + root + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	var pkgs []string
	for _, b := range blocks {
		name := fmt.Sprintf("block%d", b.line)
		src, err := goFile(b.text, b.line)
		if err != nil {
			t.Errorf("README.md:%d: %v", b.line, err)
			continue
		}
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "main.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, "./"+name)
	}
	if len(pkgs) == 0 {
		return
	}
	cmd := exec.Command("go", append([]string{"vet"}, pkgs...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("README.md's Go blocks do not compile (scratch module %s):\n%s", dir, out)
	}
}

var (
	fragmentMark = regexp.MustCompile(`(?m)^\s*//\s*fragment\b`)
	qualified    = regexp.MustCompile(`\b([a-z][a-z0-9]*)\.[A-Z]`)
)

// goFile turns a README block that starts at README.md's line into a Go source file
// whose compiler errors name README.md's lines.
func goFile(block string, line int) (string, error) {
	at := fmt.Sprintf("//line README.md:%d\n", line)
	if strings.HasPrefix(strings.TrimSpace(block), "package ") {
		return at + block, nil
	}
	if !fragmentMark.MatchString(block) {
		return "", fmt.Errorf("a ```go block is a whole file (package …) or says `// fragment`")
	}
	used := map[string]bool{"context": true}
	for _, m := range qualified.FindAllStringSubmatch(block, -1) {
		if _, ok := fragmentImports[m[1]]; ok {
			used[m[1]] = true
		}
	}
	var imports []string
	for name := range used {
		imports = append(imports, fmt.Sprintf("%s %q", name, fragmentImports[name]))
	}
	sort.Strings(imports)
	return "package main\n\nimport (\n\t" + strings.Join(imports, "\n\t") + "\n)\n\n" +
		"func main() { fragment(context.Background()) }\n\n" +
		"func fragment(ctx context.Context) {\n" + at + block + "}\n", nil
}
