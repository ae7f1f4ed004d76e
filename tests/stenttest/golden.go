package stenttest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/tools/txtar"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/builtins"
)

// goldenID is the execution ID every golden test dispatches under, so that child IDs
// ("golden/1") are the same on every run.
const goldenID = "golden"

// goldenTest is a parsed golden file.
type goldenTest struct {
	path    string
	archive *txtar.Archive

	workflow    string // header: path of the script
	entry       string
	timeout     time.Duration
	maxDuration time.Duration
	scripts     map[string][]byte // *.star sections but mocks.star
	args        json.RawMessage
	mocks       []byte
	signals     []scriptedSignal
}

type scriptedSignal struct {
	line    int
	at      time.Duration
	cancel  bool
	name    string
	payload json.RawMessage
}

// parseGolden reads a golden file. Errors describe what is wrong with the file itself.
func parseGolden(path string) (*goldenTest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	g := &goldenTest{path: path, archive: txtar.Parse(data), entry: "main", scripts: map[string][]byte{}}
	sc := bufio.NewScanner(bytes.NewReader(g.archive.Comment))
	for n := 1; sc.Scan(); n++ {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.TrimSpace(key) {
		case "workflow":
			g.workflow = value
		case "entry":
			g.entry = value
		case "timeout", "max-duration":
			d, err := builtins.ParseDuration(value)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %s: %w", path, n, strings.TrimSpace(key), err)
			}
			if strings.TrimSpace(key) == "timeout" {
				g.timeout = d
			} else {
				g.maxDuration = d
			}
		}
	}
	seen := map[string]bool{}
	for _, f := range g.archive.Files {
		if seen[f.Name] {
			return nil, fmt.Errorf("%s: section %q appears twice", path, f.Name)
		}
		seen[f.Name] = true
		switch {
		case f.Name == "mocks.star":
			g.mocks = f.Data
		case strings.HasSuffix(f.Name, ".star"):
			if strings.Contains(f.Name, "..") || filepath.IsAbs(f.Name) {
				return nil, fmt.Errorf("%s: script section %q must be a relative path inside the test", path, f.Name)
			}
			g.scripts[f.Name] = f.Data
		case f.Name == "args.json":
			raw := bytes.TrimSpace(f.Data)
			var probe []json.RawMessage
			if err := json.Unmarshal(raw, &probe); err != nil {
				return nil, fmt.Errorf("%s: args.json must be a JSON array of arguments: %v", path, err)
			}
			g.args = raw
		case f.Name == "signals":
			sigs, err := parseSignals(f.Data)
			if err != nil {
				return nil, fmt.Errorf("%s: signals: %w", path, err)
			}
			g.signals = sigs
		case isExpectation(f.Name):
		default:
			return nil, fmt.Errorf("%s: unknown section %q (known: workflow.star and other *.star, args.json, mocks.star, signals, result, error, log, history, history/N)", path, f.Name)
		}
	}
	_, embedded := g.scripts["workflow.star"]
	switch {
	case g.workflow != "" && embedded:
		return nil, fmt.Errorf("%s: both a workflow: header and a workflow.star section; keep one", path)
	case g.workflow == "" && !embedded:
		return nil, fmt.Errorf("%s: no workflow: add a \"workflow: workflows/x.star\" line before the first section, or a -- workflow.star -- section", path)
	}
	if g.args == nil {
		g.args = json.RawMessage("[]")
	}
	return g, nil
}

