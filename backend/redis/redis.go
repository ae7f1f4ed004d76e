// Package redis carries Stent's cross-process wake-ups over Redis pub/sub: a Notifier
// (backend.Notifier) that tells the workers and WaitFor callers of every process
// sharing a database that a task became runnable or an execution finished.
//
// Redis is only ever a shortcut. Nothing is stored in it, and a lost notification costs
// latency, never work: workers still poll the database and a stopped Redis leaves the
// engine running on its other wake-up paths. Publish never blocks its caller: it records
// the notification in a bounded buffer that a goroutine drains, coalescing the "task"
// notifications of a queue that are still waiting, so a burst of a thousand becomes a
// handful of PUBLISH commands. Listen reconnects by itself with backoff and, after a
// reconnection, reports one "task" notification since some may have been missed.
//
// Messages go to two channels, PREFIX+"task" (payload: the queue name) and
// PREFIX+"finished" (payload: execution IDs, one per line); the prefix defaults to
// "stent:".
//
// Package redis imports package backend, go-redis and the standard library, and no
// other Stent package.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/stent-go/stent/backend"
)

// Defaults of the options.
const (
	DefaultPrefix      = "stent:"
	DefaultBufferSize  = 4096
	DefaultBatchWindow = time.Millisecond
)

// maxPayload bounds one "finished" message; longer batches are split.
const maxPayload = 32 << 10

// ErrInvalidURL is returned (wrapped) by Open for a URL it cannot parse.
var ErrInvalidURL = errors.New("invalid Redis URL")

// ErrUnreachable is returned (wrapped) by Open when Redis does not answer PING.
var ErrUnreachable = errors.New("cannot reach Redis")

// Option configures Open.
type Option func(*config)

type config struct {
	prefix      string
	bufferSize  int
	batchWindow time.Duration
	logger      *slog.Logger
	maxBackoff  time.Duration

	allowUnreachable bool
}

// WithPrefix sets the prefix of the channel names (default "stent:"). Processes that
// should wake each other must use the same prefix; different prefixes keep several
// Stent deployments on one Redis apart.
func WithPrefix(p string) Option { return func(c *config) { c.prefix = p } }

// WithBufferSize bounds the notifications waiting to be published (default 4096).
// Beyond it new "finished" notifications are dropped, which only costs latency.
func WithBufferSize(n int) Option { return func(c *config) { c.bufferSize = n } }

// WithBatchWindow sets the shortest time between two batches of PUBLISH commands
// (default 1ms). The first notification after a quiet spell goes out at once; those
// arriving meanwhile wait for the window and are coalesced. 0 publishes as fast as
// Redis answers.
func WithBatchWindow(d time.Duration) Option { return func(c *config) { c.batchWindow = d } }

// WithLogger sets where the notifier reports Redis going away and coming back
// (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithMaxBackoff bounds the wait between two reconnection attempts of Listen
// (default 2s).
func WithMaxBackoff(d time.Duration) Option { return func(c *config) { c.maxBackoff = d } }

// WithUnreachableStart makes Open succeed when Redis does not answer: it logs one
// warning, and the notifier connects in the background once Redis is there (a missed
// notification only costs latency). Without it Open fails with ErrUnreachable.
func WithUnreachableStart() Option { return func(c *config) { c.allowUnreachable = true } }

// Notifier is a backend.Notifier over Redis pub/sub. It is safe for concurrent use.
type Notifier struct {
	client   *goredis.Client
	cfg      config
	addr     string // the URL without its password, for messages
	taskCh   string
	finishCh string

	mu       sync.Mutex
	queues   map[string]struct{} // "task" notifications waiting, by queue
	finished []string            // "finished" notifications waiting
	dropped  int                 // notifications dropped since the last report
	closed   bool

	kick    chan struct{} // something is waiting to be published
	ctx     context.Context
	cancel  context.CancelFunc
	pubDone chan struct{}
	wg      sync.WaitGroup // Listen calls

	startedUnreachable bool // Open warned already: Redis did not answer
}

var _ backend.Notifier = (*Notifier)(nil)

