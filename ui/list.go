package ui

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/where"
)

// statuses in the order the chips show them.
var statuses = backend.Statuses

// listQuery is the list page's filter, read from and written back to its URL.
type listQuery struct {
	Status   string
	Script   string
	IDPrefix string
	Since    string // datetime-local value, UTC
	Until    string
	Where    string // the --where language (internal/where), ANDed with the fields above
	After    string // cursor of the last execution of the previous page (backend.ListCursor)
}

func readListQuery(v url.Values) listQuery {
	return listQuery{
		Status:   strings.TrimSpace(v.Get("status")),
		Script:   strings.TrimSpace(v.Get("script")),
		IDPrefix: strings.TrimSpace(v.Get("id")),
		Since:    strings.TrimSpace(v.Get("since")),
		Until:    strings.TrimSpace(v.Get("until")),
		Where:    strings.TrimSpace(v.Get("where")),
		After:    v.Get("after"),
	}
}

// withStatus returns the query string of q with status replaced by st (chips): the
// cursor and a status term of the where filter are dropped.
func (q listQuery) withStatus(st string) string {
	q.Status, q.After = st, ""
	if q.Where != "" {
		q.Where = where.Without(q.Where, "status")
	}
	return q.encode()
}

// withTag returns the query string of q with the term tag:key=value added to its where
// filter (replacing a term of the same tag key), without the cursor.
func (q listQuery) withTag(key, value string) string {
	q.After = ""
	q.Where = strings.TrimSpace(where.Without(q.Where, "tag:"+key) + " tag:" + key + "=" + where.Quote(value))
	return q.encode()
}

// tagLinks sorts tags by key, each linking to the list of q narrowed to it.
func (q listQuery) tagLinks(tags map[string]string) []tagLink {
	var out []tagLink
	for _, k := range backend.SortedTagKeys(tags) {
		out = append(out, tagLink{Text: k + "=" + tags[k], Href: "?" + q.withTag(k, tags[k])})
	}
	return out
}

// tagsOf reads the tags of the executions of a list page, in one read where the
// backend can.
func (s *Server) tagsOf(r *http.Request, exs []backend.Execution) (map[string]map[string]string, error) {
	ids := make([]string, len(exs))
	for i := range exs {
		ids[i] = exs[i].ID
	}
	if tl, ok := s.b.(backend.TagLister); ok {
		tags, err := tl.TagsOf(r.Context(), ids)
		if err != nil {
			return nil, fmt.Errorf("reading the tags of the listed executions: %w", err)
		}
		return tags, nil
	}
	tags := map[string]map[string]string{}
	tg, ok := s.b.(backend.Tagger)
	if !ok {
		return tags, nil
	}
	for _, id := range ids {
		t, err := tg.ExecutionTags(r.Context(), id)
		if err != nil {
			return nil, fmt.Errorf("reading the tags of %s: %w", id, err)
		}
		tags[id] = t
	}
	return tags, nil
}

func (q listQuery) encode() string {
	v := url.Values{}
	for k, val := range map[string]string{"status": q.Status, "script": q.Script, "id": q.IDPrefix,
		"since": q.Since, "until": q.Until, "where": q.Where, "after": q.After} {
		if val != "" {
			v.Set(k, val)
		}
	}
	return v.Encode()
}

const timeInput = "2006-01-02T15:04"

func parseTimeInput(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{timeInput, timeInput + ":05", time.RFC3339, "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q is not a time: use YYYY-MM-DDTHH:MM (UTC)", name, s)
}

// filter turns q into the backend's filter (root executions only: children are shown
// in their parent's tree).
func (q listQuery) filter(limit int) (backend.ListFilter, error) {
	f := backend.ListFilter{RootOnly: true, Limit: limit}
	if q.Status != "" {
		ok := false
		for _, st := range statuses {
			ok = ok || string(st) == q.Status
		}
		if !ok {
			return f, fmt.Errorf("status %q is not one of scheduled, running, completed, failed, cancelled, timed_out", q.Status)
		}
		f.Status = backend.Status(q.Status)
	}
	if err := applyListFilter(&f, q); err != nil {
		return f, err
	}
	return f, applyWhere(&f, q.Where, time.Now())
}

