package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/batch"
	"github.com/stent-go/stent/internal/where"
)

// A batch acts on every execution a --where filter selects. It is recorded (see
// internal/batch): the IDs the filter matched when it started and each one's outcome,
// so that a batch interrupted or killed half-way goes on where it stopped when the same
// command runs again (or with --resume BATCH) and acts on no execution twice, although
// the filter's result has changed meanwhile.

// defaultBatchRate is the actions per second of a batch without --rate, as the web
// view's (stent ui --batch-rate).
const defaultBatchRate = 50

// whereFlag is the filter of `list --where` and of a batch.
var whereFlag = &cli.StringFlag{Name: "where", Usage: "select executions: 'status=failed script=checkout.star since=1h tag:customer=42' (keys: " + where.Keys + ")"}

// batchAction is what a batch does to one execution it selected (see internal/batch).
type batchAction struct {
	verb, done string // "retry", "retried"
	// wants says whether ex is one the action takes (the others are skipped).
	wants func(ex *backend.Execution) bool
	act   func(c *cli.Context, eng *stent.Engine, id string) error
	// idempotent: acting again on an execution already acted on changes nothing.
	idempotent bool
}

// of is a as the batch package's action, acting through eng.
func (a batchAction) of(c *cli.Context, eng *stent.Engine) batch.Action {
	return batch.Action{Verb: a.verb, Done: a.done, Wants: a.wants, Idempotent: a.idempotent,
		Act: func(_ context.Context, id string) error { return a.act(c, eng, id) }}
}

// batchOnly are the flags that go with --where or --resume only.
var batchOnly = []string{"yes", "dry-run", "rate"}

// withBatch lets a command that acts on one execution ID act on all the executions
// --where selects instead, with --yes, --dry-run, --rate and --resume.
func withBatch(cmd *cli.Command, a batchAction) *cli.Command {
	cmd.ArgsUsage = "[ID]"
	cmd.Usage += "; with --where FILTER instead of an ID, on every execution it selects, as a recorded batch: " +
		"interrupted, it goes on where it stopped when the same command runs again (or with --resume BATCH)"
	cmd.Flags = append(cmd.Flags, whereFlag,
		&cli.BoolFlag{Name: "yes", Usage: "with --where: act without asking (needed when stdin is not a terminal)"},
		&cli.BoolFlag{Name: "dry-run", Usage: "with --where: print how many executions it would act on, and their IDs, and stop"},
		&cli.Float64Flag{Name: "rate", Value: defaultBatchRate, Usage: "with --where: at most `N` actions per second (0: no limit)"},
		&cli.Int64Flag{Name: "resume", Usage: "go on with recorded batch `BATCH` (its number is printed when it starts) where it stopped, " +
			"acting only on the executions it has not gone through; the same command as the interrupted one resumes it too"})
	single := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		if !c.IsSet("where") && !c.IsSet("resume") {
			for _, f := range batchOnly {
				if c.IsSet(f) {
					return failf(exitUsage, "--%s goes with --where (usage: stent %s --where FILTER --%s)", f, a.verb, f)
				}
			}
			return single(c)
		}
		return runBatch(c, a)
	}
	return cmd
}

// batchUsage checks the flags of `stent VERB --where FILTER` or `--resume BATCH` before
// the database opens.
func batchUsage(c *cli.Context, a batchAction) error {
	switch {
	case c.NArg() > 0:
		return failf(exitUsage, "%s takes an execution ID or --where, not both", a.verb)
	case c.IsSet("wait"):
		return failf(exitUsage, "--wait serves one execution: it does not go with --where")
	case c.IsSet("where") && c.IsSet("resume"):
		return failf(exitUsage, "--resume goes on with a recorded batch, with the filter it was started with: it does not go with --where")
	case c.IsSet("resume") && c.Int64("resume") <= 0:
		return failf(exitUsage, "--resume %d: want the number of a batch (printed when it started)", c.Int64("resume"))
	case !(c.Float64("rate") >= 0) || math.IsInf(c.Float64("rate"), 0):
		return failf(exitUsage, "--rate %v: want actions per second, at least 0 (0: no limit)", c.Float64("rate"))
	}
	if !c.Bool("dry-run") && !c.Bool("yes") && !isTerminalReader(c.App.Reader) {
		return failf(exitUsage, "%s --where acts on many executions: add --yes to confirm (stdin is not a terminal to ask on), or --dry-run to see them", a.verb)
	}
	return nil
}

