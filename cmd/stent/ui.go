package main

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/ui"
)

// uiCommand serves the web view of the database until SIGINT/SIGTERM.
func uiCommand() *cli.Command {
	return &cli.Command{
		Name:  "ui",
		Usage: "serve the web view of executions (loopback only unless given credentials)",
		Description: "Serves the executions, their timelines, sources and dead letters, the workers and the\n" +
			"schedules, with cancel, signal, retry, reset from a step, batch retry/cancel/terminate of the\n" +
			"listed executions (filtered with the --where language), dead-letter and schedule actions.\n" +
			"Another address than loopback needs --auth user:pass or a bearer token in STENT_UI_TOKEN (a\n" +
			"browser sends it as the password of any user).",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8233", Usage: "address to listen on (host:port)"},
			&cli.StringFlag{Name: "auth", Usage: "require HTTP Basic authentication as user:pass"},
			&cli.BoolFlag{Name: "read-only", Usage: "hide and refuse every action"},
		}, tlsFlags()...),
		Action: func(c *cli.Context) error {
			opts := ui.Options{ReadOnly: c.Bool("read-only"), Token: os.Getenv("STENT_UI_TOKEN"), Logger: logger(c)}
			if a := c.String("auth"); a != "" {
				user, pass, ok := strings.Cut(a, ":")
				if !ok || user == "" || pass == "" {
					return failf(exitUsage, "--auth wants user:pass (both non-empty)")
				}
				opts.Username, opts.Password = user, pass
			}
			addr := c.String("addr")
			if err := ui.CheckAddr(addr, opts); err != nil {
				return failf(exitUsage, "%v", err)
			}
			tc, err := tlsConfig(c)
			if err != nil {
				return err
			}
			ctx, stop := signalContext(c)
			defer stop()
			return withEngine(c, func(eng *stent.Engine) error {
				h, err := ui.Handler(eng, opts)
				if err != nil {
					return err
				}
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					return fmt.Errorf("listening on %s: %w", addr, err)
				}
				fmt.Fprintf(c.App.Writer, "stent ui: serving on %s://%s/\n", scheme(tc), ln.Addr())
				return serveHTTP(ctx, ln, h, nil, tc, "the web view")
			})
		},
	}
}
