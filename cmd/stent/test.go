package main

import (
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent/tests/stenttest"
)

// testCommand runs golden tests (txtar files, see package tests/stenttest) on private
// in-memory engines in virtual time; it never touches --db.
func testCommand() *cli.Command {
	return &cli.Command{
		Name:      "test",
		Usage:     "run golden tests: workflows with mocked activities against their expected result and history",
		ArgsUsage: "[PATH…] (files or directories of *.txtar; default: the current directory)",
		Description: "Each golden test runs twice: uninterrupted, and replayed from its history after every event;\n" +
			"both must match the expectations in the file. --update rewrites the expectations of the files\n" +
			"that do not match. Exit status: 0 when all pass, 1 when some fail, 2 on usage errors.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "update", Usage: "rewrite the expectations of the files that do not match"},
			&cli.StringFlag{Name: "run", Usage: "run only the files whose path (without .txtar) matches this regular expression"},
		},
		Action: func(c *cli.Context) error {
			paths := c.Args().Slice()
			if len(paths) == 0 {
				paths = []string{"."}
			}
			var filter *regexp.Regexp
			if expr := c.String("run"); expr != "" {
				re, err := regexp.Compile(expr)
				if err != nil {
					return failf(exitUsage, "--run: %v", err)
				}
				filter = re
			}
			files, err := stenttest.FindGoldenFiles(paths, filter)
			if err != nil {
				return failf(exitUsage, "%v", err)
			}
			if len(files) == 0 {
				return failf(exitUsage, "no golden test files (*.txtar) in %s", strings.Join(paths, " "))
			}
			return runGoldenFiles(c, files, c.Bool("update"))
		},
	}
}

// runGoldenFiles runs the files in parallel and reports them in order.
func runGoldenFiles(c *cli.Context, files []string, update bool) error {
	type outcome struct {
		res *stenttest.GoldenResult
		err error
	}
	outcomes := make([]chan outcome, len(files))
	sem := make(chan struct{}, max(runtime.GOMAXPROCS(0), 2))
	var wg sync.WaitGroup
	for i, f := range files {
		outcomes[i] = make(chan outcome, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res, err := stenttest.RunGoldenFile(c.Context, f, stenttest.Update(update))
			outcomes[i] <- outcome{res, err}
		}()
	}
	began := time.Now()
	w := c.App.Writer
	failed, updated := 0, 0
	for i, f := range files {
		o := <-outcomes[i]
		switch {
		case o.err != nil:
			failed++
			fmt.Fprintf(w, "FAIL    %s\n%s\n", f, indentLines(o.err.Error()))
		case !o.res.Passed():
			failed++
			fmt.Fprintf(w, "FAIL    %s (%s)\n", f, o.res.Elapsed.Round(time.Millisecond))
			for _, msg := range o.res.Failures {
				fmt.Fprintln(w, indentLines(msg))
			}
		case o.res.Updated:
			updated++
			fmt.Fprintf(w, "updated %s (%s)\n", f, o.res.Elapsed.Round(time.Millisecond))
		default:
			fmt.Fprintf(w, "ok      %s (%s)\n", f, o.res.Elapsed.Round(time.Millisecond))
		}
	}
	wg.Wait()
	summary := fmt.Sprintf("%d golden test files in %s", len(files), time.Since(began).Round(time.Millisecond))
	if updated > 0 {
		summary += fmt.Sprintf(", %d updated", updated)
	}
	if failed > 0 {
		fmt.Fprintf(w, "FAIL: %d of %s\n", failed, summary)
		return failf(exitFailed, "")
	}
	fmt.Fprintf(w, "PASS: %s\n", summary)
	return nil
}

func indentLines(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "    " + l
		}
	}
	return strings.Join(lines, "\n")
}