// Open connects to the Redis named by url (redis://[user:password@]host:port/db, or
// rediss:// for TLS), checks it answers PING, and starts the publisher.
func Open(ctx context.Context, url string, opts ...Option) (*Notifier, error) {
	cfg := config{prefix: DefaultPrefix, bufferSize: DefaultBufferSize, batchWindow: DefaultBatchWindow, maxBackoff: 2 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.bufferSize <= 0 {
		cfg.bufferSize = DefaultBufferSize
	}
	if cfg.batchWindow < 0 {
		cfg.batchWindow = 0
	}
	if cfg.maxBackoff <= 0 {
		cfg.maxBackoff = 2 * time.Second
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	shown := Redact(url)
	ropts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v (want redis://[user:password@]host:port/db)", ErrInvalidURL, shown, stripURL(err, url, shown))
	}
	// Notifications are best effort: one quick retry covers a pooled connection that
	// broke (Redis restarted); the publisher's own backoff does the rest.
	ropts.MaxRetries = 1
	ropts.MinRetryBackoff = time.Millisecond
	ropts.MaxRetryBackoff = 10 * time.Millisecond
	if ropts.DialTimeout == 0 || ropts.DialTimeout > 2*time.Second {
		ropts.DialTimeout = 2 * time.Second
	}
	if ropts.ReadTimeout == 0 {
		ropts.ReadTimeout = 2 * time.Second
	}
	if ropts.WriteTimeout == 0 {
		ropts.WriteTimeout = 2 * time.Second
	}
	ropts.PoolSize = 4
	ropts.DialerRetries = 1 // Listen has its own backoff; a publish may simply fail
	ropts.DisableIdentity = true
	client := goredis.NewClient(ropts)
	pctx, cancelPing := context.WithTimeout(ctx, 5*time.Second)
	err = client.Ping(pctx).Err()
	cancelPing()
	unreachable := false
	if err != nil {
		if !cfg.allowUnreachable {
			_ = client.Close()
			return nil, fmt.Errorf("%w at %s: %v", ErrUnreachable, shown, stripURL(err, url, shown))
		}
		unreachable = true
		cfg.logger.Warn("redis notifier: Redis is unreachable; starting without it and reconnecting in the background (workers poll meanwhile)", "redis", shown, "err", stripURL(err, url, shown))
	}
	n := &Notifier{
		startedUnreachable: unreachable,
		client:             client,
		cfg:                cfg,
		addr:               shown,
		taskCh:             cfg.prefix + "task",
		finishCh:           cfg.prefix + "finished",
		queues:             map[string]struct{}{},
		kick:               make(chan struct{}, 1),
		pubDone:            make(chan struct{}),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	go n.publishLoop()
	return n, nil
}

// SetDriverLogger sends the go-redis driver's own log lines (dial failures while Redis
// is down, for instance) to l at debug level instead of stderr. The driver's logger is
// global to the process, so only a program that owns the process (like the stent CLI)
// should call this.
func SetDriverLogger(l *slog.Logger) {
	goredis.SetLogger(driverLogger{l})
}

type driverLogger struct{ l *slog.Logger }

func (d driverLogger) Printf(ctx context.Context, format string, v ...any) {
	d.l.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}

// Redact returns url with its password, if any, replaced by "xxxxx".
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Do not echo something that failed to parse: it may hold a password.
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			if j := strings.Index(raw, "://"); j >= 0 && j < i {
				return raw[:j+3] + "xxxxx" + raw[i:]
			}
			return "xxxxx" + raw[i:]
		}
		return raw
	}
	if u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// stripURL keeps a driver error from repeating the raw URL (and its password).
func stripURL(err error, raw, shown string) string {
	msg := err.Error()
	if raw != shown {
		msg = strings.ReplaceAll(msg, raw, shown)
		if u, perr := url.Parse(raw); perr == nil && u.User != nil {
			if p, ok := u.User.Password(); ok && p != "" {
				msg = strings.ReplaceAll(msg, p, "xxxxx")
			}
		}
	}
	return msg
}

// Publish queues n for every process listening, and returns at once. "task"
// notifications of the same queue that are still waiting are merged into one.
// Unknown kinds are ignored. After Close it does nothing.
func (n *Notifier) Publish(note backend.Notification) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	switch note.Kind {
	case "task":
		q := note.Queue
		if q == "" {
			q = backend.DefaultQueue
		}
		if _, ok := n.queues[q]; !ok {
			if len(n.queues)+len(n.finished) < n.cfg.bufferSize {
				n.queues[q] = struct{}{}
			} else {
				n.dropped++
			}
		}
	case "finished":
		if note.ExecutionID == "" {
			break
		}
		if len(n.queues)+len(n.finished) < n.cfg.bufferSize {
			n.finished = append(n.finished, note.ExecutionID)
		} else {
			n.dropped++
		}
	default:
		n.mu.Unlock()
		return
	}
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// publishLoop drains what Publish queued, one pipelined batch at a time. A batch that
// fails goes back into the buffer (as far as it fits) and is retried with backoff, so a
// Redis restart loses little; while Redis stays down, retries are spaced out.
func (n *Notifier) publishLoop() {
	defer close(n.pubDone)
	const (
		baseRetry = 50 * time.Millisecond
		maxRetry  = time.Second
	)
	var last time.Time
	failing, warned := false, n.startedUnreachable // retrying a failed batch; warned about it
	retry := baseRetry
	for {
		if failing {
			if !n.wait(retry) {
				return
			}
			retry = min(retry*2, maxRetry)
		} else {
			select {
			case <-n.ctx.Done():
				return
			case <-n.kick:
			}
			if w := n.cfg.batchWindow; w > 0 && !last.IsZero() {
				if d := w - time.Since(last); d > 0 && !n.wait(d) {
					return
				}
			}
		}
		n.mu.Lock()
		queues, finished, dropped := n.queues, n.finished, n.dropped
		n.queues, n.finished, n.dropped = map[string]struct{}{}, nil, 0
		n.mu.Unlock()
		if dropped > 0 {
			n.cfg.logger.Debug("redis notifier: buffer full, notifications dropped", "count", dropped)
		}
		if len(queues) == 0 && len(finished) == 0 {
			// Nothing to retry: wait for the next Publish.
			failing, retry = false, baseRetry
			continue
		}
		last = time.Now()
		err := n.send(queues, finished)
		if n.ctx.Err() != nil {
			return
		}
		if err != nil {
			n.requeue(queues, finished)
			failing = true
			if !warned {
				warned = true
				n.cfg.logger.Warn("redis notifier: publishing failed; workers fall back to polling until Redis is back", "redis", n.addr, "err", err)
			}
			continue
		}
		failing, retry = false, baseRetry
		if warned {
			warned = false
			n.cfg.logger.Info("redis notifier: publishing again", "redis", n.addr)
		}
		// Whatever was published during the send is waiting for its kick, which
		// Publish has sent (the channel holds one).
	}
}

// wait sleeps d; false if the notifier closed meanwhile.
func (n *Notifier) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-n.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// requeue puts a batch that could not be sent back into the buffer, as far as it fits.
func (n *Notifier) requeue(queues map[string]struct{}, finished []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for q := range queues {
		if _, ok := n.queues[q]; !ok && len(n.queues)+len(n.finished) < n.cfg.bufferSize {
			n.queues[q] = struct{}{}
		}
	}
	room := n.cfg.bufferSize - len(n.queues) - len(n.finished)
	if room > 0 {
		// Keep the newest: older waiters have likely polled already.
		if len(finished) > room {
			finished = finished[len(finished)-room:]
		}
		n.finished = append(finished, n.finished...)
	}
}

func (n *Notifier) send(queues map[string]struct{}, finished []string) error {
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	pipe := n.client.Pipeline()
	for q := range queues {
		pipe.Publish(ctx, n.taskCh, q)
	}
	for len(finished) > 0 {
		var b strings.Builder
		i := 0
		for ; i < len(finished); i++ {
			if i > 0 && b.Len()+len(finished[i])+1 > maxPayload {
				break
			}
			if i > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(finished[i])
		}
		pipe.Publish(ctx, n.finishCh, b.String())
		finished = finished[i:]
	}
	_, err := pipe.Exec(ctx)
	return err
}

// Listen subscribes to the notifications of every process (this one's included) and
// calls fn for each, until ctx ends or the notifier is closed; then it returns nil. When
// Redis goes away it reconnects with backoff and, once subscribed again, calls fn with
// a "task" notification, since notifications may have been missed meanwhile. fn is
// called from one goroutine and should return quickly.
func (n *Notifier) Listen(ctx context.Context, fn func(backend.Notification)) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return errors.New("redis notifier: closed")
	}
	n.wg.Add(1)
	n.mu.Unlock()
	defer n.wg.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(n.ctx, cancel)
	defer stop()

	ps := n.client.Subscribe(ctx, n.taskCh, n.finishCh)
	// Receive blocks in a socket read that ignores ctx: closing the PubSub ends it.
	stopClose := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer func() {
		if stopClose() {
			_ = ps.Close()
		}
	}()

	const (
		idle        = 30 * time.Second // ping a silent connection this often
		baseBackoff = 50 * time.Millisecond
	)
	backoff := baseBackoff
	subscribed := false          // a subscription was confirmed once
	lost := n.startedUnreachable // the connection broke since the last confirmation (Open warned)
	lostSince := time.Now()
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, idle)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if isTimeout(err) {
				// Quiet line: a PING either answers (a *Pong arrives) or breaks the
				// connection, which the next Receive redials.
				_ = ps.Ping(ctx)
				continue
			}
			if !lost {
				lost = true
				lostSince = time.Now()
				n.cfg.logger.Warn("redis notifier: subscription lost; reconnecting (workers poll meanwhile)", "redis", n.addr, "err", err)
			}
			backend.Sleep(ctx, backoff)
			backoff = min(backoff*2, n.cfg.maxBackoff)
			continue
		}
		backoff = baseBackoff
		switch m := msg.(type) {
		case *goredis.Subscription:
			// Each (re)subscription confirms both channels; the task channel's
			// confirmation after the first one means the connection was replaced
			// (after an error here, or a failed PING inside go-redis).
			if m.Kind != "subscribe" || m.Channel != n.taskCh {
				continue
			}
			if lost {
				n.cfg.logger.Info("redis notifier: subscribed again", "redis", n.addr, "after", time.Since(lostSince).Round(time.Millisecond))
			}
			if subscribed || lost {
				fn(backend.Notification{Kind: "task"})
			}
			subscribed, lost = true, false
		case *goredis.Message:
			switch m.Channel {
			case n.taskCh:
				fn(backend.Notification{Kind: "task", Queue: m.Payload})
			case n.finishCh:
				for id := range strings.SplitSeq(m.Payload, "\n") {
					if id != "" {
						fn(backend.Notification{Kind: "finished", ExecutionID: id})
					}
				}
			}
		}
	}
	return nil
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// Close stops publishing and every Listen call, and closes the connections.
// Notifications still waiting are dropped. It is safe to call more than once.
func (n *Notifier) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	n.cancel()
	<-n.pubDone
	n.wg.Wait()
	return n.client.Close()
}
