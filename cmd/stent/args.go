package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/backend"
)

// interspersed moves a command's flags before its positional arguments, so that
// `stent exec flow.star --args '[1]'` works as users expect (the flag package stops at
// the first positional argument).
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	i := 1
	// global flags
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "--" {
		out = append(out, args[i])
		if takesValue(app.Flags, args[i]) && i+1 < len(args) {
			out = append(out, args[i+1])
			i++
		}
		i++
	}
	if i >= len(args) {
		return out
	}
	cmd := app.Command(args[i])
	out = append(out, args[i])
	i++
	// Descend into subcommands (stent schedule create …, stent dlq list …) and reorder
	// the innermost one's flags.
	for cmd != nil && len(cmd.Subcommands) > 0 && i < len(args) && !strings.HasPrefix(args[i], "-") {
		sub := cmd.Command(args[i])
		if sub == nil {
			break
		}
		cmd = sub
		out = append(out, args[i])
		i++
	}
	if cmd == nil || len(cmd.Subcommands) > 0 {
		return append(out, args[i:]...)
	}
	var flags, positional []string
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			flags = append(flags, a)
			if takesValue(cmd.Flags, a) && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		positional = append(positional, a)
	}
	out = append(out, flags...)
	if len(positional) > 0 {
		out = append(out, "--")
		out = append(out, positional...)
	}
	return out
}

// takesValue reports whether arg names a flag that takes a separate value.
func takesValue(flags []cli.Flag, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			switch f.(type) {
			case *cli.BoolFlag:
				return false
			}
			return true
		}
	}
	return false
}

// tagsValue collects repeated --tag KEY=VALUE flags (a value may hold commas).
type tagsValue struct{ m map[string]string }

func (t *tagsValue) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	if t.m == nil {
		t.m = map[string]string{}
	}
	t.m[k] = v
	return nil
}

func (t *tagsValue) String() string {
	if t == nil {
		return ""
	}
	var kv []string
	for _, k := range backend.SortedTagKeys(t.m) {
		kv = append(kv, k+"="+t.m[k])
	}
	return strings.Join(kv, " ")
}

// tagFlag is --tag, made afresh for each command (its value collects the flags given).
func tagFlag() cli.Flag {
	return &cli.GenericFlag{Name: "tag", Value: &tagsValue{}, Usage: fmt.Sprintf(
		"tag the execution KEY=VALUE, to list it with --where tag:KEY=VALUE (repeatable; at most %d, each key and value at most %d bytes)",
		backend.MaxTags, backend.MaxTagBytes)}
}

// tagOptions reads --tag into a dispatch option, checking the bounds (a usage error).
func tagOptions(c *cli.Context) ([]stent.DispatchOption, error) {
	t, _ := c.Generic("tag").(*tagsValue)
	if t == nil || len(t.m) == 0 {
		return nil, nil
	}
	if err := backend.CheckTags(t.m); err != nil {
		return nil, failf(exitUsage, "--tag: %v", err)
	}
	return []stent.DispatchOption{stent.WithTags(t.m)}, nil
}
