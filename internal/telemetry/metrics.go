package telemetry

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/stent-go/stent/backend"
)

// Wake-up paths, as the stent.wakeups metric names them.
const (
	WakeInProcess = iota // a task made runnable or due in this process
	WakeNotify           // PostgreSQL LISTEN/NOTIFY
	WakeRedis            // Redis pub/sub (any backend.Notifier)
	WakePoll             // the safety-net poll timer
	wakePaths
)

var wakePathNames = [wakePaths]string{"in_process", "notify", "redis", "poll"}

// durationBuckets are histogram bounds in seconds, from a millisecond to five minutes.
var durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

// metrics holds an engine's instruments. Counts on the hottest paths (live-cache
// lookups, wake-ups) are plain atomics read at collection time.
type metrics struct {
	executionsStarted metric.Int64Counter
	executionsEnded   metric.Int64Counter
	activityDuration  metric.Float64Histogram
	workflowTaskDur   metric.Float64Histogram
	scheduleToStart   metric.Float64Histogram
	leasesReclaimed   metric.Int64Counter
	deadLetters       metric.Int64Counter

	cacheHits, cacheMisses atomic.Int64
	wakeups                [wakePaths]atomic.Int64

	// attrSets keeps the attribute sets of the per-task instruments by their values:
	// building a set sorts and allocates, and there are few distinct ones.
	attrMu   sync.RWMutex
	attrSets map[attrPairs]*measureOpts
	// The sets used last by the hottest call sites: schedule-to-start of workflow and
	// activity tasks (alternating on a sequential workflow's path), activity attempts.
	lastSchedule [2]atomic.Pointer[measureOpts]
	lastAttempt  atomic.Pointer[measureOpts]
}

// attrPairs is two key=value pairs of a measurement.
type attrPairs struct{ k1, v1, k2, v2 string }

// measureOpts is an attribute set as the option lists that Add and Record take, built
// once: passing a list spares the instrument call an allocation.
type measureOpts struct {
	pairs attrPairs // the values, for attrs' sets
	add   []metric.AddOption
	rec   []metric.RecordOption
	obs   []metric.ObserveOption

	// attempts counts activity attempts with these attributes (stent.activity.attempts,
	// observed at collection time: a plain atomic on the hot path).
	attempts atomic.Int64
}

func newMeasureOpts(kvs ...attribute.KeyValue) *measureOpts {
	o := metric.WithAttributeSet(attribute.NewSet(kvs...))
	return &measureOpts{add: []metric.AddOption{o}, rec: []metric.RecordOption{o}, obs: []metric.ObserveOption{o}}
}

// attrs returns the options for key=value pairs (k1, v1, k2, v2), cached. last, when
// given, holds the set this call site used last, checked first without a lock.
func (m *metrics) attrs(last *atomic.Pointer[measureOpts], k1, v1, k2, v2 string) *measureOpts {
	key := attrPairs{k1, v1, k2, v2}
	if last != nil {
		if o := last.Load(); o != nil && o.pairs == key {
			return o
		}
	}
	m.attrMu.RLock()
	o := m.attrSets[key]
	m.attrMu.RUnlock()
	if o == nil {
		m.attrMu.Lock()
		if o = m.attrSets[key]; o == nil {
			o = newMeasureOpts(attribute.String(k1, v1), attribute.String(k2, v2))
			o.pairs = key
			m.attrSets[key] = o
		}
		m.attrMu.Unlock()
	}
	if last != nil {
		last.Store(o)
	}
	return o
}

