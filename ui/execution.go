package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/where"
)

const (
	eventsPerPage = 500
	// treeLimit bounds how many descendants the children tree shows.
	treeLimit = 200
)

type eventRow struct {
	N     int // 1..N, as `stent history` numbers them
	Seq   int
	Kind  string
	Name  string
	Data  string
	Note  string // of an activity_attempt_failed event: which attempt, where, how long
	Error *backend.ErrorInfo
	Cache bool
	At    time.Time
	Class string
	Reset bool // offer "reset from here" on this row (the first of its step)
}

type signalRow struct {
	Name    string
	Payload string
	At      time.Time
}

type treeNode struct {
	ID       string
	Status   string
	Entry    string
	Seq      int
	Children []*treeNode
}

type execData struct {
	Ex        *backend.Execution
	Status    string // as shown: scheduled while a delayed start is ahead
	Running   bool
	Script    string
	Hash      string
	Duration  string
	Args      string
	Result    string
	Timeline  *timeline
	Events    []eventRow
	EventsOf  int
	EventPrev string
	EventNext string
	Logs      []backend.LogLine
	Signals   []signalRow
	Waits     []string
	Custom    string // what the script last passed to set_status, as JSON
	Children  []*treeNode
	TreeMore  bool
	Source    string // link to the source page
	Parent    string
	Tags      []tagLink
	CanReset  bool // ended root execution, and actions allowed: steps offer a reset
	ResetFrom *backend.ResetLink
	ResetInto []backend.ResetLink
}

// tagLink is a tag, linking to the list of the executions that have it.
type tagLink struct{ Text, Href string }

// tagLinks sorts tags by key, each linking to the list filtered by it.
func (s *Server) tagLinks(tags map[string]string) []tagLink {
	var out []tagLink
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		term := "tag:" + k + "=" + where.Quote(tags[k])
		out = append(out, tagLink{Text: k + "=" + tags[k], Href: s.base + "?" + url.Values{"where": {term}}.Encode()})
	}
	return out
}

