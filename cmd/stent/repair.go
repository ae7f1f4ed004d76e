package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/engine"
)

// Fix-and-resume: replay, upgrade, retry.

func replayCommand() *cli.Command {
	return executionCommand("replay",
		"replay an execution's history against its pinned script (or --script); print compatible or the first divergence",
		[]cli.Flag{&cli.StringFlag{Name: "script", Usage: "replay against this script (and the files it loads) instead of the pinned one"}},
		func(c *cli.Context, eng *stent.Engine, ex *backend.Execution) error {
			rep, err := eng.Replay(c.Context, ex.ID, c.String("script"))
			if err != nil {
				return err
			}
			if rep.Compatible() {
				fmt.Fprintln(c.App.Writer, "compatible")
				return nil
			}
			fmt.Fprintln(c.App.Writer, "incompatible: "+rep.Divergence.String())
			return failf(exitFailed, "")
		})
}

func upgradeCommand() *cli.Command {
	return &cli.Command{
		Name:      "upgrade",
		Usage:     "re-pin executions whose history replays compatibly against --script; list the incompatible ones with their divergence",
		ArgsUsage: "[ID…]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "script", Usage: "the fixed script (required)", Required: true},
			&cli.StringFlag{Name: "status", Usage: "instead of IDs: every execution in these states (running, failed; comma-separated)"},
			&cli.StringFlag{Name: "script-hash", Usage: "with --status: only executions pinned to this bundle hash (see `stent replay`)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "check only; change nothing"},
		},
		Action: func(c *cli.Context) error {
			ids := c.Args().Slice()
			if (len(ids) == 0) == (c.String("status") == "") {
				return failf(exitUsage, "upgrade takes execution IDs or --status running,failed (one of the two)")
			}
			if c.String("script-hash") != "" && c.String("status") == "" {
				return failf(exitUsage, "--script-hash goes with --status")
			}
			return withEngine(c, func(eng *stent.Engine) error {
				if len(ids) == 0 {
					var err error
					if ids, err = selectForUpgrade(c, eng); err != nil {
						return err
					}
				}
				incompatible := 0
				for _, id := range ids {
					rep, err := eng.Upgrade(c.Context, id, c.String("script"), c.Bool("dry-run"))
					if errors.Is(err, backend.ErrNotFound) {
						return notFound(id, err)
					}
					if err != nil {
						return err
					}
					switch {
					case !rep.Compatible():
						incompatible++
						fmt.Fprintf(c.App.Writer, "%s: incompatible, left as it is: %s\n", id, rep.Divergence)
					case rep.Upgraded:
						fmt.Fprintf(c.App.Writer, "%s: upgraded %s -> %s\n", id, rep.OldHash, rep.NewHash)
					case rep.OldHash == rep.NewHash:
						fmt.Fprintf(c.App.Writer, "%s: already pinned to %s\n", id, rep.NewHash)
					default:
						fmt.Fprintf(c.App.Writer, "%s: compatible (dry run) %s -> %s\n", id, rep.OldHash, rep.NewHash)
					}
				}
				if incompatible > 0 {
					return failf(exitFailed, "%d of %d executions are incompatible with %s", incompatible, len(ids), c.String("script"))
				}
				return nil
			})
		},
	}
}

// selectForUpgrade lists the executions named by --status (and --script-hash).
func selectForUpgrade(c *cli.Context, eng *stent.Engine) ([]string, error) {
	var ids []string
	for _, st := range strings.Split(c.String("status"), ",") {
		st = strings.TrimSpace(st)
		if st != string(backend.StatusRunning) && st != string(backend.StatusFailed) {
			return nil, failf(exitUsage, "--status %q: only running and failed executions can be upgraded", st)
		}
		list, err := eng.List(c.Context, backend.ListFilter{Status: backend.Status(st), Limit: 100_000})
		if err != nil {
			return nil, err
		}
		for _, ex := range list {
			if h := c.String("script-hash"); h != "" && engine.BundleHash(ex.Bundle) != h {
				continue
			}
			ids = append(ids, ex.ID)
		}
	}
	return ids, nil
}

