package engine

import (
	"context"
	"sync"

	"github.com/stent-go/stent/backend"
	"github.com/stent-go/stent/internal/telemetry"
)

// WithNotifier adds a cross-process wake-up channel (see backend/redis). Workers and
// WaitFor callers of every process sharing the database are woken through it; polling
// and the backend's own notifications stay as the other paths.
func WithNotifier(n backend.Notifier) Option { return func(o *engineConfig) { o.notifier = n } }

// taskReady wakes local workers and, through the notifier, those of other processes.
func (e *Engine) taskReady(queue string) {
	e.tel.Woken(telemetry.WakeInProcess)
	e.wake.Notify()
	if n := e.cfg.notifier; n != nil {
		if queue == "" {
			queue = backend.DefaultQueue
		}
		n.Publish(backend.Notification{Kind: "task", Queue: queue})
	}
}

// executionFinished wakes local waiters and, through the notifier, other processes'
// (unless the backend says which ends someone awaits: see announceAwaitedEnds).
func (e *Engine) executionFinished(id string) {
	e.finished.notify(id)
	if n := e.cfg.notifier; n != nil && !e.announcesAwaited {
		n.Publish(backend.Notification{Kind: "finished", ExecutionID: id})
	}
}

// announceAwaitedEnds makes the notifier carry only the ends the backend announces
// (backend.AnnouncedEnds): those a WaitFor asked for with AwaitExecution, as the
// backend's own notifications do. The end of an execution no one awaits, most of
// them (children, executions dispatched and not waited for), then costs no message.
func (e *Engine) announceAwaitedEnds() {
	n := e.cfg.notifier
	ae, ok := e.b.(backend.AnnouncedEnds)
	if n == nil || !ok {
		return
	}
	e.announcesAwaited = true
	ae.OnAnnouncedEnd(func(id string) { n.Publish(backend.Notification{Kind: "finished", ExecutionID: id}) })
}

// listener delivers other processes' notifications (backend LISTEN/NOTIFY and the
// notifier) to this engine for as long as it is open. It starts on first use.
type listener struct {
	once   sync.Once
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (e *Engine) listen() {
	e.listening.once.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		e.listening.cancel = cancel
		deliver := func(path int) func(backend.Notification) {
			return func(n backend.Notification) {
				if n.Kind == "finished" {
					e.finished.notify(n.ExecutionID)
					return
				}
				e.tel.Woken(path)
				e.wake.Notify()
			}
		}
		type source struct {
			l    backend.Listener
			path int
		}
		var sources []source
		if l, ok := e.b.(backend.Listener); ok {
			sources = append(sources, source{l, telemetry.WakeNotify})
		}
		if e.cfg.notifier != nil {
			sources = append(sources, source{e.cfg.notifier, telemetry.WakeRedis})
		}
		for _, s := range sources {
			e.listening.wg.Add(1)
			go func(s source) {
				defer e.listening.wg.Done()
				if err := s.l.Listen(ctx, deliver(s.path)); err != nil && ctx.Err() == nil {
					e.logger.Warn("listening for notifications stopped", "err", err)
				}
			}(s)
		}
	})
}

func (e *Engine) stopListening() {
	e.listening.once.Do(func() {}) // no listener may start after Close
	if e.listening.cancel != nil {
		e.listening.cancel()
	}
	e.listening.wg.Wait()
}
