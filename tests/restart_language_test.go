package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maxOutstanding returns the most activity steps of an execution that were scheduled
// and not finished at the same point of its history.
func maxOutstanding(t *testing.T, dir, id string) int {
	t.Helper()
	outstanding, most := 0, 0
	for _, k := range historyKinds(t, dir, id) {
		switch k {
		case "activity_scheduled":
			outstanding++
		case "activity_completed", "activity_failed":
			outstanding--
		}
		most = max(most, outstanding)
	}
	return most
}

// TestLanguageSurvivesAWorkerKill: wait_any, bounded gather, workflow() children,
// set_status and a cancellation with cleanup give the outcome of an uninterrupted run when the worker running them is
// killed (SIGKILL) in the middle and a fresh one takes over.
func TestLanguageSurvivesAWorkerKill(t *testing.T) {
	t.Parallel()
	// late loses every race with the slow activity, even at killMidRun's slowest
	// level (6 s) on a loaded machine: the outcome must not depend on timing.
	const late = "def late():\n    sleep('20s')\n    return 'late'\n\n"
	cases := []struct {
		name    string
		script  string
		files   map[string]string // more files beside flow.star
		killAt  string
		killN   int
		between func(t *testing.T, dir, id string)
		want    string
		check   func(t *testing.T, dir, id string)
	}{
		{name: "wait_any first wins", script: late + "def main():\n    fs = [start(late), start('slow', 7)]\n    i, v = wait_any(fs)\n    return [i, v, fs[0].result()]\n",
			killAt: "child_scheduled", killN: 1, want: `[1,7,"late"]`},
		{name: "wait_any timeout", script: late + "def main():\n    f = start(late)\n    return [wait_any([f], timeout='1s'), f.result()]\n",
			killAt: "timer_scheduled", killN: 1, want: `[null,"late"]`},
		{name: "bounded gather", script: "def main():\n    return gather([start('slow', i) for i in range(8)], max_concurrency=2)\n",
			killAt: "activity_completed", killN: 3, want: `[0,1,2,3,4,5,6,7]`,
			check: func(t *testing.T, dir, id string) {
				if n := maxOutstanding(t, dir, id); n != 2 {
					t.Fatalf("at most %d activities were scheduled and unfinished at once, want 2", n)
				}
			}},
		{name: "workflow child", script: "def main():\n    return durable(workflow('lib/child.star', 3))\n",
			files:  map[string]string{"lib/child.star": "def main(n):\n    sleep('1s')\n    return durable('slow', n) * 2\n"},
			killAt: "child_scheduled", killN: 1,
			between: func(t *testing.T, dir, id string) {
				// Pinned at dispatch: an edit now changes nothing for this execution.
				writeFile(t, filepath.Join(dir, "lib", "child.star"), "def main(n):\n    return 'edited'\n", 0o644)
			}, want: `6`},
		{name: "set_status", script: "def main():\n    for i in range(4):\n        set_status({'i': i})\n        durable('slow', i)\n    return 'ok'\n",
			killAt: "activity_completed", killN: 2, want: `"ok"`,
			check: func(t *testing.T, dir, id string) {
				st := stent(t, dir, "status", "--json", id)
				var m struct {
					CustomStatus json.RawMessage `json:"custom_status"`
				}
				if err := json.Unmarshal([]byte(st.stdout), &m); err != nil || string(m.CustomStatus) != `{"i":3}` {
					t.Fatalf("custom_status %s (%v), want {\"i\":3}; status: %s", m.CustomStatus, err, st.stdout)
				}
				n := 0
				for _, k := range historyKinds(t, dir, id) {
					if k == "side_effect" {
						n++
					}
				}
				if n != 4 {
					t.Fatalf("%d set_status events, want 4 (each recorded once)", n)
				}
			}},
		{name: "cancel with cleanup", script: "def payment():\n    sleep('1h')\n    return 0\n\ndef main():\n    durable('slow', 1)\n    r = attempt(payment)\n    if not r.ok:\n        durable('slow', 2)\n        durable('slow', 3)\n        return r.unwrap()\n    return r.value\n",
			killAt: "child_scheduled", killN: 1,
			between: func(t *testing.T, dir, id string) {
				mustStent(t, dir, "cancel", id)
			}, want: "status:cancelled",
			check: func(t *testing.T, dir, id string) {
				kinds := strings.Join(historyKinds(t, dir, id), " ")
				want := "cancel_requested child_completed activity_scheduled activity_completed activity_scheduled activity_completed failed"
				if !strings.HasSuffix(kinds, want) {
					t.Fatalf("history %s; want it to end with the two compensations after the request: %s", kinds, want)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir, kill := killMidRun(t, func() string {
				dir := flowDir(t, tc.script)
				for name, src := range tc.files {
					if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
						t.Fatal(err)
					}
					writeFile(t, filepath.Join(dir, name), src, 0o644)
				}
				return dir
			}, nil, tc.killAt, tc.killN)
			kill()
			mustVerify(t, dir) // the store as the kill left it
			if tc.between != nil {
				tc.between(t, dir, "x")
			}
			killWorker(t, dir, nil)
			r := stent(t, dir, "wait", "x")
			if status, ok := strings.CutPrefix(tc.want, "status:"); ok {
				st := stent(t, dir, "status", "--json", "x")
				var m map[string]any
				_ = json.Unmarshal([]byte(st.stdout), &m)
				if m["status"] != status {
					t.Fatalf("status %v, want %s (wait: %q %q)", m["status"], status, r.stdout, r.stderr)
				}
			} else if r.code != 0 || strings.TrimSpace(r.stdout) != tc.want {
				t.Fatalf("wait: exit %d stdout %q stderr %q; want %s", r.code, r.stdout, r.stderr, tc.want)
			}
			if tc.check != nil {
				tc.check(t, dir, "x")
			}
			mustVerify(t, dir)
		})
	}
}
