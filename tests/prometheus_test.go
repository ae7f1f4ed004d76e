package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// prometheusBin finds the Prometheus server: missing, the test is skipped, or fails in
// CI, where .ci/run installs it.
func prometheusBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prometheus is required in CI (Debian package prometheus; .ci/run installs it)")
		}
		t.Skip("prometheus is not installed (apt-get install prometheus); skipping the Prometheus end-to-end test")
	}
	return p
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func httpGet(u string) (string, error) {
	resp, err := http.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("%s: %s", u, resp.Status)
	}
	return string(b), err
}

// TestPrometheusScrapesAWorker runs `stent worker --metrics-addr`, a real Prometheus
// server scraping it, and three executions; PromQL over Prometheus's HTTP API then
// counts the completed executions.
func TestPrometheusScrapesAWorker(t *testing.T) {
	t.Parallel()
	prom := prometheusBin(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "flow.star"), "def main(x):\n    return durable('echo', x)\n", 0o644)
	writeFile(t, filepath.Join(dir, "echo.sh"), "#!/bin/sh\ncat | tr -d '[]'\n", 0o755)

	metricsAddr := freePort(t)
	startStent(t, dir, nil, "worker", "--metrics-addr", metricsAddr, "--poll", "100ms", "--activity", "echo=./echo.sh")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := httpGet("http://" + metricsAddr + "/metrics"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the worker never served /metrics: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	promAddr := freePort(t)
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: stent\n    static_configs:\n      - targets: ['%s']\n", metricsAddr)
	writeFile(t, filepath.Join(dir, "prometheus.yml"), cfg, 0o644)
	cmd := exec.Command(prom, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+promAddr)
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting prometheus: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })

	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("run-%d", i)
		if r := stent(t, dir, "dispatch", "flow.star", "--id", id, "--args", fmt.Sprintf("[%d]", i)); r.code != 0 {
			t.Fatalf("dispatch: %s", r.stderr)
		}
		if r := stent(t, dir, "wait", id); r.code != 0 || strings.TrimSpace(r.stdout) != fmt.Sprint(i) {
			t.Fatalf("wait %s: exit %d %q %q", id, r.code, r.stdout, r.stderr)
		}
	}

	query := `sum(stent_executions_ended_total{status="completed"})`
	u := "http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(query)
	var last string
	deadline = time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		body, err := httpGet(u)
		last = fmt.Sprint(body, err)
		if err == nil {
			var r struct {
				Status string
				Data   struct {
					Result []struct {
						Value [2]any
					}
				}
			}
			if json.Unmarshal([]byte(body), &r) == nil && r.Status == "success" && len(r.Data.Result) == 1 && r.Data.Result[0].Value[1] == "3" {
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	logs, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
	t.Fatalf("PromQL %s never returned 3; last answer: %s\nprometheus log:\n%s", query, last, logs)
}
