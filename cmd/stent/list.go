package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/builtins"
	"github.com/stent-go/stent/internal/where"
)

func listCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list executions, newest first, with a count per status",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "status", Usage: "only this status: " + statusNames()},
			&cli.StringFlag{Name: "script", Usage: "only executions of this main script (the path given to exec/dispatch)"},
			&cli.StringFlag{Name: "id-prefix", Usage: "only executions whose ID starts with this"},
			&cli.StringFlag{Name: "since", Usage: "only executions created at or after this time (RFC 3339, YYYY-MM-DD, or a duration ago such as 2h)"},
			&cli.StringFlag{Name: "until", Usage: "only executions created before this time (same forms as --since)"},
			&cli.StringFlag{Name: "parent", Usage: "only the children of this execution"},
			&cli.StringFlag{Name: "queue", Usage: "only executions on this queue"},
			&cli.BoolFlag{Name: "all", Usage: "include child executions"},
			&cli.IntFlag{Name: "limit", Usage: "executions per page", Value: 50},
			&cli.StringFlag{Name: "after", Usage: "cursor printed by the previous page: continue after it"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object (see README)"},
			whereFlag,
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return failf(exitUsage, "list takes no arguments, got %q (filter with --status, --script, …)", c.Args().Slice())
			}
			now := time.Now()
			f, err := listFilter(c, now)
			if err != nil {
				return err
			}
			return withEngine(c, func(eng *stent.Engine) error {
				list, err := eng.List(c.Context, f)
				if errors.Is(err, backend.ErrBadCursor) {
					return failf(exitUsage, "--after %q is not a cursor printed by `stent list`", f.After)
				}
				if err != nil {
					return err
				}
				f.CountAtMost = backend.DefaultCountAtMost
				counts, err := eng.Backend().CountExecutions(c.Context, f)
				if err != nil {
					return err
				}
				next := ""
				if len(list) == f.Limit && len(list) > 0 {
					next = backend.ListCursor(&list[len(list)-1])
				}
				if c.Bool("json") {
					out := newListJSON(f, counts)
					out.NextCursor = next
					for i := range list {
						out.Executions = append(out.Executions, newExecutionJSON(&list[i], now))
					}
					return writeJSON(c, out)
				}
				w := newTable(c)
				fmt.Fprintln(w, "ID\tSTATUS\tSCRIPT\tENTRY\tCREATED")
				for _, ex := range list {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", ex.ID, ex.StatusAt(now), ex.Bundle.Main, ex.Entry, ex.CreatedAt.UTC().Format(time.RFC3339))
				}
				if err := w.Flush(); err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, countsLine(f, counts))
				if next != "" {
					fmt.Fprintf(c.App.Writer, "more: repeat with --after %s\n", next)
				}
				return nil
			})
		},
	}
}

func statusNames() string {
	names := make([]string, len(backend.Statuses))
	for i, s := range backend.Statuses {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// listFilter reads list's flags.
func listFilter(c *cli.Context, now time.Time) (backend.ListFilter, error) {
	f := backend.ListFilter{
		Status: backend.Status(c.String("status")), ParentID: c.String("parent"), Queue: c.String("queue"),
		IDPrefix: c.String("id-prefix"), After: c.String("after"), Limit: c.Int("limit"),
		RootOnly: !c.Bool("all") && c.String("parent") == "",
	}
	if f.Status != "" && !knownStatus(f.Status) {
		return f, failf(exitUsage, "--status %q: want one of %s", f.Status, statusNames())
	}
	if f.Limit < 1 {
		return f, failf(exitUsage, "--limit must be at least 1, got %d", f.Limit)
	}
	if s := c.String("script"); s != "" {
		f.Script = filepath.ToSlash(filepath.Clean(s))
	}
	var err error
	if f.Since, err = timeFlag(c, "since", now); err != nil {
		return f, err
	}
	if f.Until, err = timeFlag(c, "until", now); err != nil {
		return f, err
	}
	if c.IsSet("where") {
		w, err := where.Parse(c.String("where"), now)
		if err != nil {
			return f, failf(exitUsage, "%v", err)
		}
		if err := mergeWhere(&f, w); err != nil {
			return f, err
		}
	}
	return f, nil
}

// mergeWhere adds the terms of --where to the filter of list's other flags; a field
// set both ways is a usage error.
func mergeWhere(f *backend.ListFilter, w backend.ListFilter) error {
	both := func(name string, a, b bool) error {
		if a && b {
			return failf(exitUsage, "--where %s= and --%s both filter by %s: give one", name, name, name)
		}
		return nil
	}
	for _, chk := range []error{
		both("status", f.Status != "", w.Status != ""), both("script", f.Script != "", w.Script != ""),
		both("queue", f.Queue != "", w.Queue != ""), both("since", !f.Since.IsZero(), !w.Since.IsZero()),
		both("until", !f.Until.IsZero(), !w.Until.IsZero()), both("parent", f.ParentID != "", w.ParentID != ""),
	} {
		if chk != nil {
			return chk
		}
	}
	if f.IDPrefix != "" && w.IDPrefix != "" {
		return failf(exitUsage, "--where id= and --id-prefix both filter by ID: give one")
	}
	if w.Status != "" {
		f.Status = w.Status
	}
	if w.Script != "" {
		f.Script = w.Script
	}
	if w.Queue != "" {
		f.Queue = w.Queue
	}
	if w.IDPrefix != "" {
		f.IDPrefix = w.IDPrefix
	}
	if !w.Since.IsZero() {
		f.Since = w.Since
	}
	if !w.Until.IsZero() {
		f.Until = w.Until
	}
	if w.ParentID != "" {
		f.ParentID, f.RootOnly = w.ParentID, false
	}
	f.Tags = w.Tags
	return nil
}

func knownStatus(s backend.Status) bool {
	for _, k := range backend.Statuses {
		if s == k {
			return true
		}
	}
	return false
}

// timeFlag parses a point in time: RFC 3339, a date (UTC midnight), or a duration
// before now.
func timeFlag(c *cli.Context, name string, now time.Time) (time.Time, error) {
	s := c.String(name)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := builtins.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, failf(exitUsage, "--%s %q: want a time (2026-01-02T15:04:05Z), a date (2026-01-02) or a duration ago (2h)", name, s)
}

// countsLine prints the counts in lifecycle order: "7 executions: 2 running · 5
// completed"; a count that stopped at f.CountAtMost gets a "+" ("10000+ completed").
func countsLine(f backend.ListFilter, counts map[backend.Status]int) string {
	var parts []string
	for _, s := range backend.Statuses {
		if n := counts[s]; n > 0 {
			parts = append(parts, countText(n, f.CountCapped(n))+" "+string(s))
		}
	}
	total, capped := f.CountTotal(counts)
	if total == 0 {
		return "no executions"
	}
	noun := "executions"
	if total == 1 {
		noun = "execution"
	}
	return fmt.Sprintf("%s %s: %s", countText(total, capped), noun, strings.Join(parts, " · "))
}

// countText is n, with a "+" when it is a lower bound.
func countText(n int, atLeast bool) string {
	if atLeast {
		return strconv.Itoa(n) + "+"
	}
	return strconv.Itoa(n)
}
