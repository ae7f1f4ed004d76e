package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
)

// resetHelp explains what a step is and what reset does (stent reset --help).
const resetHelp = `Starts a NEW execution, ID-r1 (or the next free ID-r2, ...), that runs the ended
execution ID again from step N: the recorded results of the steps before N are reused
(their activities, children, sleeps and signal waits do not run again) and step N
onward runs for real, on --script or on the script ID is pinned to.

A step is one entry of the history with a sequence number: a durable() activity or
child call, a sleep(), a wait_signal() or a recorded side effect (now(), uuid(),
set_status(), ...); each takes the next number from 1. N is that number, the SEQ
column of ` + "`stent history ID`" + ` and the "step N" of failure and replay messages.
N may be one past the last step: every step is reused and the script goes on from
there.

The script must replay the steps before N as they were recorded (the check
` + "`stent replay`" + ` makes); when it does not, nothing is created and the first
differing step is named (exit 1). ID must have ended (terminate a running one first).
` + "`stent status`" + ` shows the link both ways.`

func resetCommand() *cli.Command {
	return &cli.Command{
		Name:        "reset",
		Usage:       "run an ended execution again from step N in a new execution ID-r1, reusing the recorded results of the steps before N",
		Description: resetHelp,
		ArgsUsage:   "ID",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "to-step", Required: true, Usage: "run again from step `N`, the SEQ column of stent history ID"},
			&cli.StringFlag{Name: "script", Usage: "run this script (and the files it loads) instead of the pinned one"},
			&cli.BoolFlag{Name: "wait", Usage: "serve in this process until the new execution ends; print its result as JSON"},
		}, workerFlags()...),
		Action: func(c *cli.Context) error {
			id, err := idArg(c)
			if err != nil {
				return err
			}
			step, err := strconv.Atoi(c.String("to-step"))
			if err != nil || step < 1 {
				return failf(exitUsage, "--to-step %s: want a step number from 1 (the SEQ column of `stent history %s`)", c.String("to-step"), id)
			}
			return resetTo(c, id, step, c.String("script"))
		},
	}
}

// resetTo is `stent reset ID --to-step N` (and `stent retry ID --from-start`, a reset
// to step 1): usage is checked before the database opens; with --wait the new
// execution is served here until it ends.
func resetTo(c *cli.Context, id string, step int, script string) error {
	if script != "" {
		if _, err := os.Stat(script); err != nil {
			return failf(exitUsage, "--script %s: %v", script, errors.Unwrap(err))
		}
	}
	opts := stent.ResetOptions{Script: script}
	if !c.Bool("wait") {
		if _, _, err := workerOptions(c); err != nil {
			return err
		}
		return withExecution(c, func(eng *stent.Engine, ex *backend.Execution) error {
			rep, err := eng.Reset(c.Context, ex.ID, step, opts)
			if err != nil {
				return err
			}
			reported(c, rep)
			fmt.Fprintln(c.App.Writer, rep.ID)
			return nil
		})
	}
	eng, wopts, err := openWorker(c, func(*stent.WorkerOptions) error { return nil })
	if err != nil {
		return err
	}
	defer eng.Close()
	if _, err := eng.Get(c.Context, id); err != nil {
		return notFound(id, err)
	}
	rep, err := eng.Reset(c.Context, id, step, opts)
	if err != nil {
		return err
	}
	reported(c, rep)
	ctx, stop := signalContext(c)
	defer stop()
	return serveUntilEnd(ctx, c, eng, rep.ID, wopts,
		fmt.Sprintf("interrupted; execution %s is running: `stent retry %s --wait` (with its --activity flags) or a worker resumes it", rep.ID, rep.ID))
}

// reported says on stderr what a reset did.
func reported(c *cli.Context, rep *stent.ResetReport) {
	reused := fmt.Sprintf("%d recorded steps", rep.Reused)
	switch rep.Reused {
	case 0:
		reused = "no recorded step"
	case 1:
		reused = "1 recorded step"
	}
	fmt.Fprintf(c.App.ErrWriter, "execution %s reset to step %d: %s runs it again from there on %s (%s), reusing %s\n",
		rep.From, rep.Step, rep.ID, rep.Script, rep.Hash, reused)
}
