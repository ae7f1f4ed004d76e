package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
)

// retentionFlag is `stent worker --retention`.
var retentionFlag = &cli.StringFlag{Name: "retention",
	Usage: "delete executions that ended longer ago than this (0 keeps them forever)", Value: "30d"}

// retentionOptions applies --retention to a worker's options.
func retentionOptions(c *cli.Context, o *stent.WorkerOptions) error {
	if c.String("retention") == "0" {
		return nil
	}
	d, err := parseDurationFlag(c, "retention")
	if err != nil {
		return err
	}
	o.Retention = d
	return nil
}

// prunable are the states of the executions prune deletes.
var prunable = []string{string(backend.StatusCompleted), string(backend.StatusFailed), string(backend.StatusCancelled), string(backend.StatusTimedOut)}

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "delete ended executions (history, logs, signals, resolved dead letters, unreferenced scripts) older than an age",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "older-than", Usage: "age of the executions to delete, from their end (e.g. 7d)", Required: true},
			&cli.StringFlag{Name: "status", Usage: "only root executions that ended so: " + strings.Join(prunable, ", ")},
			&cli.BoolFlag{Name: "dry-run", Usage: "count what would be deleted; delete nothing"},
		},
		Action: func(c *cli.Context) error {
			age, err := parseDurationFlag(c, "older-than")
			if err != nil {
				return err
			}
			status, err := enumFlag(c, "status", prunable...)
			if err != nil {
				return err
			}
			o := stent.PruneOptions{OlderThan: age, Status: backend.Status(status), DryRun: c.Bool("dry-run")}
			return withEngine(c, func(eng *stent.Engine) error {
				rep, err := eng.Prune(c.Context, o)
				if err != nil {
					return err
				}
				verb := "pruned"
				if o.DryRun {
					verb = "would prune"
				}
				fmt.Fprintf(c.App.Writer, "%s %d executions (%d roots with their children): %d events, %d log lines, %d signals, %d dead letters",
					verb, rep.Executions, rep.Roots, rep.Events, rep.Logs, rep.Signals, rep.DeadLetters)
				if !o.DryRun {
					fmt.Fprintf(c.App.Writer, ", %d scripts", rep.Scripts)
				}
				fmt.Fprintln(c.App.Writer)
				return nil
			})
		},
	}
}
