package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/stent-go/stent"
	"github.com/stent-go/stent/internal/httpapi"
)

// httpRoundTrips is P5 over the HTTP API: this process serves the API (and runs the
// worker), and a separate client process (`stent bench --http-client URL`) makes the
// n round trips — POST /api/v1/executions?wait=30s, which starts an execution and
// answers when it ends — timing each one.
func httpRoundTrips(ctx context.Context, cfg benchConfig, eng *stent.Engine, dir string, n int) (runStats, error) {
	api, err := httpapi.Handler(eng, httpapi.Options{ScriptsDir: dir, Logger: logger(cfg.c)})
	if err != nil {
		return runStats{}, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return runStats{}, fmt.Errorf("listening for the API: %w", err)
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	cmd := exec.CommandContext(ctx, cfg.exe, "bench", "--http-client", "http://"+ln.Addr().String(),
		"--http-n", fmt.Sprint(n), "--http-clients", fmt.Sprint(cfg.httpClients))
	cmd.Stderr = cfg.c.App.ErrWriter
	out, err := cmd.Output()
	if err != nil {
		return runStats{}, fmt.Errorf("the HTTP client process: %w", err)
	}
	var rep httpClientReport
	if err := json.Unmarshal(out, &rep); err != nil {
		return runStats{}, fmt.Errorf("the HTTP client process printed %q: %w", out, err)
	}
	st := runStats{wall: time.Duration(rep.WallNS)}
	for _, l := range rep.LatenciesNS {
		st.latencies = append(st.latencies, time.Duration(l))
	}
	return st, nil
}

// httpClientReport is what the client process prints: one JSON object.
type httpClientReport struct {
	WallNS      int64   `json:"wall_ns"`
	LatenciesNS []int64 `json:"latencies_ns"`
}

// runHTTPClient is the hidden --http-client mode: n round trips of the P5 workflow
// through the API at base, clients at a time (1: one after the other), each checked,
// then the report on stdout.
func runHTTPClient(c *cli.Context, base string, n, clients int) error {
	if n < 1 || clients < 1 {
		return failf(exitUsage, "--http-n and --http-clients must be at least 1, got %d and %d", n, clients)
	}
	ctx, stop := signalContext(c)
	defer stop()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	rep := httpClientReport{LatenciesNS: make([]int64, n)}
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	errs := make(chan error, clients)
	start := time.Now()
	for range min(clients, n) {
		go func() {
			for i := range next {
				t0 := time.Now()
				if err := httpRoundTrip(ctx, client, base); err != nil {
					errs <- fmt.Errorf("round trip %d: %w", i+1, err)
					return
				}
				rep.LatenciesNS[i] = int64(time.Since(t0))
			}
			errs <- nil
		}()
	}
	var first error
	for range min(clients, n) {
		if err := <-errs; err != nil && first == nil {
			first = err
			stop()
		}
	}
	if first != nil {
		return first
	}
	rep.WallNS = int64(time.Since(start))
	return json.NewEncoder(c.App.Writer).Encode(rep)
}

// httpRoundTrip starts one.star over the API and waits for its result, which must be
// the length of the bench payload.
func httpRoundTrip(ctx context.Context, client *http.Client, base string) error {
	var got struct {
		ID     string          `json:"id"`
		Status string          `json:"status"`
		Result json.RawMessage `json:"result"`
	}
	if err := callJSON(ctx, client, http.MethodPost, base+"/api/v1/executions?wait=30s", []byte(`{"script":"one.star"}`), http.StatusCreated, &got); err != nil {
		return fmt.Errorf("starting: %w", err)
	}
	for got.Status == "" || got.Status == "running" || got.Status == "pending" {
		if err := callJSON(ctx, client, http.MethodGet, base+"/api/v1/executions/"+got.ID+"?wait=30s", nil, http.StatusOK, &got); err != nil {
			return fmt.Errorf("waiting for %s: %w", got.ID, err)
		}
	}
	if got.Status != "completed" || string(got.Result) != fmt.Sprint(len(benchPayload)) {
		return fmt.Errorf("execution %s ended %s with %s, want completed with %d", got.ID, got.Status, got.Result, len(benchPayload))
	}
	return nil
}

func callJSON(ctx context.Context, client *http.Client, method, url string, body []byte, want int, into any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(data))
	}
	return json.Unmarshal(data, into)
}