func newMetrics(m metric.Meter, src Sources) (*metrics, error) {
	var (
		x   = metrics{attrSets: map[attrPairs]*measureOpts{}}
		err error
	)
	check := func(e error) {
		if err == nil && e != nil {
			err = e
		}
	}
	newCounter := func(name, desc string) metric.Int64Counter {
		c, e := m.Int64Counter(name, metric.WithDescription(desc))
		check(e)
		return c
	}
	seconds := func(name, desc string) metric.Float64Histogram {
		h, e := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(durationBuckets...), metric.WithDescription(desc))
		check(e)
		return h
	}
	observed := func(name, desc string) metric.Int64ObservableCounter {
		c, e := m.Int64ObservableCounter(name, metric.WithDescription(desc))
		check(e)
		return c
	}
	gauge := func(name, desc string) metric.Int64ObservableGauge {
		g, e := m.Int64ObservableGauge(name, metric.WithDescription(desc))
		check(e)
		return g
	}
	x.executionsStarted = newCounter("stent.executions.started", "Executions created (dispatched, or started by a parent), by script.")
	x.executionsEnded = newCounter("stent.executions.ended", "Executions that ended, by script and status.")
	x.activityDuration = seconds("stent.activity.duration", "How long activity attempts ran, by activity and outcome.")
	x.workflowTaskDur = seconds("stent.workflow_task.duration", "How long workflow tasks took (history read, script step, commit), by outcome.")
	x.scheduleToStart = seconds("stent.task.schedule_to_start", "Time from a task becoming due to a worker starting it, by kind and queue.")
	x.leasesReclaimed = newCounter("stent.leases.reclaimed", "Tasks taken back from workers whose lease expired or that stopped sending heartbeats.")
	x.deadLetters = newCounter("stent.dead_letters", "Dead letters recorded (activities that exhausted their retries and failed their execution), by activity.")
	attempts := observed("stent.activity.attempts", "Activity attempts run, by activity and outcome (completed or failed).")
	hits := observed("stent.live_cache.hits", "Workflow tasks that found their execution's script parked in memory.")
	misses := observed("stent.live_cache.misses", "Workflow tasks that had to rebuild their execution's script (replay).")
	evictions := observed("stent.live_cache.evictions", "Parked scripts closed to keep the live cache within its bound.")
	size := gauge("stent.live_cache.size", "Scripts parked in memory.")
	wakeups := observed("stent.wakeups", "Worker wake-ups, by path: in_process, notify (LISTEN/NOTIFY), redis, poll.")
	pending := gauge("stent.tasks.pending", "Tasks waiting to be claimed (due or not), by kind and queue.")
	if err != nil {
		return nil, err
	}
	wakeAttrs := make([]metric.ObserveOption, wakePaths)
	for i, name := range wakePathNames {
		wakeAttrs[i] = metric.WithAttributes(attribute.String("path", name))
	}
	counter, canCount := src.Backend.(backend.TaskCounter)
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		o.ObserveInt64(hits, x.cacheHits.Load())
		o.ObserveInt64(misses, x.cacheMisses.Load())
		if src.Cache != nil {
			evicted, parked := src.Cache()
			o.ObserveInt64(evictions, evicted)
			o.ObserveInt64(size, int64(parked))
		}
		for i := range wakePaths {
			o.ObserveInt64(wakeups, x.wakeups[i].Load(), wakeAttrs[i])
		}
		x.attrMu.RLock()
		for k, a := range x.attrSets {
			if k.k1 == "activity" {
				o.ObserveInt64(attempts, a.attempts.Load(), a.obs...)
			}
		}
		x.attrMu.RUnlock()
		if !canCount {
			return nil
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		counts, err := counter.CountPendingTasks(cctx)
		if err != nil {
			return fmt.Errorf("counting pending tasks: %w", err)
		}
		for _, c := range counts {
			o.ObserveInt64(pending, int64(c.Count), metric.WithAttributes(attribute.String("kind", string(c.Kind)), attribute.String("queue", c.Queue)))
		}
		return nil
	}, attempts, hits, misses, evictions, size, wakeups, pending)
	if err != nil {
		return nil, fmt.Errorf("registering metric callbacks: %w", err)
	}
	return &x, nil
}

func scriptAttr(script string) metric.AddOption {
	return metric.WithAttributes(attribute.String("script", script))
}

func (m *metrics) executionEnded(script string, status backend.Status, dl *backend.DeadLetter) {
	ctx := context.Background()
	m.executionsEnded.Add(ctx, 1, m.attrs(nil, "script", script, "status", string(status)).add...)
	if dl != nil {
		m.deadLetters.Add(ctx, 1, metric.WithAttributes(attribute.String("activity", dl.Activity)))
	}
}

func (m *metrics) activityAttempted(name, outcome string, d time.Duration) {
	attrs := m.attrs(&m.lastAttempt, "activity", name, "outcome", outcome)
	ctx := context.Background()
	attrs.attempts.Add(1)
	m.activityDuration.Record(ctx, d.Seconds(), attrs.rec...)
}

var (
	outcomeOK    = newMeasureOpts(attribute.String("outcome", "ok"))
	outcomeError = newMeasureOpts(attribute.String("outcome", "error"))
)

func (m *metrics) workflowTaskDone(d time.Duration, outcome string) {
	attrs := outcomeOK
	if outcome != "ok" {
		attrs = outcomeError
	}
	m.workflowTaskDur.Record(context.Background(), d.Seconds(), attrs.rec...)
}

// ---- one-line hooks for the engine ----

// TaskStarted records a claimed task's schedule-to-start latency.
func (t *Telemetry) TaskStarted(task backend.Task) {
	if t.metrics == nil {
		return
	}
	d := time.Since(task.RunAt)
	if d < 0 {
		d = 0
	}
	last := &t.metrics.lastSchedule[0]
	if task.Kind == backend.TaskActivity {
		last = &t.metrics.lastSchedule[1]
	}
	t.metrics.scheduleToStart.Record(context.Background(), d.Seconds(), t.metrics.attrs(last, "kind", string(task.Kind), "queue", task.Queue).rec...)
}

// ChildrenStarted counts executions a workflow task created.
func (t *Telemetry) ChildrenStarted(children []backend.NewExecution) {
	if t.metrics == nil {
		return
	}
	for _, c := range children {
		t.metrics.executionsStarted.Add(context.Background(), 1, scriptAttr(c.Bundle.Main))
	}
}

// Reclaimed counts tasks taken back from stopped workers.
func (t *Telemetry) Reclaimed(n int) {
	if t.metrics != nil && n > 0 {
		t.metrics.leasesReclaimed.Add(context.Background(), int64(n))
	}
}

// CacheLookup counts a live-cache hit or miss.
func (t *Telemetry) CacheLookup(hit bool) {
	if t.metrics == nil {
		return
	}
	if hit {
		t.metrics.cacheHits.Add(1)
	} else {
		t.metrics.cacheMisses.Add(1)
	}
}

// Woken counts a wake-up by path.
func (t *Telemetry) Woken(path int) {
	if t.metrics != nil {
		t.metrics.wakeups[path].Add(1)
	}
}
