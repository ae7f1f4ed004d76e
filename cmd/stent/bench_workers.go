package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent"
	stentredis "github.com/stent-go/stent/backend/redis"
)

// startBenchWorker starts `stent bench --serve-worker` on dsn and waits until it serves.
// It is a worker with the bench's Go activity registered, which `stent worker` cannot
// have.
func startBenchWorker(ctx context.Context, cfg benchConfig, dsn, schema string) (*exec.Cmd, error) {
	args := []string{"bench", "--serve-worker", "--db", dsn, "--concurrency", fmt.Sprint(cfg.concurrency),
		"--log-level", flagValue(cfg.c, "log-level")}
	if schema != "" {
		args = append(args, "--pg-schema", schema)
	}
	if cfg.redis != "" {
		args = append(args, "--redis", cfg.redis)
	}
	if cfg.c.Bool("telemetry") {
		args = append(args, "--telemetry")
	}
	cmd := exec.Command(cfg.exe, args...)
	cmd.Stderr = cfg.c.App.ErrWriter
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting a bench worker: %w", err)
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("unexpected output %q", line)
		}
		ready <- err
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case err = <-ready:
	case <-time.After(30 * time.Second):
		err = errors.New("not ready after 30s")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("bench worker: %w", err)
	}
	return cmd, nil
}

func stopBenchWorkers(ws []*exec.Cmd) {
	for _, w := range ws {
		_ = w.Process.Signal(syscall.SIGTERM)
	}
	for _, w := range ws {
		done := make(chan struct{})
		go func() { _ = w.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = w.Process.Kill()
			<-done
		}
	}
}

// serveBenchWorker is the hidden --serve-worker mode: a worker with the `work`
// activity, serving until SIGINT/SIGTERM.
func serveBenchWorker(c *cli.Context, cfg benchConfig, schema string) error {
	if cfg.db == "" {
		return failf(exitUsage, "--serve-worker needs --db")
	}
	ctx, stop := signalContext(c)
	defer stop()
	if cfg.redis != "" {
		stentredis.SetDriverLogger(logger(c))
	}
	eng, err := openBenchEngine(ctx, cfg, cfg.db, schema)
	if err != nil {
		return err
	}
	defer eng.Close()
	served := make(chan error, 1)
	go func() { served <- eng.Serve(ctx, stent.WorkerOptions{Concurrency: c.Int("concurrency")}) }()
	if err := eng.WaitUntilReady(ctx); err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, "ready")
	return <-served
}
