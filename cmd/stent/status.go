package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/wire"
)

// statusField is one line of `stent status`: a label and its value. Status is built as
// a list of fields so that new facts (a custom status, a worker, …) are one more entry.
type statusField struct {
	label, value string
}

func statusCommand() *cli.Command {
	return executionCommand("status", "show an execution's state and, while it runs, what it waits for",
		jsonFlag("print JSON (see README)"), printStatus)
}

func printStatus(c *cli.Context, eng *stent.Engine, ex *backend.Execution) error {
	now := time.Now()
	d, err := eng.Describe(c.Context, ex)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return writeJSON(c, wire.NewStatus(ex, d, now))
	}
	w := newTable(c)
	fields := statusFields(ex, d.Waits, d.CustomStatus, d.Tags, now)
	if d.ResetFrom != nil {
		fields = append(fields, statusField{"reset from", resetLinkText(*d.ResetFrom)})
	}
	for i, l := range d.ResetInto {
		label := ""
		if i == 0 {
			label = "reset into"
		}
		fields = append(fields, statusField{label, resetLinkText(l)})
	}
	for _, f := range fields {
		fmt.Fprintf(w, "%s\t%s\n", f.label, f.value)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, l := range d.NeedsWorker { // "waiting for a worker that runs "charge" (none alive)"
		fmt.Fprintln(c.App.Writer, l)
	}
	return nil
}

// statusFields lists what `stent status` shows about ex, in order.
func statusFields(ex *backend.Execution, waits []stent.Wait, custom json.RawMessage, tags map[string]string, now time.Time) []statusField {
	fs := []statusField{
		{"id", ex.ID},
		{"status", string(ex.StatusAt(now))},
		{"script", fmt.Sprintf("%s (entry %s)", ex.Bundle.Main, ex.Entry)},
		{"args", string(ex.Args)},
	}
	if ex.ParentID != "" {
		fs = append(fs, statusField{"parent", fmt.Sprintf("%s (step %d)", ex.ParentID, ex.ParentSeq)})
	}
	fs = append(fs, statusField{"created", ex.CreatedAt.UTC().Format(time.RFC3339)})
	if ex.Deadline != nil {
		fs = append(fs, statusField{"deadline", ex.Deadline.UTC().Format(time.RFC3339)})
	}
	for i, wt := range waits {
		label := ""
		if i == 0 {
			label = "waiting for"
		}
		fs = append(fs, statusField{label, wt.String()})
	}
	if custom != nil {
		fs = append(fs, statusField{"custom status", string(custom)})
	}
	if len(tags) > 0 {
		var kv []string
		for _, k := range backend.SortedTagKeys(tags) {
			kv = append(kv, k+"="+tags[k])
		}
		fs = append(fs, statusField{"tags", strings.Join(kv, " ")})
	}
	if ex.CompletedAt != nil {
		fs = append(fs, statusField{"ended", fmt.Sprintf("%s (%s)", ex.CompletedAt.UTC().Format(time.RFC3339), ex.CompletedAt.Sub(ex.CreatedAt).Round(time.Millisecond))})
	}
	if len(ex.Result) > 0 {
		fs = append(fs, statusField{"result", string(ex.Result)})
	}
	if ex.Error != nil {
		fs = append(fs, statusField{"error", ex.Error.Message})
	}
	return fs
}

// resetLinkText is a reset link as `stent status` shows it.
func resetLinkText(l backend.ResetLink) string {
	return fmt.Sprintf("%s (from step %d, %s)", l.ID, l.Step, l.Script)
}