func parseSignals(data []byte) ([]scriptedSignal, error) {
	var out []scriptedSignal
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("line %d: %s (want \"at 1h send NAME [JSON]\" or \"at 1h cancel\")", n, fmt.Sprintf(format, args...))
		}
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[0] != "at" {
			return nil, bad("%q", line)
		}
		d, err := builtins.ParseDuration(fields[1])
		if err != nil {
			return nil, bad("%v", err)
		}
		s := scriptedSignal{line: n, at: d}
		switch fields[2] {
		case "cancel":
			if len(fields) != 3 {
				return nil, bad("cancel takes nothing after it")
			}
			s.cancel = true
		case "send":
			if len(fields) < 4 {
				return nil, bad("send needs a signal name")
			}
			s.name = fields[3]
			// The payload is the rest of the line after the name, as written.
			rest := strings.TrimSpace(line[strings.Index(line, fields[3])+len(fields[3]):])
			if rest == "" {
				rest = "null"
			}
			if !json.Valid([]byte(rest)) {
				return nil, bad("payload %s is not JSON", rest)
			}
			s.payload = json.RawMessage(rest)
		default:
			return nil, bad("unknown action %q", fields[2])
		}
		out = append(out, s)
	}
	return out, nil
}

// GoldenResult is the outcome of one golden test file.
type GoldenResult struct {
	Path string
	// Failures are readable reports (with diffs) of what did not match; empty when the
	// test passed.
	Failures []string
	// Updated reports that Update rewrote the file's expectations.
	Updated bool
	Elapsed time.Duration
}

// Passed reports whether the file matched its expectations.
func (r *GoldenResult) Passed() bool { return len(r.Failures) == 0 }

