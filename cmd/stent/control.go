package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
)

func cancelCommand() *cli.Command {
	cmd := executionCommand("cancel",
		"ask a running execution and its children to cancel: the script sees it at its current wait and may compensate (see terminate)",
		[]cli.Flag{&cli.DurationFlag{Name: "cancel-grace", Value: stent.DefaultCancelGrace,
			Usage: "how long the script may still run after the request before it is terminated"}},
		cancelExecution)
	cmd.Before = func(c *cli.Context) error {
		_, err := positiveDuration(c, "cancel-grace")
		return err
	}
	return withBatch(cmd, batchAction{verb: "cancel", done: "cancelled",
		idempotent: true, wants: func(ex *backend.Execution) bool { return !ex.Status.Terminal() },
		act: func(c *cli.Context, eng *stent.Engine, id string) error {
			return eng.Cancel(c.Context, id, stent.CancelGrace(c.Duration("cancel-grace")))
		}})
}

func cancelExecution(c *cli.Context, eng *stent.Engine, ex *backend.Execution) error {
	if ex.Status.Terminal() {
		return cancelEnded(c, ex)
	}
	if err := eng.Cancel(c.Context, ex.ID, stent.CancelGrace(c.Duration("cancel-grace"))); err != nil {
		return err
	}
	// An execution that had not started ends at once; a running script sees the
	// request at its current wait and may compensate first.
	now, err := eng.Get(c.Context, ex.ID)
	if err != nil {
		return err
	}
	switch {
	case now.Status == backend.StatusCancelled:
		fmt.Fprintf(c.App.ErrWriter, "execution %s cancelled\n", ex.ID)
	case now.Status.Terminal():
		return cancelEnded(c, now)
	default:
		fmt.Fprintf(c.App.ErrWriter, "cancellation of execution %s requested: its script may compensate, then it ends cancelled (at the latest after %s)\n",
			ex.ID, c.Duration("cancel-grace"))
	}
	return nil
}

func signalCommand() *cli.Command {
	return &cli.Command{
		Name:      "signal",
		Usage:     "send a signal (with an optional JSON payload) to a running execution",
		ArgsUsage: "ID NAME [JSON]",
		Action: func(c *cli.Context) error {
			if c.NArg() < 2 || c.NArg() > 3 {
				return failf(exitUsage, "signal takes ID NAME [JSON], got %d arguments", c.NArg())
			}
			id, name := c.Args().Get(0), c.Args().Get(1)
			payload := json.RawMessage("null")
			if c.NArg() == 3 {
				payload = json.RawMessage(c.Args().Get(2))
				if !json.Valid(payload) {
					return failf(exitUsage, "signal payload %q is not valid JSON (quote strings: '\"yes\"')", c.Args().Get(2))
				}
			}
			return withEngine(c, func(eng *stent.Engine) error {
				ex, err := eng.Get(c.Context, id)
				if err != nil {
					return notFound(id, err)
				}
				if ex.Status.Terminal() {
					return endedError(ex, fmt.Sprintf("it cannot receive signal %q", name))
				}
				if err := eng.SignalJSON(c.Context, id, name, payload); err != nil {
					// It may have ended meanwhile: say so the same way.
					if now, gerr := eng.Get(c.Context, id); gerr == nil && now.Status.Terminal() {
						return endedError(now, fmt.Sprintf("it cannot receive signal %q", name))
					}
					return err
				}
				return nil
			})
		},
	}
}

// endedError is how cancel and signal refuse an execution that already ended: a
// message naming its state, exit 1.
func endedError(ex *backend.Execution, consequence string) error {
	return failf(exitFailed, "execution %s already ended: it is %s; %s", ex.ID, ex.Status, consequence)
}

// cancelEnded answers cancel for an ended execution: one already cancelled is fine
// (cancel is idempotent), any other end is refused.
func cancelEnded(c *cli.Context, ex *backend.Execution) error {
	if ex.Status == backend.StatusCancelled {
		fmt.Fprintf(c.App.ErrWriter, "execution %s is already cancelled\n", ex.ID)
		return nil
	}
	return endedError(ex, "there is nothing to cancel")
}

// deadLetterID reads the command's one argument, a dead-letter ID.
func deadLetterID(c *cli.Context) (int64, error) {
	if c.NArg() != 1 {
		return 0, failf(exitUsage, "dlq %s takes one dead-letter ID (see `stent dlq list`)", c.Command.Name)
	}
	n, err := strconv.ParseInt(c.Args().First(), 10, 64)
	if err != nil {
		return 0, failf(exitUsage, "dead-letter ID %q is not a number (see `stent dlq list`)", c.Args().First())
	}
	return n, nil
}

