// Package where reads the filter language that selects executions, one parser for the
// CLI (`stent list --where`, `stent cancel|terminate|retry --where`) and the HTTP API
// (GET /api/v1/executions?where=):
//
//	status=failed script=checkout.star since=1h tag:customer=42
//
// Terms are separated by spaces and all must hold. A term is KEY=VALUE with KEY one of
// status, script, queue, id (an ID prefix), parent, since, until (a time: RFC 3339, a
// date, or a duration ago such as 2h), or tag:NAME=VALUE (repeatable). A value may be
// quoted ("…" or '…') to hold spaces.
//
// It imports package backend (the ListFilter it fills), builtins (durations) and
// internal/errs.
package where

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/builtins"
	"github.com/stent-go/stent/internal/errs"
)

// Keys lists the keys a term may have, for messages.
const Keys = "status, script, queue, id, parent, since, until, tag:NAME"

// Parse reads expr into a list filter; durations count back from now. An empty expr
// is an empty filter. Problems are *errs.InputError naming the term.
func Parse(expr string, now time.Time) (backend.ListFilter, error) {
	var f backend.ListFilter
	terms, err := split(expr)
	if err != nil {
		return f, bad("%v", err)
	}
	for _, t := range terms {
		key, val, ok := strings.Cut(t, "=")
		if !ok || key == "" {
			return f, bad("term %q: want KEY=VALUE (keys: %s)", t, Keys)
		}
		if name, isTag := strings.CutPrefix(key, "tag:"); isTag {
			if err := backend.CheckTag(name, val); err != nil {
				return f, bad("term %q: %v", t, err)
			}
			if f.Tags == nil {
				f.Tags = map[string]string{}
			}
			f.Tags[name] = val
			continue
		}
		if val == "" {
			return f, bad("term %q: the value is empty", t)
		}
		switch key {
		case "status":
			s := backend.Status(val)
			if !known(s) {
				return f, bad("term %q: status wants one of %s", t, statusNames())
			}
			f.Status = s
		case "script":
			f.Script = filepath.ToSlash(filepath.Clean(val))
		case "queue":
			f.Queue = val
		case "id":
			f.IDPrefix = val
		case "parent":
			f.ParentID = val
		case "since", "until":
			at, err := parseTime(val, now)
			if err != nil {
				return f, bad("term %q: %v", t, err)
			}
			if key == "since" {
				f.Since = at
			} else {
				f.Until = at
			}
		default:
			return f, bad("term %q: unknown key %q (keys: %s)", t, key, Keys)
		}
	}
	return f, nil
}

func bad(format string, args ...any) error {
	return &errs.InputError{Err: fmt.Errorf("--where: "+format, args...)}
}

// split cuts expr at spaces outside quotes, removing the quotes.
func split(expr string) ([]string, error) {
	var (
		out   []string
		cur   strings.Builder
		quote rune
		in    bool
	)
	for _, r := range expr {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed %c quote in %q", quote, expr)
	}
	if in {
		out = append(out, cur.String())
	}
	return out, nil
}

// parseTime reads RFC 3339, a date (UTC midnight), or a duration before now.
func parseTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := builtins.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("want a time (2026-01-02T15:04:05Z), a date (2026-01-02) or a duration ago (2h)")
}

func known(s backend.Status) bool {
	for _, k := range backend.Statuses {
		if s == k {
			return true
		}
	}
	return false
}

func statusNames() string {
	names := make([]string, len(backend.Statuses))
	for i, s := range backend.Statuses {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// Without returns expr without its terms whose key is key (a status chip of the web
// view replaces the status term, for example), the values quoted again where needed.
// An expr that does not split (an unclosed quote) is returned as it is.
func Without(expr, key string) string {
	terms, err := split(expr)
	if err != nil {
		return expr
	}
	var out []string
	for _, t := range terms {
		k, v, _ := strings.Cut(t, "=")
		if k == key {
			continue
		}
		if strings.Contains(t, "=") {
			t = k + "=" + Quote(v)
		}
		out = append(out, t)
	}
	return strings.Join(out, " ")
}

// Quote quotes a term's value when it holds a space or a quote, so that Parse reads it
// back as it is.
func Quote(v string) string {
	if !strings.ContainsAny(v, " \t\n\"'") {
		return v
	}
	if strings.Contains(v, `"`) {
		return "'" + v + "'"
	}
	return `"` + v + `"`
}