// runBatch is `stent VERB --where FILTER` or `stent VERB --resume BATCH`: usage is
// checked before the database opens.
func runBatch(c *cli.Context, a batchAction) error {
	if err := batchUsage(c, a); err != nil {
		return err
	}
	filter := strings.TrimSpace(c.String("where"))
	var f backend.ListFilter
	if c.IsSet("where") {
		var err error
		if f, err = where.Parse(filter, time.Now()); err != nil {
			return failf(exitUsage, "%v", err)
		}
		if f.ParentID == "" {
			f.RootOnly = true // children follow their parents, as in list
		}
	}
	return withEngine(c, func(eng *stent.Engine) error {
		st, ok := eng.Backend().(backend.Batcher)
		if !ok {
			return fmt.Errorf("%s --where: the %T backend does not record batches", a.verb, eng.Backend())
		}
		var (
			rec *backend.BatchRecord
			err error
		)
		if c.IsSet("resume") {
			if rec, err = resumedBatch(c, st, a, c.Int64("resume")); err != nil || rec == nil {
				return err
			}
		} else if rec, err = st.UnfinishedBatch(c.Context, a.verb, filter); err != nil {
			return fmt.Errorf("looking for an interrupted %s batch: %w", a.verb, err)
		}
		if rec != nil {
			return resumeBatch(c, eng, st, a, rec)
		}
		return newBatch(c, eng, st, a, f, filter)
	})
}

// newBatch selects the executions f selects, says how many, asks, records the batch
// and acts.
func newBatch(c *cli.Context, eng *stent.Engine, st backend.Batcher, a batchAction, f backend.ListFilter, filter string) error {
	ids, skipped, err := batch.Select(c.Context, eng, f, a.of(c, eng))
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "%s: %d %s", a.verb, len(ids), plural(len(ids), "execution"))
	if skipped > 0 {
		fmt.Fprintf(w, " (%d more %s the filter but cannot be %s: skipped)", skipped, matches(skipped), a.done)
	}
	fmt.Fprintln(w)
	if c.Bool("dry-run") {
		for _, id := range ids {
			fmt.Fprintln(w, id)
		}
		return nil
	}
	if len(ids) == 0 {
		return nil
	}
	if !c.Bool("yes") && !confirm(c, fmt.Sprintf("%s %d %s? [y/N] ", a.verb, len(ids), plural(len(ids), "execution"))) {
		fmt.Fprintln(c.App.ErrWriter, "nothing done")
		return nil
	}
	rec, err := batch.Start(c.Context, st, a.of(c, eng), filter, ids)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "batch %d: if interrupted, run the same command again (or stent %s --resume %d) to go on\n", rec.ID, a.verb, rec.ID)
	items := make([]backend.BatchItem, len(ids))
	for i, id := range ids {
		items[i] = backend.BatchItem{Seq: i + 1, ExecutionID: id}
	}
	return actOnBatch(c, eng, st, a, rec, items)
}

// resumedBatch reads the batch of --resume: nil (having said so) when it finished.
func resumedBatch(c *cli.Context, st backend.Batcher, a batchAction, id int64) (*backend.BatchRecord, error) {
	rec, err := st.GetBatch(c.Context, id)
	if errors.Is(err, backend.ErrNotFound) {
		return nil, failf(exitUsage, "no batch %d in this database", id)
	}
	if err != nil {
		return nil, err
	}
	if rec.Action != a.verb {
		return nil, failf(exitUsage, "batch %d is a %s batch: resume it with stent %s --resume %d", id, rec.Action, rec.Action, id)
	}
	if rec.FinishedAt != nil {
		fmt.Fprintf(c.App.Writer, "batch %d finished at %s: %d %s, %d skipped, %d failed; nothing left to do\n", id,
			rec.FinishedAt.Format(time.RFC3339), rec.Done, a.done, rec.Skipped, rec.Failed)
		return nil, nil
	}
	return rec, nil
}

