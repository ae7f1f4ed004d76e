package engine

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/stent-go/stent/activities"
	"github.com/stent-go/stent/internal/telemetry"
)

// scrape fetches url and parses it with the Prometheus text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return fams
}

// sample sums the samples of family name whose labels include want ("k=v" pairs);
// histograms contribute their sample count.
func sample(fams map[string]*dto.MetricFamily, name string, want ...string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	var sum float64
	found := false
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			if labels[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum, found
}

func TestMetricsAfterAKnownWorkload(t *testing.T) {
	t.Parallel()
	mp, handler, err := telemetry.NewPrometheusMeterProvider()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)

	var flaky atomic.Int32
	f := newFixtureWith(t, filepath.Join(t.TempDir(), "stent.db"), func(e *Engine) {
		registerBasics(e)
		_ = e.Register("flaky", func(ctx context.Context) (string, error) {
			if flaky.Add(1) == 1 {
				return "", &activities.Error{Type: "Flaky", Message: "first attempt fails"}
			}
			return "ok", nil
		})
	}, WithMeterProvider(mp))
	ctx := context.Background()

	fanout := f.script(t, "def main(xs):\n    return gather([start('upper', x) for x in xs])\n")
	mustValue(t, f.runScript(t, fanout, []string{"a", "b"}), `["A","B"]`)
	mustValue(t, f.runScript(t, fanout, []string{"c", "d", "e"}), `["C","D","E"]`)
	retry := f.script(t, "def main():\n    return durable('flaky', retry=retry_policy(max_attempts=2, initial_delay='10ms'))\n")
	mustValue(t, f.runScript(t, retry), `"ok"`)
	failing := f.script(t, "def main():\n    return durable('boom', 'no', retry=retry_policy(max_attempts=1))\n")
	if res := f.runScript(t, failing); res.Err() == nil {
		t.Fatal("the boom execution should fail")
	}
	children := f.script(t, "def c(x):\n    return x\n\ndef main():\n    return [durable(c, 1), durable(c, 2)]\n")
	mustValue(t, f.runScript(t, children), `[1,2]`)
	if _, err := f.eng.Dispatch(ctx, fanout, []any{[]string{"later"}}, Delay(time.Hour)); err != nil {
		t.Fatal(err)
	}

	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"stent_executions_started_total", nil, 8}, // 5 runs + 2 children + 1 delayed
		{"stent_executions_started_total", []string{"script=" + fanout}, 3},
		{"stent_executions_ended_total", []string{"status=completed"}, 6},
		{"stent_executions_ended_total", []string{"status=failed", "script=" + failing}, 1},
		{"stent_activity_attempts_total", []string{"activity=upper", "outcome=completed"}, 5},
		{"stent_activity_attempts_total", []string{"activity=flaky", "outcome=failed"}, 1},
		{"stent_activity_attempts_total", []string{"activity=flaky", "outcome=completed"}, 1},
		{"stent_activity_attempts_total", []string{"activity=boom", "outcome=failed"}, 1},
		{"stent_activity_duration_seconds", nil, 8},
		{"stent_activity_duration_seconds", []string{"activity=upper"}, 5},
		{"stent_dead_letters_total", []string{"activity=boom"}, 1},
		{"stent_tasks_pending", []string{"kind=workflow", "queue=default"}, 1},
	}
	// A run's WaitFor may return before the worker that ended one of its children has
	// counted that end: scrape until the counters settle (a generous deadline for a
	// loaded machine), then report what differs.
	var (
		fams  map[string]*dto.MetricFamily
		names []string
		wrong []string
	)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		fams, wrong = scrape(t, srv.URL), nil
		for _, c := range checks {
			got, ok := sample(fams, c.name, c.labels...)
			if !ok || got != c.want {
				wrong = append(wrong, fmt.Sprintf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want))
			}
		}
		if len(wrong) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("metric families: %s", strings.Join(names, " "))
	for _, w := range wrong {
		t.Error(w)
	}
	for _, name := range []string{"stent_workflow_task_duration_seconds", "stent_task_schedule_to_start_seconds", "stent_live_cache_hits_total", "stent_live_cache_misses_total"} {
		if got, _ := sample(fams, name); got < 1 {
			t.Errorf("%s = %v, want at least 1", name, got)
		}
	}
	if got, _ := sample(fams, "stent_wakeups_total", "path=in_process"); got < 1 {
		t.Errorf("stent_wakeups_total{path=in_process} = %v, want at least 1", got)
	}
	for _, name := range []string{"stent_live_cache_evictions_total", "stent_live_cache_size"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	if t.Failed() {
		var b strings.Builder
		for _, n := range names {
			fmt.Fprintf(&b, "%s\n", fams[n].String())
		}
		t.Log(b.String())
	}
}

// runScript runs the script at path to its end.
func (f *fixture) runScript(t *testing.T, path string, args ...any) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	res, err := f.eng.Run(ctx, path, args)
	if res == nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}