func (s *Server) executionPage(w http.ResponseWriter, r *http.Request, id string) {
	ctx := r.Context()
	ex, events, ok := s.executionAndHistory(w, r, id)
	if !ok {
		return
	}
	now := time.Now()
	d := &execData{Ex: ex, Status: string(ex.StatusAt(now)), Running: !ex.Status.Terminal(), Script: ex.Bundle.Main, Hash: ex.Bundle.Files[ex.Bundle.Main],
		Duration: execDuration(ex, now), Args: prettyJSON(ex.Args), Result: prettyJSON(ex.Result),
		Source: s.base + "executions/" + pathID(id) + "/source", Parent: ex.ParentID}
	q := r.URL.Query()
	stepOffset, _ := strconv.Atoi(q.Get("steps"))
	all := steps(events)
	if d.Running {
		waits, err := s.eng.Waits(ctx, ex)
		if err != nil {
			s.fail(w, r, http.StatusInternalServerError, err)
			return
		}
		attempt := map[int]int{}
		for _, wt := range waits {
			d.Waits = append(d.Waits, wt.String())
			if wt.Kind == stent.WaitActivity {
				attempt[wt.Seq] = wt.Attempt
			}
		}
		for _, st := range all {
			st.Attempt = attempt[st.Seq]
		}
	}
	d.Timeline = layoutTimeline(ex, all, stepOffset, now, func(st *step) string {
		return d.Source + "?" + url.Values{"seq": {strconv.Itoa(st.Seq)}}.Encode() + "#L" + strconv.Itoa(st.Line)
	}, func(off int) string { return withParam(q, "steps", strconv.Itoa(off)) + "#timeline" })

	evOffset, _ := strconv.Atoi(q.Get("events"))
	if evOffset < 0 || evOffset >= len(events) {
		evOffset = 0
	}
	d.EventsOf = len(events)
	d.CanReset = canReset(ex) && !s.opts.ReadOnly
	d.ResetFrom, d.ResetInto = resetLinks(events)
	offered := map[int]bool{}
	for _, ev := range events[:evOffset] {
		offered[ev.Seq] = true
	}
	for i, ev := range events[evOffset:min(len(events), evOffset+eventsPerPage)] {
		row := eventRow{N: evOffset + i + 1, Seq: ev.Seq, Kind: string(ev.Kind), Name: ev.Name,
			Data: shortText(string(ev.Data), 300), Error: ev.Error, Cache: ev.CacheHit, At: ev.At, Class: eventClass(ev)}
		if ev.Kind == backend.EventActivityAttemptFailed {
			row.Note = attemptNote(ev)
		}
		if d.CanReset && ev.Seq > 0 && !offered[ev.Seq] {
			row.Reset, offered[ev.Seq] = true, true
		}
		d.Events = append(d.Events, row)
	}
	if evOffset > 0 {
		d.EventPrev = withParam(q, "events", strconv.Itoa(max(0, evOffset-eventsPerPage))) + "#history"
	}
	if evOffset+eventsPerPage < len(events) {
		d.EventNext = withParam(q, "events", strconv.Itoa(evOffset+eventsPerPage)) + "#history"
	}
	tags, err := s.eng.Tags(ctx, id)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, fmt.Errorf("reading tags of %s: %w", id, err))
		return
	}
	d.Tags = s.tagLinks(tags)
	custom, err := s.eng.CustomStatus(ctx, id)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	d.Custom = prettyJSON(custom)
	if d.Logs, err = s.b.Logs(ctx, id); err != nil {
		s.fail(w, r, http.StatusInternalServerError, fmt.Errorf("reading logs of %s: %w", id, err))
		return
	}
	if d.Running {
		sigs, err := s.b.PendingSignals(ctx, id)
		if err != nil {
			s.fail(w, r, http.StatusInternalServerError, fmt.Errorf("reading signals of %s: %w", id, err))
			return
		}
		for _, sg := range sigs {
			d.Signals = append(d.Signals, signalRow{Name: sg.Name, Payload: shortText(string(sg.Payload), 300), At: sg.At})
		}
	}
	budget := treeLimit
	if d.Children, err = s.childTree(r, id, &budget); err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	d.TreeMore = budget <= 0
	s.render(w, r, "execution", page{Title: "Execution " + id, Nav: "executions", Live: "exec=" + url.QueryEscape(id), Data: d})
}

