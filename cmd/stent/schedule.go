package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent"
)

var scheduleDefFlags = []cli.Flag{
	&cli.StringFlag{Name: "cron", Usage: "cron expression: 5 fields (minute hour day month weekday) or @daily, @every 1h, …"},
	&cli.StringFlag{Name: "timezone", Usage: "IANA zone the expression is read in (default UTC)"},
	&cli.StringFlag{Name: "overlap", Usage: "while the previous tick's execution runs: skip (default), buffer_one or allow"},
	&cli.StringFlag{Name: "catchup", Usage: "how late a missed tick may still start (default 1m)"},
	&cli.StringFlag{Name: "jitter", Usage: "start each execution up to this much after its tick"},
	argsFlag, entryFlag, queueFlag,
}

// scheduleID reads the command's first argument, a schedule ID.
func scheduleID(c *cli.Context, more string) (string, error) {
	want := 1
	if more != "" {
		want = 2
	}
	if c.NArg() != want {
		usage := "stent schedule " + c.Command.Name + " ID"
		if more != "" {
			usage += " " + more
		}
		return "", failf(exitUsage, "schedule %s takes %d arguments, got %d (usage: %s)", c.Command.Name, want, c.NArg(), usage)
	}
	return c.Args().First(), nil
}

func scheduleNotFound(id string, err error) error {
	return notFoundAs(err, "schedule", id, "stent schedule list")
}

func scheduleCommand() *cli.Command {
	simple := func(name, usage, done string, fn func(c *cli.Context, eng *stent.Engine, id string) error) *cli.Command {
		return &cli.Command{Name: name, Usage: usage, ArgsUsage: "ID", Action: func(c *cli.Context) error {
			id, err := scheduleID(c, "")
			if err != nil {
				return err
			}
			return withEngine(c, func(eng *stent.Engine) error {
				if err := fn(c, eng, id); err != nil {
					return scheduleNotFound(id, err)
				}
				if done != "" {
					fmt.Fprintf(c.App.Writer, done+"\n", id)
				}
				return nil
			})
		}}
	}
	cmd := &cli.Command{
		Name:  "schedule",
		Usage: "cron schedules: each tick starts one execution of a pinned script",
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create a schedule (the script is pinned now)",
				ArgsUsage: "ID SCRIPT",
				Flags:     append([]cli.Flag{&cli.BoolFlag{Name: "paused", Usage: "create it paused"}}, scheduleDefFlags...),
				Action: func(c *cli.Context) error {
					id, err := scheduleID(c, "SCRIPT")
					if err != nil {
						return err
					}
					if c.String("cron") == "" {
						return failf(exitUsage, "schedule create needs --cron (e.g. --cron '0 */6 * * *' or --cron '@every 1h')")
					}
					if err := checkScheduleFlags(c); err != nil {
						return err
					}
					o := stent.ScheduleOptions{Cron: c.String("cron"), Timezone: c.String("timezone"),
						Overlap: c.String("overlap"), Args: json.RawMessage(c.String("args")), Entry: c.String("entry"),
						Queue: c.String("queue"), Paused: c.Bool("paused")}
					if o.Catchup, err = parseDurationFlag(c, "catchup"); err != nil {
						return err
					}
					if o.Jitter, err = parseDurationFlag(c, "jitter"); err != nil {
						return err
					}
					return withEngine(c, func(eng *stent.Engine) error {
						s, err := eng.CreateSchedule(c.Context, id, c.Args().Get(1), o)
						if err != nil {
							return err
						}
						fmt.Fprintf(c.App.Writer, "schedule %s created; next tick %s\n", s.ID, s.NextAt.UTC().Format(time.RFC3339))
						return nil
					})
				},
			},
			{
				Name:  "list",
				Usage: "list schedules",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print one JSON object per schedule"}},
				Action: func(c *cli.Context) error {
					return withEngine(c, func(eng *stent.Engine) error {
						list, err := eng.ListSchedules(c.Context)
						if err != nil {
							return err
						}
						if c.Bool("json") {
							return writeJSONLines(c, list, func(_ int, s *stent.Schedule) any { return newScheduleJSON(s, nil) })
						}
						w := newTable(c)
						fmt.Fprintln(w, "ID\tCRON\tTIMEZONE\tSCRIPT\tSTATE\tNEXT TICK\tLAST EXECUTION")
						for _, s := range list {
							state := scheduleState(s.Paused, s.PausedReason)
							fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Spec, s.Timezone, s.Bundle.Main, state,
								nextTick(s.NextAt), s.LastExecutionID)
						}
						return w.Flush()
					})
				},
			},
			{
				Name:      "show",
				Usage:     "show a schedule and its latest ticks (dispatched, buffered, skipped)",
				ArgsUsage: "ID",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action: func(c *cli.Context) error {
					id, err := scheduleID(c, "")
					if err != nil {
						return err
					}
					return withEngine(c, func(eng *stent.Engine) error {
						s, err := eng.GetSchedule(c.Context, id)
						if err != nil {
							return scheduleNotFound(id, err)
						}
						ticks, err := eng.ScheduleTicks(c.Context, id, 20)
						if err != nil {
							return err
						}
						j := newScheduleJSON(s, ticks)
						if c.Bool("json") {
							return writeJSON(c, j)
						}
						return printSchedule(c, j)
					})
				},
			},
			simple("pause", "stop a schedule's ticks", "schedule %s paused", func(c *cli.Context, eng *stent.Engine, id string) error {
				return eng.PauseSchedule(c.Context, id)
			}),
			simple("resume", "resume a paused schedule from its next tick (paused ticks are not caught up)", "schedule %s resumed",
				func(c *cli.Context, eng *stent.Engine, id string) error { return eng.ResumeSchedule(c.Context, id) }),
			simple("trigger", "start an execution of the schedule now; print its ID", "", func(c *cli.Context, eng *stent.Engine, id string) error {
				execID, err := eng.TriggerSchedule(c.Context, id)
				if err == nil {
					fmt.Fprintln(c.App.Writer, execID)
				}
				return err
			}),
			simple("delete", "delete a schedule (its executions are kept)", "schedule %s deleted", func(c *cli.Context, eng *stent.Engine, id string) error {
				return eng.DeleteSchedule(c.Context, id)
			}),
			{
				Name:      "update",
				Usage:     "change a schedule; --script re-pins it to the script's current content",
				ArgsUsage: "ID",
				Flags:     append([]cli.Flag{&cli.StringFlag{Name: "script", Usage: "re-pin to this script"}}, scheduleDefFlags...),
				Action: func(c *cli.Context) error {
					id, err := scheduleID(c, "")
					if err != nil {
						return err
					}
					if err := checkScheduleFlags(c); err != nil {
						return err
					}
					var u stent.ScheduleUpdate
					str := func(name string) *string {
						if !c.IsSet(name) {
							return nil
						}
						v := c.String(name)
						return &v
					}
					u.Cron, u.Timezone, u.Overlap, u.Entry, u.Queue, u.Script = str("cron"), str("timezone"), str("overlap"),
						str("entry"), str("queue"), str("script")
					if c.IsSet("args") {
						u.Args = json.RawMessage(c.String("args"))
					}
					for name, dst := range map[string]**time.Duration{"catchup": &u.Catchup, "jitter": &u.Jitter} {
						if c.IsSet(name) {
							d, err := parseDurationFlag(c, name)
							if err != nil {
								return err
							}
							*dst = &d
						}
					}
					return withEngine(c, func(eng *stent.Engine) error {
						s, err := eng.UpdateSchedule(c.Context, id, u)
						if err != nil {
							return scheduleNotFound(id, err)
						}
						fmt.Fprintf(c.App.Writer, "schedule %s updated; next tick %s\n", s.ID, s.NextAt.UTC().Format(time.RFC3339))
						return nil
					})
				},
			},
		},
	}
	for _, sub := range cmd.Subcommands {
		sub.Flags = append(sub.Flags, commandLineOnly(dbFlag), commandLineOnly(redisFlag), commandLineOnly(logLevelFlag))
	}
	return cmd
}

