package stenttest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/tools/txtar"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
)

// snapshot is what a test compares about an execution once it ended: its outcome and
// the history and log of it and of every child execution.
type snapshot struct {
	status  backend.Status
	value   json.RawMessage
	failure *backend.ErrorInfo
	base    time.Time  // the root's start: "@+D" marks are relative to it
	execs   []execInfo // the root first, then children depth first, by sequence number
}

type execInfo struct {
	label  string // "" for the root, "1" for its child at seq 1, "1/2" for a grandchild
	events []backend.Event
	logs   []string
}

// takeSnapshot reads the execution tree rooted at id. Children still running (a
// started child nobody waited for) get a short grace period to end, so that the
// snapshot does not depend on how fast the worker is.
func takeSnapshot(ctx context.Context, eng *stent.Engine, id string, res *stent.Result) (*snapshot, error) {
	s := &snapshot{status: res.Status, value: res.Value, failure: res.Failure}
	deadline := time.Now().Add(time.Second)
	var walk func(id, label string) error
	walk = func(id, label string) error {
		events, err := eng.History(ctx, id)
		if err != nil {
			return fmt.Errorf("reading the history of %s: %w", id, err)
		}
		lines, err := eng.Backend().Logs(ctx, id)
		if err != nil {
			return fmt.Errorf("reading the log of %s: %w", id, err)
		}
		info := execInfo{label: label, events: events}
		for _, l := range lines {
			info.logs = append(info.logs, l.Message)
		}
		if label == "" && len(events) > 0 {
			s.base = events[0].At
		}
		s.execs = append(s.execs, info)
		kids, err := eng.List(ctx, backend.ListFilter{ParentID: id, Limit: 10000})
		if err != nil {
			return fmt.Errorf("listing the children of %s: %w", id, err)
		}
		sort.Slice(kids, func(i, j int) bool {
			if kids[i].ParentSeq != kids[j].ParentSeq {
				return kids[i].ParentSeq < kids[j].ParentSeq
			}
			return kids[i].ID < kids[j].ID
		})
		for _, k := range kids {
			for !k.Status.Terminal() && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
				if ex, err := eng.Get(ctx, k.ID); err == nil {
					k = *ex
				}
			}
			childLabel := fmt.Sprint(k.ParentSeq)
			if label != "" {
				childLabel = label + "/" + childLabel
			}
			if err := walk(k.ID, childLabel); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(id, ""); err != nil {
		return nil, err
	}
	return s, nil
}

// Expectation sections of a golden file, in the order they are written.
const (
	sectionResult  = "result"
	sectionError   = "error"
	sectionLog     = "log"
	sectionHistory = "history"
)

// isExpectation reports whether a txtar section holds an expected outcome (rewritten
// by Update) rather than an input.
func isExpectation(name string) bool {
	switch name {
	case sectionResult, sectionError, sectionLog, sectionHistory:
		return true
	}
	return strings.HasPrefix(name, sectionHistory+"/")
}

// sections renders the snapshot as the expectation sections of a golden file.
func (s *snapshot) sections(m *masker) []txtar.File {
	var out []txtar.File
	add := func(name, text string) {
		if text != "" && !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		out = append(out, txtar.File{Name: name, Data: []byte(m.mask(text))})
	}
	if s.status == backend.StatusCompleted {
		add(sectionResult, indentJSON(s.value))
	} else {
		add(sectionError, formatOutcomeError(s.status, s.failure))
	}
	var logs []string
	for _, e := range s.execs {
		for _, l := range e.logs {
			if e.label != "" {
				l = "[" + e.label + "] " + l
			}
			logs = append(logs, l)
		}
	}
	if len(logs) > 0 {
		add(sectionLog, strings.Join(logs, "\n"))
	}
	for _, e := range s.execs {
		name := sectionHistory
		if e.label != "" {
			name += "/" + e.label
		}
		add(name, FormatHistory(e.events, s.base))
	}
	return out
}

// formatOutcomeError is the error section: the failure's type and message, on one line
// each when the message spans several.
func formatOutcomeError(status backend.Status, info *backend.ErrorInfo) string {
	prefix := ""
	if status != backend.StatusFailed {
		prefix = "(" + string(status) + ") "
	}
	if info == nil {
		return prefix + string(status)
	}
	typ := info.Type
	if typ == "" {
		typ = "error"
	}
	return prefix + typ + ": " + info.Message
}

// masker replaces what differs between runs by placeholders: values of random side
// effects (uuid, random) and the directories scripts were read from.
type masker struct {
	r *strings.Replacer
}

func newMasker(s *snapshot, dirs ...string) *masker {
	return newMaskerAs(s, nil, dirs...)
}

// newMaskerAs is newMasker that also writes each directory key of as (with its
// files) as its value, a relative path.
func newMaskerAs(s *snapshot, as map[string]string, dirs ...string) *masker {
	var pairs []string
	all := append([]string(nil), dirs...)
	for d := range as {
		all = append(all, d)
	}
	sort.Slice(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
	for _, d := range all {
		if d == "" {
			continue
		}
		to := ""
		if rel, ok := as[d]; ok {
			to = strings.TrimSuffix(rel, "/") + "/"
		}
		pairs = append(pairs, strings.TrimSuffix(d, "/")+"/", to)
	}
	counts := map[string]int{}
	seen := map[string]bool{}
	for _, e := range s.execs {
		for _, ev := range e.events {
			if ev.Kind != backend.EventSideEffect || (ev.Name != "uuid" && ev.Name != "random") {
				continue
			}
			v := strings.TrimSpace(string(ev.Data))
			if ev.Name == "uuid" {
				var str string
				if json.Unmarshal(ev.Data, &str) == nil {
					v = str
				}
			}
			if v == "" || seen[v] {
				continue
			}
			seen[v] = true
			counts[ev.Name]++
			pairs = append(pairs, v, fmt.Sprintf("<%s%d>", ev.Name, counts[ev.Name]))
		}
	}
	if len(pairs) == 0 {
		return &masker{}
	}
	return &masker{r: strings.NewReplacer(pairs...)}
}

func (m *masker) mask(s string) string {
	if m == nil || m.r == nil {
		return s
	}
	return m.r.Replace(s)
}
