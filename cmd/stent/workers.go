package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent"
)

func workersCommand() *cli.Command {
	return &cli.Command{
		Name:  "workers",
		Usage: "list the live workers: host, pid, queues, activities, concurrency, tasks in flight, last heartbeat",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print one JSON object per worker"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return failf(exitUsage, "workers takes no arguments, got %q", c.Args().Slice())
			}
			return withEngine(c, func(eng *stent.Engine) error {
				ws, err := eng.Workers(c.Context)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return writeJSONLines(c, ws, func(_ int, w *stent.WorkerInfo) any { return newWorkerJSON(w) })
				}
				if len(ws) == 0 {
					fmt.Fprintln(c.App.ErrWriter, "no live worker (start one with `stent worker`)")
					return nil
				}
				return printWorkers(c.App.Writer, ws)
			})
		},
	}
}

func printWorkers(out io.Writer, ws []stent.WorkerInfo) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tHOST\tPID\tQUEUES\tACTIVITIES\tCONCURRENCY\tIN FLIGHT\tLAST HEARTBEAT")
	now := time.Now()
	for _, x := range ws {
		queues := "all"
		if len(x.Queues) > 0 {
			queues = strings.Join(x.Queues, ",")
		}
		acts := "-"
		if len(x.Activities) > 0 {
			acts = strings.Join(x.Activities, ",")
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%d\t%d\t%s ago\n", x.ID, x.Host, x.PID, queues, acts, x.Concurrency,
			x.InFlight, now.Sub(x.HeartbeatAt).Round(time.Second))
	}
	return w.Flush()
}
