package cli_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stent-go/stent/tests/internal/stentcli"
)

// The --json contract as README.md documents it ("### JSON output"), one Go type per
// table. TestJSONOutputContract checks that each type's fields are exactly its table's
// rows, then decodes every command's real output into it (unknown fields are an error),
// checks the "always" fields and that re-encoding gives the output back.

type errorJSON struct {
	Message  string `json:"message"`
	Type     string `json:"type,omitempty"`
	Activity string `json:"activity,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
	Stack    string `json:"stack,omitempty"`
	Seq      int    `json:"seq,omitempty"`
}

type executionJSON struct {
	ID          string          `json:"id"`
	Status      string          `json:"status"`
	Script      string          `json:"script"`
	Entry       string          `json:"entry"`
	Args        json.RawMessage `json:"args"`
	Queue       string          `json:"queue"`
	ParentID    string          `json:"parent_id,omitempty"`
	ParentSeq   int             `json:"parent_seq,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	StartAt     time.Time       `json:"start_at"`
	Deadline    *time.Time      `json:"deadline,omitempty"`
	CompletedAt *time.Time      `json:"completed_at,omitempty"`
	Result      json.RawMessage `json:"result,omitempty"`
	Error       *errorJSON      `json:"error,omitempty"`
	Version     int64           `json:"version"`
	Run         int             `json:"run"`
}

type waitJSON struct {
	Kind        string     `json:"kind"`
	Seq         int        `json:"seq,omitempty"`
	Name        string     `json:"name,omitempty"`
	Attempt     int        `json:"attempt,omitempty"`
	MaxAttempts int        `json:"max_attempts,omitempty"`
	Worker      string     `json:"worker,omitempty"`
	LeaseUntil  *time.Time `json:"lease_until,omitempty"`
	StoppedAt   *time.Time `json:"stopped_at,omitempty"`
	ReclaimAt   *time.Time `json:"reclaim_at,omitempty"`
	At          *time.Time `json:"at,omitempty"`
	ChildID     string     `json:"child_id,omitempty"`
	ChildStatus string     `json:"child_status,omitempty"`
}

type statusJSON struct {
	executionJSON
	WaitingFor   []waitJSON        `json:"waiting_for,omitempty"`
	CustomStatus json.RawMessage   `json:"custom_status,omitempty"`
	Tags         map[string]string `json:"tags,omitempty"`
	NeedsWorker  []string          `json:"needs_worker,omitempty"`
	ResetFrom    *resetLinkJSON    `json:"reset_from,omitempty"`
	ResetInto    []resetLinkJSON   `json:"reset_into,omitempty"`
}

type resetLinkJSON struct {
	ID     string `json:"id"`
	Step   int    `json:"step"`
	Script string `json:"script,omitempty"`
}

type listJSON struct {
	Executions   []executionJSON `json:"executions"`
	Counts       map[string]int  `json:"counts"`
	CountsCapped []string        `json:"counts_capped,omitempty"`
	NextCursor   string          `json:"next_cursor,omitempty"`
}