// deadLetterCommand is a dlq subcommand whose one argument is a dead-letter ID: fn runs
// for that dead letter, or the command says there is no such dead letter.
func deadLetterCommand(name, usage string, fn func(c *cli.Context, eng *stent.Engine, d *backend.DeadLetter) error) *cli.Command {
	return &cli.Command{
		Name: name, Usage: usage, ArgsUsage: "ID", Flags: []cli.Flag{commandLineOnly(dbFlag)},
		Action: func(c *cli.Context) error {
			id, err := deadLetterID(c)
			if err != nil {
				return err
			}
			return withEngine(c, func(eng *stent.Engine) error {
				d, err := eng.Backend().GetDeadLetter(c.Context, id)
				if err != nil {
					return notFoundAs(err, "dead letter", c.Args().First(), "stent dlq list")
				}
				return fn(c, eng, d)
			})
		},
	}
}

func dlqCommand() *cli.Command {
	return &cli.Command{
		Name:  "dlq",
		Usage: "inspect and act on dead letters: steps that exhausted their retries and failed their execution",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list dead letters",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "status", Usage: "only this status: " + orList(backend.DeadLetterStatuses...), Value: backend.DeadLetterOpen},
					&cli.BoolFlag{Name: "all", Usage: "every dead letter, whatever its status"},
					&cli.BoolFlag{Name: "json", Usage: "print one JSON object per dead letter"},
					commandLineOnly(dbFlag)},
				Action: func(c *cli.Context) error {
					status, err := enumFlag(c, "status", backend.DeadLetterStatuses...)
					if err != nil {
						return err
					}
					if c.Bool("all") {
						status = ""
					}
					return withEngine(c, func(eng *stent.Engine) error {
						list, err := eng.DeadLetters(c.Context, status, 200)
						if err != nil {
							return err
						}
						if c.Bool("json") {
							return writeJSONLines(c, list, func(_ int, d *backend.DeadLetter) any { return newDeadLetterJSON(d) })
						}
						w := newTable(c)
						fmt.Fprintln(w, "ID\tEXECUTION\tSTEP\tACTIVITY\tSTATUS\tERROR\tAT")
						for _, d := range list {
							msg := ""
							if d.Error != nil {
								msg = shorten(d.Error.Message, 60)
							}
							fmt.Fprintf(w, "%d\t%s\t%d\t%s\t%s\t%s\t%s\n", d.ID, d.ExecutionID, d.Seq, d.Activity, d.Status, msg, d.CreatedAt.Format(time.RFC3339))
						}
						return w.Flush()
					})
				},
			},
			deadLetterCommand("show", "show one dead letter", func(c *cli.Context, eng *stent.Engine, d *backend.DeadLetter) error {
				return writeJSON(c, newDeadLetterJSON(d))
			}),
			deadLetterCommand("replay", "run the failed step again and resume its execution", func(c *cli.Context, eng *stent.Engine, d *backend.DeadLetter) error {
				if err := eng.ReplayDeadLetter(c.Context, d.ID); err != nil {
					return err
				}
				fmt.Fprintf(c.App.ErrWriter, "dead letter %d replayed; a worker resumes its execution\n", d.ID)
				return nil
			}),
			deadLetterCommand("discard", "mark a dead letter discarded", func(c *cli.Context, eng *stent.Engine, d *backend.DeadLetter) error {
				if err := eng.Backend().DiscardDeadLetter(c.Context, d.ID); err != nil {
					return err
				}
				fmt.Fprintf(c.App.ErrWriter, "dead letter %d discarded\n", d.ID)
				return nil
			}),
		},
	}
}

func cacheCommand() *cli.Command {
	return &cli.Command{
		Name:  "cache",
		Usage: "manage the activity result cache",
		Subcommands: []*cli.Command{{
			Name: "clear", Usage: "forget cached results of one activity, or of all", ArgsUsage: "[NAME]",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print a JSON object"}, commandLineOnly(dbFlag)},
			Action: func(c *cli.Context) error {
				if c.NArg() > 1 {
					return failf(exitUsage, "cache clear takes at most one activity name")
				}
				return withEngine(c, func(eng *stent.Engine) error {
					n, err := eng.ClearCache(c.Context, c.Args().First())
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return writeJSON(c, CacheClearJSON{Activity: c.Args().First(), Cleared: n})
					}
					fmt.Fprintf(c.App.ErrWriter, "cleared %d cached results\n", n)
					return nil
				})
			},
		}},
	}
}