func retryCommand() *cli.Command {
	cmd := withBatch(retryOne(), batchAction{verb: "retry", done: "retried",
		wants: func(ex *backend.Execution) bool { return ex.Status == backend.StatusFailed },
		act:   func(c *cli.Context, eng *stent.Engine, id string) error { return eng.Retry(c.Context, id) }})
	action := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		if c.Bool("from-start") && c.IsSet("where") {
			return failf(exitUsage, "--from-start resets one execution: it does not go with --where")
		}
		return action(c)
	}
	return cmd
}

func retryOne() *cli.Command {
	return &cli.Command{
		Name:      "retry",
		Usage:     "resume a failed execution from its failure point, keeping its history",
		ArgsUsage: "ID",
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "wait", Usage: "serve in this process until the execution ends; print its result as JSON"},
			&cli.BoolFlag{Name: "from-start", Usage: "run an ended execution again from its first step in a new execution ID-r1 (stent reset ID --to-step 1)"},
		}, workerFlags()...),
		Action: func(c *cli.Context) error {
			id, err := idArg(c)
			if err != nil {
				return err
			}
			if c.Bool("from-start") {
				return resetTo(c, id, 1, "")
			}
			if !c.Bool("wait") {
				if _, _, err := workerOptions(c); err != nil {
					return err
				}
				return withExecution(c, func(eng *stent.Engine, ex *backend.Execution) error {
					if ex.Status == backend.StatusRunning {
						return failf(exitUsage, "execution %s is already running: a worker resumes it, or `stent retry %s --wait` (with its --activity flags) serves it here", id, id)
					}
					if err := eng.Retry(c.Context, id); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "%s: retried\n", id)
					return nil
				})
			}
			eng, wopts, err := openWorker(c, func(*stent.WorkerOptions) error { return nil })
			if err != nil {
				return err
			}
			defer eng.Close()
			return retryAndServe(c, eng, id, wopts)
		},
	}
}

// retryAndServe is `stent retry ID --wait`: it checks that this process (or a live
// worker) runs what the execution needs first, retries it (one that is running
// already, as an interrupted retry leaves it, is resumed as it is) and serves it in
// this process until it ends.
func retryAndServe(c *cli.Context, eng *stent.Engine, id string, wopts stent.WorkerOptions) error {
	ex, err := eng.Get(c.Context, id)
	if err != nil {
		return notFound(id, err)
	}
	if err := eng.CheckRunnable(c.Context, id); err != nil {
		return err
	}
	if ex.Status == backend.StatusRunning {
		fmt.Fprintf(c.App.ErrWriter, "execution %s is already running; serving it here until it ends\n", id)
	} else if err := eng.Retry(c.Context, id); err != nil {
		return err
	}
	ctx, stop := signalContext(c)
	defer stop()
	return serveUntilEnd(ctx, c, eng, id, wopts,
		fmt.Sprintf("interrupted; execution %s is running: `stent retry %s --wait` (with its --activity flags) or a worker resumes it", id, id))
}

func terminateCommand() *cli.Command {
	return withBatch(executionCommand("terminate",
		"end a running execution and its children at once, as cancelled, without running its script again", nil,
		terminateExecution), batchAction{verb: "terminate", done: "terminated",
		idempotent: true, wants: func(ex *backend.Execution) bool { return !ex.Status.Terminal() },
		act: func(c *cli.Context, eng *stent.Engine, id string) error { return eng.Terminate(c.Context, id) }})
}

// terminateExecution ends ex at once and confirms it; an execution that already ended
// is refused as cancel and signal refuse it (exit 1).
func terminateExecution(c *cli.Context, eng *stent.Engine, ex *backend.Execution) error {
	if ex.Status.Terminal() {
		return endedError(ex, "there is nothing to terminate")
	}
	if err := eng.Terminate(c.Context, ex.ID); err != nil {
		return err
	}
	now, err := eng.Get(c.Context, ex.ID)
	if err != nil {
		return err
	}
	if now.Status != backend.StatusCancelled { // it ended otherwise meanwhile
		return endedError(now, "there is nothing to terminate")
	}
	fmt.Fprintf(c.App.ErrWriter, "execution %s terminated\n", ex.ID)
	return nil
}
