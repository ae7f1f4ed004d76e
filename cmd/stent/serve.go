package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/internal/httpapi"
	"github.com/stent-go/stent/ui"
)

// serveCommand serves the HTTP API under /api/v1 and the web view at /, optionally with
// a worker in the same process, until SIGINT/SIGTERM.
func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the HTTP API (/api/v1) and the web view (/); with --worker, run executions too",
		Description: "Starts, inspects, signals, cancels and retries executions over HTTP for callers in any\n" +
			"language (see README, HTTP API). Scripts are named relative to --scripts. Another address\n" +
			"than loopback needs a token (--token or STENT_API_TOKEN; --read-only-token may only read);\n" +
			"--tls-cert and --tls-key serve HTTPS. GET /metrics serves the engine's Prometheus metrics and\n" +
			"GET /api/v1/openapi.json the API's OpenAPI document, under the same token rules.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8233", Usage: "address to listen on (host:port)"},
			&cli.StringFlag{Name: "scripts", Usage: "directory the API's scripts are named relative to (required)"},
			&cli.StringSliceFlag{Name: "token", Usage: "bearer token that may do anything (repeatable; also STENT_API_TOKEN, comma-separated)"},
			&cli.StringSliceFlag{Name: "read-only-token", Usage: "bearer token that may only read (repeatable)"},
			&cli.StringSliceFlag{Name: "allowed-host", Usage: "a host name this server may be reached as besides localhost and IP addresses (repeatable)"},
			&cli.BoolFlag{Name: "worker", Usage: "also run a worker in this process (with the worker flags)"},
			&cli.DurationFlag{Name: "remote-heartbeat-timeout", Value: 30 * time.Second,
				Usage: "how long an activity worker polling /api/v1/activity-tasks may hold an attempt without a heartbeat (a call's heartbeat_timeout overrides it)"},
		}, append(tlsFlags(), workerFlags()...)...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return failf(exitUsage, "serve takes no arguments, got %q", c.Args().Slice())
			}
			opts, err := apiOptions(c)
			if err != nil {
				return err
			}
			addr := c.String("addr")
			if err := httpapi.CheckAddr(addr, opts); err != nil {
				return failf(exitUsage, "%v", err)
			}
			tc, err := tlsConfig(c)
			if err != nil {
				return err
			}
			eng, wopts, err := openWorker(c, func(*stent.WorkerOptions) error { return nil })
			if err != nil {
				return err
			}
			defer eng.Close()
			opts.Metrics = metricsHandler(c)
			remote := eng.NewRemoteActivities(stent.RemoteOptions{HeartbeatTimeout: c.Duration("remote-heartbeat-timeout"),
				PollInterval: wopts.PollInterval, HeartbeatInterval: wopts.HeartbeatInterval, DeadWorkerGrace: wopts.DeadWorkerGrace, LeaseDuration: wopts.LeaseDuration})
			opts.Remote = remote
			api, err := httpapi.Handler(eng, opts)
			if err != nil {
				return failf(exitUsage, "%v", err)
			}
			view, err := ui.Handler(eng, ui.Options{Token: firstOr(opts.Tokens), Logger: logger(c),
				DeadWorkerGrace: wopts.DeadWorkerGrace})
			if err != nil {
				return err
			}
			mux := http.NewServeMux()
			mux.Handle("/api/v1/", api)
			mux.Handle("/metrics", api)
			mux.Handle("/", view)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return failf(exitUsage, "listening on %s: %v", addr, err)
			}
			ctx, stop := signalContext(c)
			defer stop()
			served := make(chan error, 1)
			if c.Bool("worker") {
				go func() { served <- eng.Serve(ctx, wopts) }()
			} else {
				served <- nil
			}
			remoteDone := make(chan error, 1)
			go func() { remoteDone <- remote.Run(ctx) }()
			fmt.Fprintf(c.App.Writer, "stent serve: API at %[1]s://%[2]s/api/v1, web view at %[1]s://%[2]s/\n", scheme(tc), ln.Addr())
			err = serveHTTP(ctx, ln, mux, c.StringSlice("allowed-host"), tc, "the HTTP API")
			stop() // the worker drains when the server stops, whatever stopped it
			return errors.Join(err, <-served, <-remoteDone)
		},
	}
}

// bodySlack is what a request body may hold besides its payload (--max-payload): the
// JSON around the arguments of a dispatch.
const bodySlack = 64 << 10

// apiOptions reads the API's flags; tokens come from --token and STENT_API_TOKEN.
func apiOptions(c *cli.Context) (httpapi.Options, error) {
	o := httpapi.Options{ScriptsDir: c.String("scripts"), Tokens: c.StringSlice("token"), ReadOnlyTokens: c.StringSlice("read-only-token"),
		MaxBody: int64(c.Int("max-payload")) + bodySlack, Logger: logger(c)}
	if o.ScriptsDir == "" {
		return o, failf(exitUsage, "serve needs --scripts DIR: the directory API callers name scripts in")
	}
	if st, err := os.Stat(o.ScriptsDir); err != nil || !st.IsDir() {
		return o, failf(exitUsage, "--scripts %s is not a directory", o.ScriptsDir)
	}
	for _, t := range strings.Split(os.Getenv("STENT_API_TOKEN"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			o.Tokens = append(o.Tokens, t)
		}
	}
	return o, nil
}

func firstOr(list []string) string {
	if len(list) == 0 {
		return ""
	}
	return list[0]
}