func printSchedule(c *cli.Context, j ScheduleJSON) error {
	w := newTable(c)
	state := scheduleState(j.Paused, j.PausedReason)
	fmt.Fprintf(w, "id\t%s\n", j.ID)
	fmt.Fprintf(w, "cron\t%s (%s)\n", j.Cron, j.Timezone)
	fmt.Fprintf(w, "script\t%s (entry %s)\n", j.Script, j.Entry)
	fmt.Fprintf(w, "args\t%s\n", j.Args)
	fmt.Fprintf(w, "queue\t%s\n", j.Queue)
	fmt.Fprintf(w, "overlap\t%s\n", j.Overlap)
	fmt.Fprintf(w, "catchup\t%s\n", time.Duration(j.CatchupMS)*time.Millisecond)
	if j.JitterMS > 0 {
		fmt.Fprintf(w, "jitter\t%s\n", time.Duration(j.JitterMS)*time.Millisecond)
	}
	fmt.Fprintf(w, "state\t%s\n", state)
	fmt.Fprintf(w, "next tick\t%s\n", nextTick(j.NextAt))
	if j.BufferedAt != nil {
		fmt.Fprintf(w, "buffered\t%s\n", j.BufferedAt.UTC().Format(time.RFC3339))
	}
	if j.LastExecutionID != "" {
		fmt.Fprintf(w, "last execution\t%s\n", j.LastExecutionID)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(j.Ticks) == 0 {
		return nil
	}
	fmt.Fprintln(c.App.Writer, "\nlatest ticks:")
	w = newTable(c)
	fmt.Fprintln(w, "TICK\tOUTCOME\tEXECUTION")
	for _, t := range j.Ticks {
		fmt.Fprintf(w, "%s\t%s\t%s\n", t.TickAt.Format(time.RFC3339), t.Outcome, t.ExecutionID)
	}
	return w.Flush()
}

// scheduleState is "active", "paused", or "paused: REASON" when the scheduler paused it.
func scheduleState(paused bool, reason string) string {
	switch {
	case !paused:
		return "active"
	case reason != "":
		return "paused: " + reason
	}
	return "paused"
}

// nextTick prints a schedule's next tick; "none" for the zero time of a schedule that
// never fires.
func nextTick(t time.Time) string {
	if t.Year() <= 1 {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}
