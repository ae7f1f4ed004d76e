package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/stent-go/stent/backend"
)

// testURL returns the Redis named by STENT_TEST_REDIS. Unset: the test is skipped, or
// fails in CI where the variable is required.
func testURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("STENT_TEST_REDIS")
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("STENT_TEST_REDIS is required in CI (e.g. redis://127.0.0.1:6379/0)")
		}
		t.Skip("STENT_TEST_REDIS not set (e.g. redis://127.0.0.1:6379/0); skipping Redis tests")
	}
	return u
}

// uniquePrefix keeps tests sharing one Redis apart.
func uniquePrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "stent-test-" + hex.EncodeToString(b[:]) + ":"
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func open(t *testing.T, url string, opts ...Option) *Notifier {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := Open(ctx, url, append([]Option{WithLogger(quietLogger())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// recorder collects what a Listen call delivers.
type recorder struct {
	mu    sync.Mutex
	notes []backend.Notification
	ch    chan backend.Notification
}

func newRecorder() *recorder { return &recorder{ch: make(chan backend.Notification, 100000)} }

func (r *recorder) fn(n backend.Notification) {
	r.mu.Lock()
	r.notes = append(r.notes, n)
	r.mu.Unlock()
	r.ch <- n
}

func (r *recorder) count(kind string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := 0
	for _, n := range r.notes {
		if n.Kind == kind && !strings.HasPrefix(n.ExecutionID, "probe-") {
			c++
		}
	}
	return c
}

// wait returns the first notification matching ok, failing the test after timeout.
func (r *recorder) wait(t *testing.T, timeout time.Duration, ok func(backend.Notification) bool) backend.Notification {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case n := <-r.ch:
			if ok(n) {
				return n
			}
		case <-deadline:
			t.Fatalf("no matching notification within %s", timeout)
			return backend.Notification{}
		}
	}
}

// listen runs n.Listen in the background until the test ends, and waits until the
// subscription is live (a probe message comes through).
func listen(t *testing.T, n *Notifier, url string) *recorder {
	t.Helper()
	r := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Listen(ctx, r.fn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Listen: %v", err)
		}
	})
	probe(t, n, url, r)
	return r
}

// probe publishes "finished" notifications of a probe ID straight to Redis until one
// arrives, proving the subscription is live.
func probe(t *testing.T, n *Notifier, url string, r *recorder) {
	t.Helper()
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opts)
	defer c.Close()
	id := "probe-" + uniquePrefix()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.Publish(context.Background(), n.finishCh, id)
		timer := time.NewTimer(50 * time.Millisecond)
	drain:
		for {
			select {
			case got := <-r.ch:
				if got.ExecutionID == id {
					timer.Stop()
					return
				}
			case <-timer.C:
				break drain
			}
		}
	}
	t.Fatal("the subscription never delivered a probe message")
}

func TestPublishListenAcrossNotifiers(t *testing.T) {
	t.Parallel()
	url := testURL(t)
	prefix := uniquePrefix()
	pub := open(t, url, WithPrefix(prefix))
	sub := open(t, url, WithPrefix(prefix))
	r := listen(t, sub, url)

	start := time.Now()
	pub.Publish(backend.Notification{Kind: "task", Queue: "emails"})
	got := r.wait(t, 5*time.Second, func(n backend.Notification) bool { return n.Kind == "task" })
	if got.Queue != "emails" {
		t.Errorf("task notification for queue %q, want emails", got.Queue)
	}
	t.Logf("task notification took %s", time.Since(start))

	pub.Publish(backend.Notification{Kind: "task"})
	got = r.wait(t, 5*time.Second, func(n backend.Notification) bool { return n.Kind == "task" })
	if got.Queue != backend.DefaultQueue {
		t.Errorf("task notification without a queue arrived for %q, want %q", got.Queue, backend.DefaultQueue)
	}

	want := map[string]bool{}
	for i := range 50 {
		id := fmt.Sprintf("exec-%d", i)
		want[id] = true
		pub.Publish(backend.Notification{Kind: "finished", ExecutionID: id})
	}
	for len(want) > 0 {
		n := r.wait(t, 5*time.Second, func(n backend.Notification) bool { return n.Kind == "finished" })
		delete(want, n.ExecutionID)
	}

	// A notifier hears itself too, and other prefixes are not heard.
	self := listen(t, pub, url)
	pub.Publish(backend.Notification{Kind: "finished", ExecutionID: "own"})
	self.wait(t, 5*time.Second, func(n backend.Notification) bool { return n.ExecutionID == "own" })

	other := open(t, url, WithPrefix(uniquePrefix()))
	other.Publish(backend.Notification{Kind: "finished", ExecutionID: "elsewhere"})
	pub.Publish(backend.Notification{Kind: "finished", ExecutionID: "marker"})
	r.wait(t, 5*time.Second, func(n backend.Notification) bool {
		if n.ExecutionID == "elsewhere" {
			t.Error("a notification of another prefix was delivered")
		}
		return n.ExecutionID == "marker"
	})
}

func TestBurstIsCoalesced(t *testing.T) {
	t.Parallel()
	url := testURL(t)
	prefix := uniquePrefix()
	pub := open(t, url, WithPrefix(prefix))
	sub := open(t, url, WithPrefix(prefix))
	r := listen(t, sub, url)

	start := time.Now()
	for range 1000 {
		pub.Publish(backend.Notification{Kind: "task", Queue: "default"})
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("1,000 Publish calls took %s; Publish must not wait for Redis", d)
	}
	// 100 finished notifications must all arrive, in few messages.
	for i := range 100 {
		pub.Publish(backend.Notification{Kind: "finished", ExecutionID: fmt.Sprintf("e%d", i)})
	}
	pub.Publish(backend.Notification{Kind: "finished", ExecutionID: "last"})
	r.wait(t, 5*time.Second, func(n backend.Notification) bool { return n.ExecutionID == "last" })
	time.Sleep(100 * time.Millisecond)
	tasks, finished := r.count("task"), r.count("finished")
	t.Logf("1,000 task publishes arrived as %d notifications; %d finished", tasks, finished)
	if tasks < 1 || tasks > 10 {
		t.Errorf("1,000 task publishes for one queue arrived as %d notifications, want 1..10", tasks)
	}
	if finished != 101 {
		t.Errorf("%d finished notifications arrived, want all 101", finished)
	}
}