// resumeBatch goes on with an interrupted batch: its executions not gone through yet.
func resumeBatch(c *cli.Context, eng *stent.Engine, st backend.Batcher, a batchAction, rec *backend.BatchRecord) error {
	items, err := batch.Pending(c.Context, st, rec)
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "%s: resuming batch %d (--where %s, started %s): %d of %d %s left\n", a.verb, rec.ID,
		where.Quote(rec.Filter), rec.StartedAt.Format(time.RFC3339), len(items), rec.Total, plural(rec.Total, "execution"))
	if c.Bool("dry-run") {
		for _, it := range items {
			fmt.Fprintln(w, it.ExecutionID)
		}
		return nil
	}
	if len(items) > 0 && !c.Bool("yes") &&
		!confirm(c, fmt.Sprintf("%s the %d %s left? [y/N] ", a.verb, len(items), plural(len(items), "execution"))) {
		fmt.Fprintln(c.App.ErrWriter, "nothing done")
		return nil
	}
	return actOnBatch(c, eng, st, a, rec, items)
}

// actOnBatch acts on each execution in turn at --rate, recording each outcome,
// reporting each failure without stopping and progress on a terminal; exit 1 when any
// failed.
func actOnBatch(c *cli.Context, eng *stent.Engine, st backend.Batcher, a batchAction, rec *backend.BatchRecord, items []backend.BatchItem) error {
	tty := isTerminal(c.App.ErrWriter)
	out, errw := c.App.Writer, c.App.ErrWriter
	sum, err := batch.Resume(c.Context, eng, st, a.of(c, eng), rec, items, batch.Options{Rate: c.Float64("rate"), Each: func(i int, r batch.Result) {
		if tty {
			fmt.Fprint(errw, "\r\033[K") // the progress line goes, the outcome takes its place
		}
		switch {
		case r.Outcome == batch.Failed && r.Acted:
			fmt.Fprintf(errw, "%s: %s failed: %v\n", r.ID, a.verb, r.Err)
		case r.Outcome == batch.Failed:
			fmt.Fprintf(errw, "%s: %v\n", r.ID, r.Err)
		case r.Outcome == batch.Skipped:
			fmt.Fprintf(out, "%s: skipped (now %s)\n", r.ID, r.Status)
		default:
			fmt.Fprintf(out, "%s: %s\n", r.ID, r.Reason(a.of(c, eng)))
		}
		if tty {
			fmt.Fprintf(errw, "%s %d/%d", a.verb, i+1, len(items))
		}
	}})
	if tty {
		fmt.Fprint(errw, "\r\033[K")
	}
	switch {
	case err != nil && c.Context.Err() != nil:
		return failf(exitCanceled, "interrupted after %d of %d: run the same command again (or stent %s --resume %d) to go on",
			sum.Processed, len(items), a.verb, rec.ID)
	case err != nil:
		return fmt.Errorf("batch %d stopped after %d of %d (stent %s --resume %d goes on): %w", rec.ID, sum.Processed, len(items), a.verb, rec.ID, err)
	case sum.Failed > 0:
		return failf(exitFailed, "%s: %d of %d %s failed (see above)", a.verb, sum.Failed, len(items), plural(len(items), "execution"))
	}
	fmt.Fprintf(out, "%s %d %s\n", a.done, sum.Done, plural(sum.Done, "execution"))
	return nil
}

// confirm asks question on stderr and reads a yes from stdin.
func confirm(c *cli.Context, question string) bool {
	fmt.Fprint(c.App.ErrWriter, question)
	line, err := bufio.NewReader(c.App.Reader).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false
	}
	ans := strings.ToLower(strings.TrimSpace(line))
	return ans == "y" || ans == "yes"
}

// isTerminalReader says whether r is a terminal to ask on (not /dev/null, a pipe or a
// file).
func isTerminalReader(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}

func matches(n int) string {
	if n == 1 {
		return "matches"
	}
	return "match"
}