// childTree lists the descendants of id, depth first, at most *budget of them.
func (s *Server) childTree(r *http.Request, id string, budget *int) ([]*treeNode, error) {
	if *budget <= 0 {
		return nil, nil
	}
	kids, err := s.b.ListExecutions(r.Context(), backend.ListFilter{ParentID: id, Limit: *budget})
	if err != nil {
		return nil, fmt.Errorf("listing children of %s: %w", id, err)
	}
	slices.SortFunc(kids, func(a, b backend.Execution) int { return a.ParentSeq - b.ParentSeq })
	var out []*treeNode
	for _, k := range kids {
		if *budget <= 0 {
			break
		}
		*budget--
		n := &treeNode{ID: k.ID, Status: string(k.StatusAt(time.Now())), Entry: k.Entry, Seq: k.ParentSeq}
		if n.Children, err = s.childTree(r, k.ID, budget); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// attemptNote says which attempt an activity_attempt_failed event records, on which
// worker and for how long it ran.
func attemptNote(ev backend.Event) string {
	var a backend.AttemptData
	if json.Unmarshal(ev.Data, &a) != nil || a.Attempt == 0 {
		return ""
	}
	note := "attempt " + strconv.Itoa(a.Attempt)
	if a.Worker != "" {
		note += " on " + a.Worker
	}
	if !a.StartedAt.IsZero() && !a.EndedAt.IsZero() {
		note += ", ran " + fmtDuration(a.EndedAt.Sub(a.StartedAt))
	}
	return note + ":"
}

func eventClass(ev backend.Event) string {
	switch {
	case ev.Error != nil || ev.Kind == backend.EventFailed:
		return "ev-bad"
	case ev.Kind == backend.EventCompleted:
		return "ev-good"
	}
	return ""
}

type sourceLine struct {
	N      int
	Text   string
	Steps  []int // seqs of the steps called on this line
	Chosen bool
}

type sourceData struct {
	Ex    *backend.Execution
	Files []string
	File  string
	Hash  string
	Lines []sourceLine
	Seq   int
	Back  string
}

func (s *Server) sourcePage(w http.ResponseWriter, r *http.Request, id string) {
	ctx := r.Context()
	ex, events, ok := s.executionAndHistory(w, r, id)
	if !ok {
		return
	}
	all := steps(events)
	for _, st := range all {
		st.locate()
	}
	q := r.URL.Query()
	seq, _ := strconv.Atoi(q.Get("seq"))
	d := &sourceData{Ex: ex, Seq: seq, Back: s.base + "executions/" + pathID(id)}
	for f := range ex.Bundle.Files {
		d.Files = append(d.Files, f)
	}
	slices.Sort(d.Files)
	d.File = q.Get("file")
	if d.File == "" {
		d.File = ex.Bundle.Main
		for _, st := range all {
			if st.Seq == seq && st.File != "" {
				d.File = bundleFile(ex.Bundle, st.File)
			}
		}
	}
	d.Hash = ex.Bundle.Files[d.File]
	if d.Hash == "" {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("execution %s pins no file %q", id, d.File))
		return
	}
	src, err := s.b.GetScript(ctx, d.Hash)
	if err != nil {
		s.notFoundOr(w, r, "script "+d.Hash, err)
		return
	}
	lineSteps := map[int][]int{}
	chosen := 0
	for _, st := range all {
		if st.Line > 0 && bundleFile(ex.Bundle, st.File) == d.File {
			lineSteps[st.Line] = append(lineSteps[st.Line], st.Seq)
			if st.Seq == seq {
				chosen = st.Line
			}
		}
	}
	for i, text := range strings.Split(strings.TrimRight(string(src), "\n"), "\n") {
		n := i + 1
		ss := lineSteps[n]
		if len(ss) > 8 { // a loop: name the first few
			ss = append(ss[:8:8], -len(ss))
		}
		d.Lines = append(d.Lines, sourceLine{N: n, Text: text, Steps: ss, Chosen: n == chosen})
	}
	s.render(w, r, "source", page{Title: "Source of " + id, Nav: "executions", Data: d})
}

// bundleFile maps a call position's file name to the bundle's name for it.
func bundleFile(b backend.Bundle, file string) string {
	if _, ok := b.Files[file]; ok {
		return file
	}
	for f := range b.Files {
		if strings.HasSuffix(file, "/"+f) || strings.HasSuffix(f, "/"+file) {
			return f
		}
	}
	return file
}

func (s *Server) notFoundOr(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, backend.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no %s", what))
		return
	}
	s.fail(w, r, http.StatusInternalServerError, fmt.Errorf("reading %s: %w", what, err))
}

// pathID escapes an execution ID for a URL path, keeping the slashes of child IDs.
func pathID(id string) string {
	parts := strings.Split(id, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

func withParam(q url.Values, k, v string) string {
	c := url.Values{}
	for key, vals := range q {
		c[key] = vals
	}
	c.Set(k, v)
	return "?" + c.Encode()
}

// prettyJSON indents a JSON value for display; "" when there is none.
func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	if buf.Len() > 20000 {
		return buf.String()[:20000] + "\n… (truncated)"
	}
	return buf.String()
}

func shortText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// executionAndHistory reads an execution and its whole history for a page, or answers
// the request with the error (not found, or a failed read) and returns ok false.
func (s *Server) executionAndHistory(w http.ResponseWriter, r *http.Request, id string) (*backend.Execution, []backend.Event, bool) {
	ex, err := s.b.GetExecution(r.Context(), id)
	if err != nil {
		s.notFoundOr(w, r, "execution "+id, err)
		return nil, nil, false
	}
	events, err := s.b.History(r.Context(), id, 0)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, fmt.Errorf("reading history of %s: %w", id, err))
		return nil, nil, false
	}
	return ex, events, true
}