func TestBufferOverflowDropsWithoutBlocking(t *testing.T) {
	t.Parallel()
	url := testURL(t)
	n := open(t, url, WithPrefix(uniquePrefix()), WithBufferSize(10), WithBatchWindow(time.Hour))
	// The first publish goes out; then the window holds everything else back.
	start := time.Now()
	for range 100000 {
		n.Publish(backend.Notification{Kind: "finished", ExecutionID: "x"})
	}
	// ~60ns each on a quiet machine; generous for -race on a busy one.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("100,000 publishes into a full buffer took %s", d)
	}
	n.mu.Lock()
	waiting := len(n.finished) + len(n.queues)
	n.mu.Unlock()
	if waiting > 10 {
		t.Errorf("%d notifications waiting, the buffer holds 10", waiting)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, err := Open(ctx, "http://user:s3cret@127.0.0.1:6379/0")
	if err == nil || !strings.Contains(err.Error(), "invalid Redis URL") {
		t.Errorf("bad scheme: err = %v, want an invalid URL error", err)
	} else if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows the password: %v", err)
	}

	port := freePort(t)
	url := fmt.Sprintf("redis://user:s3cret@127.0.0.1:%d/0", port)
	_, err = Open(ctx, url)
	if err == nil {
		t.Fatal("Open of a Redis nobody listens on succeeded")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows the password: %v", err)
	}
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d", port)) {
		t.Errorf("error does not name the server: %v", err)
	}
	t.Logf("unreachable: %v", err)
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"redis://127.0.0.1:6379/0":           "redis://127.0.0.1:6379/0",
		"redis://:pw@host:6379/1":            "redis://:xxxxx@host:6379/1",
		"rediss://user:pw@host/2":            "rediss://user:xxxxx@host/2",
		"redis://user:p%zz@host:6379/0":      "redis://xxxxx@host:6379/0",
		"redis://user@host:6379/0":           "redis://user@host:6379/0",
		"unix:///tmp/redis.sock?password=xx": "unix:///tmp/redis.sock?password=xx",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCloseStopsListenAndPublish(t *testing.T) {
	t.Parallel()
	url := testURL(t)
	n, err := Open(context.Background(), url, WithPrefix(uniquePrefix()), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	r := newRecorder()
	done := make(chan error, 1)
	go func() { done <- n.Listen(context.Background(), r.fn) }()
	probe(t, n, url, r)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Listen returned %v after Close, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Listen did not return after Close")
	}
	n.Publish(backend.Notification{Kind: "task"}) // no panic, no block
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// privateRedis is a redis-server child process of the test on its own port, so
// tests can stop and restart it without disturbing anyone else.
type privateRedis struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is required on PATH in CI")
		}
		t.Skip("redis-server not on PATH")
	}
	p := &privateRedis{t: t, port: freePort(t)}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *privateRedis) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", p.port) }

func (p *privateRedis) start() {
	p.t.Helper()
	p.cmd = exec.Command("redis-server", "--port", fmt.Sprint(p.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no")
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p.port), 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("redis-server on port %d did not start", p.port)
}

func (p *privateRedis) stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		p.cmd = nil
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestReconnectsAfterRedisRestart(t *testing.T) {
	t.Parallel()
	testURL(t) // same gating as every Redis test
	srv := startPrivateRedis(t)
	pub := open(t, srv.url(), WithMaxBackoff(200*time.Millisecond))
	sub := open(t, srv.url(), WithMaxBackoff(200*time.Millisecond))
	r := listen(t, sub, srv.url())

	srv.stop()
	// With Redis gone, Publish still returns at once.
	start := time.Now()
	for i := range 10000 {
		pub.Publish(backend.Notification{Kind: "finished", ExecutionID: fmt.Sprint(i)})
		pub.Publish(backend.Notification{Kind: "task"})
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("20,000 publishes with Redis down took %s", d)
	}
	time.Sleep(500 * time.Millisecond)
	before := r.count("task")

	srv.start()
	// Once subscribed again, the listener reports one "task" to cover what it missed.
	r.wait(t, 10*time.Second, func(n backend.Notification) bool { return n.Kind == "task" && n.Queue == "" })
	if got := r.count("task") - before; got < 1 {
		t.Errorf("no task notification after reconnecting")
	}
	// And notifications flow again, from a publisher that also lived through it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		pub.Publish(backend.Notification{Kind: "finished", ExecutionID: "after-restart"})
		select {
		case n := <-r.ch:
			if n.ExecutionID == "after-restart" {
				return
			}
			continue
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("notifications did not flow again after Redis restarted")
		}
	}
}

func TestListenStartsWhileRedisDown(t *testing.T) {
	t.Parallel()
	testURL(t)
	srv := startPrivateRedis(t)
	sub := open(t, srv.url(), WithMaxBackoff(100*time.Millisecond))
	srv.stop()
	r := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sub.Listen(ctx, r.fn) }()
	time.Sleep(300 * time.Millisecond)
	srv.start()
	r.wait(t, 10*time.Second, func(n backend.Notification) bool { return n.Kind == "task" })
	probe(t, sub, srv.url(), r)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Listen did not return after its context ended")
	}
}