// RunGoldenFile runs the golden test in path twice, with the live-execution cache and
// replaying from history after every event, and compares the outcome with the file's
// expectations and the two runs with each other. With Update(true) a file whose
// expectations do not match is rewritten instead of failing. The error reports a file
// that cannot be run at all (unreadable, malformed, mocks that do not load).
func RunGoldenFile(ctx context.Context, path string, opts ...Option) (*GoldenResult, error) {
	began := time.Now()
	o := buildOptions(opts)
	g, err := parseGolden(path)
	if err != nil {
		return nil, err
	}
	if g.timeout > 0 {
		o.engine.timeout = g.timeout
	}
	res := &GoldenResult{Path: path}
	live, err := g.run(ctx, o, 4096)
	if err != nil {
		return nil, err
	}
	replay, err := g.run(ctx, o, 0)
	if err != nil {
		return nil, err
	}

	want := expectationText(g.archive.Files)
	got := live.text
	if want != got {
		if o.update {
			if err := g.rewrite(live.sections); err != nil {
				return nil, err
			}
			res.Updated = true
		} else {
			res.Failures = append(res.Failures, "the outcome differs from the expectations (run with --update to accept it):\n"+
				Diff(filepath.Base(path)+" (expected)", want, "actual", got))
		}
	}
	if replay.text != live.text {
		res.Failures = append(res.Failures, divergence(live, replay))
	}
	for _, p := range live.problems {
		res.Failures = append(res.Failures, p)
	}
	for _, p := range replay.problems {
		if !contains(live.problems, p) {
			res.Failures = append(res.Failures, "in the replay run: "+p)
		}
	}
	res.Elapsed = time.Since(began)
	return res, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// goldenRun is the outcome of one run of a golden test.
type goldenRun struct {
	mode     string
	sections []txtar.File
	text     string
	problems []string
}

// run runs the test once on a fresh engine with the given live-execution cache size.
func (g *goldenTest) run(ctx context.Context, o options, cacheSize int) (*goldenRun, error) {
	mode := "uninterrupted run"
	if cacheSize == 0 {
		mode = "run replayed after every event"
	}
	out := &goldenRun{mode: mode}
	dir, err := os.MkdirTemp("", "stent-golden-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	script, maskDirs, maskAs, err := g.prepareScripts(dir)
	if err != nil {
		return nil, err
	}

	var te *testEngine
	mocks, err := loadMocks("mocks.star", g.mocks, func() *stent.VirtualClock {
		if te == nil {
			return nil
		}
		return te.eng.VirtualClock()
	})
	if err != nil {
		return nil, fmt.Errorf("%s: mocks.star: %w", g.path, err)
	}
	cfg := o.engine
	cfg.cacheSize = cacheSize
	cfg.activities = append(append([]activityReg(nil), cfg.activities...), mocks.activities()...)
	if o.builtins != nil {
		cfg.builtins = o.builtins()
	}
	cfg.warn = mocks.report
	te, err = startEngine(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer te.stop()
	eng := te.eng

	snap, err := g.execute(ctx, eng, script, cfg.timeout, mocks.report)
	if err != nil {
		return nil, err
	}
	out.sections = snap.sections(newMaskerAs(snap, maskAs, maskDirs...))
	for i := range out.sections {
		out.sections[i].Data = mockHint(out.sections[i].Data)
	}
	out.text = expectationText(out.sections)
	if err := mocks.takeProblems(); err != nil {
		out.problems = append(out.problems, err.Error())
	}
	return out, nil
}

// prepareScripts writes embedded scripts to dir, or resolves the named workflow. It
// returns the script to dispatch, the directories to mask in the output and those to
// write relative to the test file: a named workflow outside the test's directory and
// the module is shown by its path from the test file, never an absolute one.
func (g *goldenTest) prepareScripts(dir string) (string, []string, map[string]string, error) {
	fileDir, _ := filepath.Abs(filepath.Dir(g.path))
	root := moduleRoot(fileDir)
	if g.workflow != "" {
		script, err := resolveScript(fileDir, g.workflow)
		if err != nil {
			return "", nil, nil, fmt.Errorf("%s: workflow: %w", g.path, err)
		}
		var as map[string]string
		if wd := filepath.Dir(script); !within(wd, fileDir) && (root == "" || !within(wd, root)) {
			if rel, err := filepath.Rel(fileDir, wd); err == nil {
				as = map[string]string{wd: filepath.ToSlash(rel)}
			}
		}
		return script, []string{root, fileDir}, as, nil
	}
	names := make([]string, 0, len(g.scripts))
	for name := range g.scripts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", nil, nil, err
		}
		if err := os.WriteFile(p, g.scripts[name], 0o644); err != nil {
			return "", nil, nil, err
		}
	}
	return filepath.Join(dir, "workflow.star"), []string{dir, root, fileDir}, nil, nil
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// unknownActivityHint is the engine's advice for an activity nobody registered, which
// in a golden test means a missing mock.
var unknownActivityHint = regexp.MustCompile(`register it with Engine\.Register, or on the command line with --activity ([^=\s"\\]+)=COMMAND`)

// mockHint rewrites the engine's advice for an unknown activity into a golden test's.
func mockHint(text []byte) []byte {
	return unknownActivityHint.ReplaceAll(text, []byte("add it to the mocks: def $1(...) in mocks.star"))
}

// execute dispatches the workflow, acts the scripted signals and waits for the end.
func (g *goldenTest) execute(ctx context.Context, eng *stent.Engine, script string, timeout time.Duration, report func(string)) (*snapshot, error) {
	opts := []stent.DispatchOption{stent.ID(goldenID), stent.Entry(g.entry)}
	if g.maxDuration > 0 {
		opts = append(opts, stent.MaxDuration(g.maxDuration))
	}
	id, err := eng.DispatchJSON(ctx, script, g.args, opts...)
	if err != nil {
		var ie *stent.InputError
		if !errors.As(err, &ie) {
			return nil, fmt.Errorf("dispatching %s: %w", script, err)
		}
		// A script that does not compile is an outcome worth a golden test too.
		return &snapshot{status: backend.StatusFailed, failure: &backend.ErrorInfo{Type: "dispatch", Message: err.Error()}}, nil
	}
	vc := eng.VirtualClock()
	start := vc.Now()
	for _, s := range g.signals {
		s := s
		vc.At(start.Add(s.at), func() {
			var err error
			if s.cancel {
				err = eng.Cancel(ctx, id)
			} else {
				err = eng.SignalJSON(ctx, id, s.name, s.payload)
			}
			if err != nil && !g.ended(ctx, eng, id) {
				report(fmt.Sprintf("signals line %d (at %s): %v", s.line, FormatDuration(s.at), err))
			}
		})
	}
	res, err := waitProgressing(ctx, eng, id, timeout)
	if res == nil {
		if !errors.Is(err, errStuck) {
			return nil, fmt.Errorf("waiting for the workflow: %w", err)
		}
		// Stuck: show how far it got.
		res = &stent.Result{ID: id, Status: backend.StatusRunning, Failure: &backend.ErrorInfo{
			Type:    "stuck",
			Message: fmt.Sprintf("the workflow made no progress for %s of real time; it waits for something that never comes (a signal nobody sends?)", FormatDuration(timeout)),
		}}
	}
	return takeSnapshot(ctx, eng, id, res)
}

// ended reports whether the execution ended. A scripted event that finds it ended is
// dropped without a word: whether virtual time reaches the event before the run stops
// depends on how fast the run is, and the history shows that it never arrived.
func (g *goldenTest) ended(ctx context.Context, eng *stent.Engine, id string) bool {
	ex, err := eng.Get(ctx, id)
	return err == nil && ex.Status.Terminal()
}

// expectationText renders the expectation sections of a list, in their order, as the
// text that is compared and diffed.
func expectationText(files []txtar.File) string {
	var keep []txtar.File
	for _, f := range files {
		if isExpectation(f.Name) {
			keep = append(keep, f)
		}
	}
	return string(txtar.Format(&txtar.Archive{Files: keep}))
}

// rewrite replaces the file's expectation sections by sections, keeping its comment and
// inputs as they are.
func (g *goldenTest) rewrite(sections []txtar.File) error {
	a := &txtar.Archive{Comment: g.archive.Comment}
	for _, f := range g.archive.Files {
		if !isExpectation(f.Name) {
			a.Files = append(a.Files, f)
		}
	}
	a.Files = append(a.Files, sections...)
	info, err := os.Stat(g.path)
	if err != nil {
		return err
	}
	return os.WriteFile(g.path, txtar.Format(a), info.Mode().Perm())
}

// divergence describes how the run replayed after every event differs from the
// uninterrupted one: the first differing line of each section (event N for histories),
// then the full diff.
func divergence(live, replay *goldenRun) string {
	var b strings.Builder
	b.WriteString("replay check: replaying the workflow from its history after every event gave another outcome than the uninterrupted run; is the workflow deterministic?\n")
	lm, lorder := sectionsByKey(live.sections)
	rm, rorder := sectionsByKey(replay.sections)
	keys := lorder
	for _, k := range rorder {
		if _, ok := lm[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		l, r := lm[k], rm[k]
		if l == r {
			continue
		}
		ll, rl := plainLines(l), plainLines(r)
		i := 0
		for i < len(ll) && i < len(rl) && ll[i] == rl[i] {
			i++
		}
		at := fmt.Sprintf("line %d", i+1)
		switch {
		case k == "outcome":
			at = "outcome"
		case strings.HasPrefix(k, sectionHistory):
			at = fmt.Sprintf("event %d", i+1)
		}
		lineOr := func(lines []string) string {
			if i < len(lines) {
				return lines[i]
			}
			return "(nothing)"
		}
		name := k + ", " + at
		if k == "outcome" {
			name = k
		}
		fmt.Fprintf(&b, "  %s:\n    uninterrupted: %s\n    replayed:      %s\n", name, lineOr(ll), lineOr(rl))
	}
	b.WriteString(Diff(live.mode, live.text, replay.mode, replay.text))
	return b.String()
}

// sectionsByKey indexes sections by name, with result and error both under "outcome"
// (their text prefixed by which one it is), in their order.
func sectionsByKey(files []txtar.File) (map[string]string, []string) {
	m := map[string]string{}
	var order []string
	for _, f := range files {
		k, text := f.Name, string(f.Data)
		if k == sectionResult || k == sectionError {
			k, text = "outcome", f.Name+": "+strings.ReplaceAll(strings.TrimSpace(text), "\n", " ")
		}
		m[k] = text
		order = append(order, k)
	}
	return m, order
}

func plainLines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
