package redis

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stent-go/stent/backend"
)

// syncBuffer is a log sink safe for the notifier's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// With WithUnreachableStart, a Redis that is down at start costs one warning: Open
// succeeds, and the notifier connects once Redis is there.
func TestOpenWhileRedisDown(t *testing.T) {
	t.Parallel()
	testURL(t)
	srv := startPrivateRedis(t)
	srv.stop()
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	opts := []Option{WithPrefix(uniquePrefix()), WithLogger(logger), WithMaxBackoff(100 * time.Millisecond), WithUnreachableStart()}
	n, err := Open(context.Background(), srv.url(), opts...)
	if err != nil {
		t.Fatalf("Open with Redis down: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	r := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = n.Listen(ctx, r.fn) }()
	n.Publish(backend.Notification{Kind: "task", Queue: "q"})
	time.Sleep(300 * time.Millisecond) // Listen and publish retry against a dead server meanwhile
	srv.start()
	r.wait(t, 10*time.Second, func(n backend.Notification) bool { return n.Kind == "task" })
	probe(t, n, srv.url(), r)
	if got := strings.Count(logs.String(), "level=WARN"); got != 1 {
		t.Errorf("%d warnings, want exactly one:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "Redis is unreachable; starting without it") {
		t.Errorf("no start warning:\n%s", logs.String())
	}
}
