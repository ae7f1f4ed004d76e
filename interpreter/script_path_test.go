package interpreter

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveScriptPath(t *testing.T) {
	for _, tc := range []struct {
		root, from, target, want, err string
	}{
		{".", "main.star", "other.star", "other.star", ""},
		{".", "lib/a.star", "b.star", "lib/b.star", ""},
		{".", "lib/a.star", "../main.star", "main.star", ""},
		{"wf", "wf/main.star", "sub/x.star", "wf/sub/x.star", ""},
		{"wf", "wf/sub/x.star", "../y.star", "wf/y.star", ""},
		{"/srv/wf", "/srv/wf/main.star", "x.star", "/srv/wf/x.star", ""},
		{".", "main.star", "../other.star", "", `script path "../other.star" (from main.star) leaves the main script's directory (the working directory)`},
		{"wf", "wf/main.star", "../secret.star", "", "leaves the main script's directory wf"},
		{"wf", "wf/main.star", "sub/../../x.star", "", "leaves the main script's directory wf"},
		{".", "main.star", "/etc/x.star", "", "must be relative to the calling file"},
		{".", "main.star", `lib\x.star`, "", "backslashes are not allowed"},
		{".", "main.star", "", "", "empty script path"},
	} {
		got, err := ResolveScriptPath(tc.root, tc.from, tc.target)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ResolveScriptPath(%q, %q, %q) = %q, %v; want error containing %q", tc.root, tc.from, tc.target, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ResolveScriptPath(%q, %q, %q) = %q, %v; want %q", tc.root, tc.from, tc.target, got, err, tc.want)
		}
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, src := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCollectBundlePinsWorkflowChildren(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"wf/main.star":      "def main():\n    return durable(workflow(\"lib/a.star\", 1))\n",
		"wf/lib/a.star":     "load(\"util.star\", \"f\")\ndef main(x):\n    return durable(workflow(\"b.star\", f(x), entry=\"run\"))\n",
		"wf/lib/util.star":  "def f(x):\n    return x + 1\n",
		"wf/lib/b.star":     "def run(x):\n    return x\n",
		"wf/unused.star":    "def main():\n    pass\n",
		"outside.star":      "def main():\n    pass\n",
		"wf/escape.star":    "def main():\n    return durable(workflow(\"../outside.star\"))\n",
		"wf/absolute.star":  "def main():\n    return durable(workflow(\"" + filepath.ToSlash(filepath.Join(dir, "outside.star")) + "\"))\n",
		"wf/missing.star":   "def main():\n    return durable(workflow(\"nope.star\"))\n",
		"wf/computed.star":  "def main(name):\n    return durable(workflow(name + \".star\"))\n",
		"wf/via_link.star":  "def main():\n    return durable(workflow(\"link.star\"))\n",
		"wf/lib/other.star": "def main():\n    pass\n",
	})
	if err := os.Symlink(filepath.Join(dir, "outside.star"), filepath.Join(dir, "wf", "link.star")); err != nil {
		t.Fatal(err)
	}
	main := filepath.ToSlash(filepath.Join(dir, "wf", "main.star"))
	b, sources, err := CollectBundle(main)
	if err != nil {
		t.Fatalf("CollectBundle: %v", err)
	}
	root := filepath.ToSlash(filepath.Join(dir, "wf"))
	var files []string
	for f := range b.Files {
		files = append(files, strings.TrimPrefix(f, root+"/"))
	}
	want := map[string]bool{"main.star": true, "lib/a.star": true, "lib/util.star": true, "lib/b.star": true}
	if len(files) != len(want) {
		t.Fatalf("bundle files %v, want %v", files, want)
	}
	for _, f := range files {
		if !want[f] {
			t.Fatalf("bundle files %v, want %v", files, want)
		}
	}
	// The pinned child runs from the bundle, even after the file on disk changes.
	p, err := Compile(b, sources)
	if err != nil {
		t.Fatal(err)
	}
	run, err := p.NewRun("main", json.RawMessage(`[]`), Config{})
	if err != nil {
		t.Fatal(err)
	}
	step := run.Advance(nil)
	run.Close()
	if len(step.Scheduled) != 1 || step.Scheduled[0].Name != root+"/lib/a.star:main" {
		t.Fatalf("scheduled %+v, want the child %s/lib/a.star:main", step.Scheduled, root)
	}

	for name, wantErr := range map[string]string{
		"escape.star":   `escape.star:2:29: workflow: "../outside.star" is outside the script's directory tree`,
		"absolute.star": "is an absolute path: name files relative to the loading script",
		"missing.star":  "nope.star",
		"via_link.star": `workflow: "link.star" is outside the script's directory tree`,
	} {
		_, _, err := CollectBundle(filepath.ToSlash(filepath.Join(dir, "wf", name)))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("CollectBundle(%s) = %v, want an error containing %q", name, err, wantErr)
		}
	}

	// A path computed at run time cannot be pinned: the call says so.
	b, sources, err = CollectBundle(filepath.ToSlash(filepath.Join(dir, "wf", "computed.star")))
	if err != nil {
		t.Fatal(err)
	}
	p, err = Compile(b, sources)
	if err != nil {
		t.Fatal(err)
	}
	run, err = p.NewRun("main", json.RawMessage(`["unused"]`), Config{})
	if err != nil {
		t.Fatal(err)
	}
	step = run.Advance(nil)
	run.Close()
	if step.Err == nil || !strings.Contains(step.Err.Message, "unused.star is not pinned with this execution") ||
		!strings.Contains(step.Err.Message, "computed.star:2:28") {
		t.Fatalf("computed path: %+v, want a not-pinned error at computed.star:2:28", step.Err)
	}
}
