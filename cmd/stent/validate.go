package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent/internal/schedule"
)

// Usage errors exit 2 with a message and change nothing: every command's flags and
// arguments are checked before anything is opened or stored. The rules shared by the
// commands live here: how many arguments a command takes, enumerated flag values and
// durations that must be positive.

// maxArgs is how many arguments a command takes at most, read from its ArgsUsage
// ("ID NAME [JSON]" takes 3; "[PATH…]" any number, -1; none, 0), so that the help text
// and the check cannot disagree. Text in parentheses is commentary.
func maxArgs(cmd *cli.Command) int {
	words := argsWords(cmd)
	for _, w := range words {
		if strings.Contains(w, "…") || strings.Contains(w, "...") {
			return -1
		}
	}
	return len(words)
}

// checkArity refuses more arguments than the command takes.
func checkArity(c *cli.Context) error {
	n := maxArgs(c.Command)
	if n < 0 || c.NArg() <= n {
		return nil
	}
	got := make([]string, c.NArg())
	for i, a := range c.Args().Slice() {
		got[i] = fmt.Sprintf("%q", a)
	}
	name := strings.TrimPrefix(c.Command.HelpName, "stent ")
	if n == 0 {
		return failf(exitUsage, "%s takes no arguments (got %s)", name, strings.Join(got, " "))
	}
	noun := "arguments"
	if n == 1 {
		noun = "argument"
	}
	return failf(exitUsage, "%s takes at most %d %s, %s (got %d: %s)", name, n, noun, strings.Join(argsWords(c.Command), " "),
		c.NArg(), strings.Join(got, " "))
}

// argsWords is the command's ArgsUsage without its commentary, word by word.
func argsWords(cmd *cli.Command) []string {
	usage, _, _ := strings.Cut(cmd.ArgsUsage, "(")
	return strings.Fields(usage)
}

// checkArgsFirst makes every command that runs (one without subcommands) check its
// arguments before its own checks and Action.
func checkArgsFirst(cmds []*cli.Command) {
	for _, c := range cmds {
		if len(c.Subcommands) > 0 {
			checkArgsFirst(c.Subcommands)
			continue
		}
		before := c.Before
		c.Before = func(ctx *cli.Context) error {
			if err := checkArity(ctx); err != nil {
				return err
			}
			if before != nil {
				return before(ctx)
			}
			return nil
		}
	}
}

// enumFlag returns flag name's value when it is empty or one of values, else a usage
// error listing them.
func enumFlag(c *cli.Context, name string, values ...string) (string, error) {
	v := c.String(name)
	if v == "" {
		return v, nil
	}
	for _, ok := range values {
		if v == ok {
			return v, nil
		}
	}
	return "", failf(exitUsage, "--%s %q: want one of %s", name, v, strings.Join(values, ", "))
}

// orList is values joined for a help text: "a, b or c".
func orList(values ...string) string {
	if len(values) < 2 {
		return strings.Join(values, "")
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}

// positiveDuration refuses a negative or zero duration flag (a cli.DurationFlag).
func positiveDuration(c *cli.Context, name string) (time.Duration, error) {
	d := c.Duration(name)
	if d <= 0 {
		return 0, failf(exitUsage, "--%s must be a positive duration (e.g. 30s, 5m), got %s", name, d)
	}
	return d, nil
}

// checkScheduleFlags checks a schedule's --cron, --timezone and --overlap (those given)
// before the database is opened.
func checkScheduleFlags(c *cli.Context) error {
	if c.IsSet("cron") || c.IsSet("timezone") {
		spec := c.String("cron")
		if !c.IsSet("cron") {
			spec = "@daily" // --timezone alone: check the zone
		}
		if _, err := schedule.Parse(spec, c.String("timezone")); err != nil {
			return err
		}
	}
	if c.IsSet("overlap") {
		if _, err := schedule.CheckOverlap(c.String("overlap")); err != nil {
			return err
		}
	}
	return nil
}