type eventJSON struct {
	Number   int             `json:"number"`
	Seq      int             `json:"seq"`
	Kind     string          `json:"kind"`
	Name     string          `json:"name,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
	Error    *errorJSON      `json:"error,omitempty"`
	CacheHit bool            `json:"cache_hit,omitempty"`
	At       time.Time       `json:"at"`
}

type logLineJSON struct {
	Run     int       `json:"run"`
	At      time.Time `json:"at"`
	Message string    `json:"message"`
}

type deadLetterJSON struct {
	ID          int64           `json:"id"`
	ExecutionID string          `json:"execution_id"`
	Seq         int             `json:"seq"`
	Activity    string          `json:"activity"`
	Payload     json.RawMessage `json:"payload"`
	Error       *errorJSON      `json:"error,omitempty"`
	Status      string          `json:"status"`
	CreatedAt   time.Time       `json:"created_at"`
}

type cacheClearJSON struct {
	Activity string `json:"activity,omitempty"`
	Cleared  int    `json:"cleared"`
}

type benchStepJSON struct {
	N          int       `json:"n"`
	WallMS     float64   `json:"wall_ms"`
	PerStepMS  float64   `json:"per_step_ms"`
	ActsPerSec float64   `json:"activities_per_sec"`
	RunsWallMS []float64 `json:"runs_wall_ms"`
	Commits    float64   `json:"commits_per_step,omitempty"`
	Work       *workJSON `json:"work_per_step,omitempty"`
}

type workJSON struct {
	ClientCPUMS float64 `json:"client_cpu_ms"`
	ServerCPUMS float64 `json:"server_cpu_ms,omitempty"`
	WALBytes    float64 `json:"wal_bytes,omitempty"`
}

type benchJSON struct {
	Scenario     string          `json:"scenario"`
	What         string          `json:"what"`
	Backend      string          `json:"backend"`
	Workers      int             `json:"workers"`
	Concurrency  int             `json:"concurrency"`
	Runs         int             `json:"runs"`
	HTTP         bool            `json:"http,omitempty"`
	Executions   int             `json:"executions"`
	Activities   int             `json:"activities"`
	WallMS       float64         `json:"wall_ms"`
	RunsWallMS   []float64       `json:"runs_wall_ms"`
	DispatchMS   float64         `json:"dispatch_ms,omitempty"`
	ExecsPerSec  float64         `json:"executions_per_sec"`
	ActsPerSec   float64         `json:"activities_per_sec"`
	PerS         float64         `json:"activities_per_s,omitempty"`
	LatencyP50MS float64         `json:"latency_p50_ms,omitempty"`
	LatencyP99MS float64         `json:"latency_p99_ms,omitempty"`
	Steps        []benchStepJSON `json:"steps,omitempty"`
	PerStepRatio float64         `json:"per_step_ratio,omitempty"`
	Commits      float64         `json:"commits_per_step,omitempty"`
	Work         *workJSON       `json:"work_per_step,omitempty"`
}

// docTable is one README table: its fields, and those present in every object.
type docTable struct {
	fields, always []string
}

// readmeJSONTables reads the tables of README.md's "### JSON output" section, keyed
// by the first code span of the first line of the paragraph before each (e.g.
// "stent list --json").
func readmeJSONTables(t *testing.T) map[string]docTable {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]docTable{}
	in, key, paragraphStart := false, "", true
	row := regexp.MustCompile("^\\| `([a-z_0-9]+)` \\| [^|]+ \\| ([^|]+) \\|")
	code := regexp.MustCompile("`([^`]+)`")
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		first := paragraphStart
		paragraphStart = strings.TrimSpace(line) == ""
		switch {
		case line == "### JSON output":
			in = true
		case in && strings.HasPrefix(line, "## "):
			in = false
		case !in:
		case strings.HasPrefix(line, "|"):
			if m := row.FindStringSubmatch(line); m != nil && key != "" {
				tb := tables[key]
				tb.fields = append(tb.fields, m[1])
				if strings.TrimSpace(m[2]) == "always" {
					tb.always = append(tb.always, m[1])
				}
				tables[key] = tb
			}
		case strings.TrimSpace(line) != "":
			if m := code.FindStringSubmatch(line); m != nil && first {
				key = m[1]
			}
		}
	}
	return tables
}

// jsonFields lists the JSON names of a struct type's fields (embedded ones inlined).
func jsonFields(typ reflect.Type) []string {
	var out []string
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if f.Anonymous {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		out = append(out, name)
	}
	return out
}

func TestJSONOutputContract(t *testing.T) {
	tables := readmeJSONTables(t)
	// Each documented type against its table.
	types := []struct {
		key  string
		typ  reflect.Type
		skip []string // documented in another table
	}{
		{"stent status ID --json", reflect.TypeOf(statusJSON{}), nil},
		{"waiting_for", reflect.TypeOf(waitJSON{}), nil},
		{"stent list --json", reflect.TypeOf(listJSON{}), nil},
		{"stent history ID --json", reflect.TypeOf(eventJSON{}), nil},
		{"stent logs ID --json", reflect.TypeOf(logLineJSON{}), nil},
		{"stent dlq list --json", reflect.TypeOf(deadLetterJSON{}), nil},
		{"stent cache clear [NAME] --json", reflect.TypeOf(cacheClearJSON{}), nil},
		{"stent bench --json", reflect.TypeOf(benchJSON{}), nil},
	}
	for _, tc := range types {
		doc, ok := tables[tc.key]
		if !ok {
			t.Fatalf("README.md's JSON output section has no table for %q (found %v)", tc.key, slices.Sorted(mapsKeys(tables)))
		}
		if got := jsonFields(tc.typ); !slices.Equal(got, doc.fields) {
			t.Errorf("%s: the documented type has fields %v, README.md's table %v", tc.key, got, doc.fields)
		}
	}

	dir := t.TempDir()
	if err := copyTree(filepath.Join(repoRoot(), "workflows"), filepath.Join(dir, "workflows")); err != nil {
		t.Fatal(err)
	}
	must := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must("talk.star", "def main():\n    print('hello')\n    log('twice', 2)\n    return durable('geo', 'x', cached = True)\n")
	must("wait.star", "def main():\n    return wait_signal('go', timeout = '1h')\n")
	stent := func(want int, args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(binDir, "stent"), args...)
		cmd.Dir = dir
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "STENT_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		stdout, stderr, code := stentcli.Run(t, cmd)
		if code != want {
			t.Fatalf("stent %v: exit %d, want %d\n%s%s", args, code, want, stdout, stderr)
		}
		return stdout
	}
	stent(0, "exec", "talk.star", "--id", "talk", "--activity", "geo=echo '\"here\"'")
	stent(0, "exec", "talk.star", "--id", "talk2", "--activity", "geo=echo '\"here\"'") // a cache hit
	stent(1, "exec", "workflows/checkout/checkout.star", "--args", `["order-43", 0]`, "--id", "declined",
		"--activity", "charge=workflows/checkout/charge.sh", "--activity", "ship=workflows/checkout/ship.sh")
	stent(0, "dispatch", "workflows/greeting.star", "--args", `[["Ann"]]`, "--id", "later", "--delay", "1h", "--max-duration", "2h")
	stent(0, "dispatch", "wait.star", "--id", "waiting")
	serve := exec.Command(filepath.Join(binDir, "stent"), "exec", "wait.star", "--id", "waiting")
	serve.Dir, serve.Env = dir, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if strings.Contains(stent(0, "history", "waiting", "--json"), `"kind":"signal_wait"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the waiting execution never reached its wait_signal")
		}
		time.Sleep(50 * time.Millisecond)
	}
	stent(0, "signal", "waiting", "go", `{"ok":true}`)
	if err := serve.Wait(); err != nil {
		t.Fatalf("stent exec wait.star: %v", err)
	}
	stent(0, "dispatch", "wait.star", "--id", "waiting2")
	stent(0, "exec", "workflows/greeting.star", "--args", `[["Ann"]]`, "--id", "greet")

	outputs := []struct {
		key    string
		args   []string
		lines  bool // one object per line
		typ    reflect.Type
		always []string
	}{
		{"stent status ID --json", []string{"status", "talk", "--json"}, false, reflect.TypeOf(statusJSON{}), nil},
		{"stent status ID --json", []string{"status", "declined", "--json"}, false, reflect.TypeOf(statusJSON{}), nil},
		{"stent status ID --json", []string{"status", "later", "--json"}, false, reflect.TypeOf(statusJSON{}), nil},
		{"stent status ID --json", []string{"status", "waiting2", "--json"}, false, reflect.TypeOf(statusJSON{}), nil},
		{"stent status ID --json", []string{"status", "greet/1", "--json"}, false, reflect.TypeOf(statusJSON{}), nil},
		{"stent list --json", []string{"list", "--all", "--json"}, false, reflect.TypeOf(listJSON{}), nil},
		{"stent list --json", []string{"list", "--limit", "1", "--json"}, false, reflect.TypeOf(listJSON{}), nil},
		{"stent history ID --json", []string{"history", "talk", "--json"}, true, reflect.TypeOf(eventJSON{}), nil},
		{"stent history ID --json", []string{"history", "talk2", "--json"}, true, reflect.TypeOf(eventJSON{}), nil},
		{"stent history ID --json", []string{"history", "declined", "--json"}, true, reflect.TypeOf(eventJSON{}), nil},
		{"stent history ID --json", []string{"history", "waiting", "--json"}, true, reflect.TypeOf(eventJSON{}), nil},
		{"stent logs ID --json", []string{"logs", "talk", "--json"}, true, reflect.TypeOf(logLineJSON{}), nil},
		{"stent dlq list --json", []string{"dlq", "list", "--json"}, true, reflect.TypeOf(deadLetterJSON{}), nil},
		{"stent dlq list --json", []string{"dlq", "show", "1"}, false, reflect.TypeOf(deadLetterJSON{}), nil},
		{"stent cache clear [NAME] --json", []string{"cache", "clear", "geo", "--json"}, false, reflect.TypeOf(cacheClearJSON{}), nil},
		{"stent cache clear [NAME] --json", []string{"cache", "clear", "--json"}, false, reflect.TypeOf(cacheClearJSON{}), nil},
		{"stent bench --json", []string{"bench", "--scenario", "P2,P4,P5", "--runs", "1", "--scale", "0.02", "--json"}, true, reflect.TypeOf(benchJSON{}), nil},
	}
	for _, o := range outputs {
		out := stent(0, o.args...)
		docs := []string{out}
		if o.lines {
			docs = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		}
		if len(docs) == 0 || strings.TrimSpace(docs[0]) == "" {
			t.Errorf("stent %v printed nothing", o.args)
			continue
		}
		for _, doc := range docs {
			checkRoundTrip(t, o.args, []byte(doc), o.typ, tables[o.key].always)
		}
	}
	// The nested objects against their own "always" rows.
	var st statusJSON
	_ = json.Unmarshal([]byte(stent(0, "status", "waiting2", "--json")), &st)
	if len(st.WaitingFor) != 1 || st.WaitingFor[0].Kind != "signal" || st.WaitingFor[0].Name != "go" || st.WaitingFor[0].At == nil {
		t.Errorf("status waiting2: waiting_for = %+v, want the signal go with its timeout", st.WaitingFor)
	}
	var page listJSON
	_ = json.Unmarshal([]byte(stent(0, "list", "--all", "--json")), &page)
	for _, ex := range page.Executions {
		raw, _ := json.Marshal(ex)
		checkRoundTrip(t, []string{"list", "--all", "--json", "(execution " + ex.ID + ")"}, raw, reflect.TypeOf(executionJSON{}), tables["stent status ID --json"].always)
	}
	for _, w := range st.WaitingFor {
		raw, _ := json.Marshal(w)
		checkRoundTrip(t, []string{"status", "waiting2", "--json", "(waiting_for)"}, raw, reflect.TypeOf(waitJSON{}), tables["waiting_for"].always)
	}
}

// checkRoundTrip decodes doc into a new value of typ, refusing unknown fields, checks
// that every "always" field is there, and that encoding the value gives doc back.
func checkRoundTrip(t *testing.T, args []string, doc []byte, typ reflect.Type, always []string) {
	t.Helper()
	v := reflect.New(typ)
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v.Interface()); err != nil {
		t.Errorf("stent %v: %v\n%s", args, err, doc)
		return
	}
	var fields map[string]any
	if err := json.Unmarshal(doc, &fields); err != nil {
		t.Errorf("stent %v: %v", args, err)
		return
	}
	for _, f := range always {
		if _, ok := fields[f]; !ok {
			t.Errorf("stent %v: no %q, documented as always present\n%s", args, f, doc)
		}
	}
	back, err := json.Marshal(v.Interface())
	if err != nil {
		t.Fatal(err)
	}
	var again map[string]any
	_ = json.Unmarshal(back, &again)
	if !reflect.DeepEqual(fields, again) {
		t.Errorf("stent %v: decoding and encoding again changed the output\nprinted: %s\nagain:   %s", args, doc, back)
	}
}

func mapsKeys(m map[string]docTable) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
