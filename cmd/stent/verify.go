package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name: "verify",
		Usage: "check a store's invariants in one snapshot: every running execution can go on (a task, a live lease, " +
			"or a signal or child it waits for), histories number their steps without gaps, no orphan children; exit 1 listing what fails",
		Action: func(c *cli.Context) error {
			return withEngine(c, func(eng *stent.Engine) error {
				v, ok := eng.Backend().(backend.Verifier)
				if !ok {
					return failf(exitUsage, "verify: this database cannot be verified")
				}
				rep, err := backend.Verify(c.Context, v)
				if err != nil {
					return err
				}
				if len(rep.Violations) == 0 {
					fmt.Fprintf(c.App.Writer, "ok: %d executions checked\n", rep.Executions)
					return nil
				}
				for _, viol := range rep.Violations {
					fmt.Fprintln(c.App.Writer, viol)
				}
				return failf(exitFailed, "verify: %d violations in %d executions checked", len(rep.Violations), rep.Executions)
			})
		},
	}
}