type chip struct {
	Label   string
	Status  string
	Count   int
	Counts  bool // whether Count is known
	AtLeast bool // Count is a lower bound (ListFilter.CountCapped)
	Href    string
	Active  bool
}

type listRow struct {
	ID       string
	Status   string
	Script   string
	Entry    string
	Created  time.Time
	Duration string
	Tags     []tagLink // each filters the list by its tag (added to the page's filter)
}

type listData struct {
	Query           listQuery
	Chips           []chip
	Rows            []listRow
	Next            string // link to the next (older) page, "" on the last page
	First           string // link to the first page, "" on the first page
	Statuses        []backend.Status
	Now             time.Time
	Matching        int  // how many executions the filter matches (of its status, when set)
	Counted         bool // whether Matching is known
	MatchingAtLeast bool // Matching is a lower bound: the counts stopped at Options.CountAtMost
	Fields          [][2]string
}

func (s *Server) listPage(w http.ResponseWriter, r *http.Request) {
	q := readListQuery(r.URL.Query())
	d, err := s.loadList(r, q)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	s.render(w, r, "list", page{Title: "Executions", Nav: "executions", Live: "list=1&" + q.encode(), Data: d})
}

func (s *Server) loadList(r *http.Request, q listQuery) (*listData, error) {
	ctx := r.Context()
	pageSize := s.opts.PageSize
	f, err := q.filter(pageSize + 1)
	if err != nil {
		return nil, err
	}
	exs, err := s.b.ListExecutions(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("listing executions: %w", err)
	}
	d := &listData{Query: q, Statuses: statuses, Now: time.Now()}
	if len(exs) > pageSize {
		exs = exs[:pageSize]
		next := q
		next.After = backend.ListCursor(&exs[len(exs)-1])
		d.Next = "?" + next.encode()
	}
	if q.After != "" {
		first := q
		first.After = ""
		d.First = "?" + first.encode()
	}
	tags, err := s.tagsOf(r, exs)
	if err != nil {
		return nil, err
	}
	for _, e := range exs {
		d.Rows = append(d.Rows, listRow{ID: e.ID, Status: string(e.StatusAt(d.Now)), Script: e.Bundle.Main, Entry: e.Entry,
			Created: e.CreatedAt, Duration: execDuration(&e, d.Now), Tags: q.tagLinks(tags[e.ID])})
	}
	counts, known, err := s.countByStatus(r, q)
	if err != nil {
		return nil, err
	}
	bound := backend.ListFilter{CountAtMost: s.opts.CountAtMost}
	total, capped := bound.CountTotal(counts)
	d.Matching, d.Counted, d.MatchingAtLeast, d.Fields = total, known, capped, q.fields()
	if f.Status != "" {
		d.Matching, d.MatchingAtLeast = counts[f.Status], bound.CountCapped(counts[f.Status])
	}
	d.Chips = append(d.Chips, chip{Label: "all", Count: total, Counts: known, AtLeast: capped, Href: "?" + q.withStatus(""), Active: f.Status == ""})
	for _, st := range statuses {
		d.Chips = append(d.Chips, chip{Label: strings.ReplaceAll(string(st), "_", " "), Status: string(st), Count: counts[st],
			Counts: known, AtLeast: bound.CountCapped(counts[st]), Href: "?" + q.withStatus(string(st)), Active: f.Status == st})
	}
	return d, nil
}

// execDuration is how long an execution ran (so far, when it is running).
func execDuration(e *backend.Execution, now time.Time) string {
	start := e.StartAt
	if start.IsZero() || start.Before(e.CreatedAt) {
		start = e.CreatedAt
	}
	end := now
	if e.CompletedAt != nil {
		end = *e.CompletedAt
	}
	if end.Before(start) {
		return "—"
	}
	return fmtDuration(end.Sub(start))
}
