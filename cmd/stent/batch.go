package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
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

// A batch acts on every execution a --where filter selects. It is resumable without a
// record of its own: each action skips the executions already past it (cancel and
// terminate take only running executions, retry only failed ones), so a batch killed
// half-way and run again acts on the rest and never twice on one execution.

// whereFlag is the filter of `list --where` and of a batch.
var whereFlag = &cli.StringFlag{Name: "where", Usage: "select executions: 'status=failed script=checkout.star since=1h tag:customer=42' (keys: " + where.Keys + ")"}

// batchAction is what a batch does to one execution it selected (see internal/batch).
type batchAction struct {
	verb, done string // "retry", "retried"
	// wants says whether ex is one the action takes (the others are skipped).
	wants func(ex *backend.Execution) bool
	act   func(c *cli.Context, eng *stent.Engine, id string) error
}

// of is a as the batch package's action, acting through eng.
func (a batchAction) of(c *cli.Context, eng *stent.Engine) batch.Action {
	return batch.Action{Verb: a.verb, Done: a.done, Wants: a.wants,
		Act: func(_ context.Context, id string) error { return a.act(c, eng, id) }}
}

// withBatch lets a command that acts on one execution ID act on all the executions
// --where selects instead, with --yes and --dry-run.
func withBatch(cmd *cli.Command, a batchAction) *cli.Command {
	cmd.ArgsUsage = "[ID]"
	cmd.Usage += "; with --where FILTER instead of an ID, on every execution it selects"
	cmd.Flags = append(cmd.Flags, whereFlag,
		&cli.BoolFlag{Name: "yes", Usage: "with --where: act without asking (needed when stdin is not a terminal)"},
		&cli.BoolFlag{Name: "dry-run", Usage: "with --where: print how many executions it would act on, and their IDs, and stop"})
	single := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		if !c.IsSet("where") {
			for _, f := range []string{"yes", "dry-run"} {
				if c.Bool(f) {
					return failf(exitUsage, "--%s goes with --where (usage: stent %s --where FILTER --%s)", f, a.verb, f)
				}
			}
			return single(c)
		}
		return runBatch(c, a)
	}
	return cmd
}

// runBatch is `stent VERB --where FILTER`: usage is checked before the database opens.
func runBatch(c *cli.Context, a batchAction) error {
	if c.NArg() > 0 {
		return failf(exitUsage, "%s takes an execution ID or --where, not both", a.verb)
	}
	if c.IsSet("wait") {
		return failf(exitUsage, "--wait serves one execution: it does not go with --where")
	}
	f, err := where.Parse(c.String("where"), time.Now())
	if err != nil {
		return failf(exitUsage, "%v", err)
	}
	dry, yes := c.Bool("dry-run"), c.Bool("yes")
	ask := !dry && !yes
	if ask && !isTerminalReader(c.App.Reader) {
		return failf(exitUsage, "%s --where acts on many executions: add --yes to confirm (stdin is not a terminal to ask on), or --dry-run to see them", a.verb)
	}
	if f.ParentID == "" {
		f.RootOnly = true // children follow their parents, as in list
	}
	return withEngine(c, func(eng *stent.Engine) error {
		ids, skipped, err := selectBatch(c, eng, f, a)
		if err != nil {
			return err
		}
		w := c.App.Writer
		fmt.Fprintf(w, "%s: %d %s", a.verb, len(ids), plural(len(ids), "execution"))
		if skipped > 0 {
			fmt.Fprintf(w, " (%d more %s the filter but cannot be %s: skipped)", skipped, matches(skipped), a.done)
		}
		fmt.Fprintln(w)
		if dry {
			for _, id := range ids {
				fmt.Fprintln(w, id)
			}
			return nil
		}
		if len(ids) == 0 {
			return nil
		}
		if ask && !confirm(c, fmt.Sprintf("%s %d %s? [y/N] ", a.verb, len(ids), plural(len(ids), "execution"))) {
			fmt.Fprintln(c.App.ErrWriter, "nothing done")
			return nil
		}
		return actOnBatch(c, eng, a, ids)
	})
}

// selectBatch lists every execution f selects, keeping those a takes.
func selectBatch(c *cli.Context, eng *stent.Engine, f backend.ListFilter, a batchAction) (ids []string, skipped int, err error) {
	return batch.Select(c.Context, eng, f, a.of(c, eng))
}

// actOnBatch acts on each execution in turn, reporting each failure without stopping
// and progress on a terminal; exit 1 when any failed.
func actOnBatch(c *cli.Context, eng *stent.Engine, a batchAction, ids []string) error {
	tty := isTerminal(c.App.ErrWriter)
	sum, err := batch.Run(c.Context, eng, a.of(c, eng), ids, batch.Options{Each: func(i int, r batch.Result) {
		switch {
		case r.Outcome == batch.Failed && r.Acted:
			fmt.Fprintf(c.App.ErrWriter, "%s: %s failed: %v\n", r.ID, a.verb, r.Err)
		case r.Outcome == batch.Failed:
			fmt.Fprintf(c.App.ErrWriter, "%s: %v\n", r.ID, r.Err)
		case r.Outcome == batch.Skipped:
			fmt.Fprintf(c.App.Writer, "%s: skipped (now %s)\n", r.ID, r.Status)
		default:
			fmt.Fprintf(c.App.Writer, "%s: %s\n", r.ID, a.done)
		}
		if tty {
			fmt.Fprintf(c.App.ErrWriter, "\r%d/%d", i+1, len(ids))
		}
	}})
	if err != nil {
		return failf(exitCanceled, "interrupted after %d of %d: run the same command again to act on the rest", sum.Processed, len(ids))
	}
	if tty {
		fmt.Fprintln(c.App.ErrWriter)
	}
	if sum.Failed > 0 {
		return failf(exitFailed, "%s: %d of %d %s failed (see above)", a.verb, sum.Failed, len(ids), plural(len(ids), "execution"))
	}
	fmt.Fprintf(c.App.Writer, "%s %d %s\n", a.done, len(ids), plural(len(ids), "execution"))
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
