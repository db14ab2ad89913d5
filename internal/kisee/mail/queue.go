package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/kisee-pasee/suite/internal/kisee"
)

// Sender delivers one message now (SMTP does).
type Sender interface {
	Send(ctx context.Context, m kisee.Message) error
}

// Counter is a metric that counts (a prometheus.Counter fits).
type Counter interface{ Inc() }

type noCounter struct{}

func (noCounter) Inc() {}

// Metrics are the counters a Queue increments: each message ends Sent,
// Failed (every attempt failed, or it could not be composed) or Dropped
// (the queue was full, or closing); Retries counts attempts after the first.
type Metrics struct {
	Sent    Counter
	Failed  Counter
	Dropped Counter
	Retries Counter
}

// QueueConfig tunes a Queue.
type QueueConfig struct {
	// Size bounds the messages waiting; default 256. Beyond, Enqueue drops.
	Size int
	// Workers send in parallel; default 2.
	Workers int
	// Attempts per message, the first included; default 5.
	Attempts int
	// RetryDelay is the wait before the first retry, doubled before each
	// next one, each wait drawn at random between half and all of it
	// (jitter); default 4 s, so 5 attempts span about a minute.
	RetryDelay time.Duration
	Logger     *slog.Logger
	Metrics    Metrics
}

// Queue delivers messages in the background. It implements kisee.Outbox.
type Queue struct {
	sender  Sender
	cfg     QueueConfig
	jobs    chan kisee.Compose
	closing chan struct{}
	// ctx is cancelled when Close gives up waiting: in-flight sends abort.
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	wg        sync.WaitGroup
}

var _ kisee.Outbox = (*Queue)(nil)

// NewQueue starts the workers of a queue sending through sender. Close
// stops them.
func NewQueue(sender Sender, cfg QueueConfig) *Queue {
	if cfg.Size <= 0 {
		cfg.Size = 256
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 5
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 4 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for _, c := range []*Counter{&cfg.Metrics.Sent, &cfg.Metrics.Failed, &cfg.Metrics.Dropped, &cfg.Metrics.Retries} {
		if *c == nil {
			*c = noCounter{}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue{sender: sender, cfg: cfg, jobs: make(chan kisee.Compose, cfg.Size), closing: make(chan struct{}), ctx: ctx, cancel: cancel}
	q.wg.Add(cfg.Workers)
	for range cfg.Workers {
		go q.work()
	}
	return q
}

// Enqueue implements kisee.Outbox. It never blocks.
func (q *Queue) Enqueue(compose kisee.Compose) bool {
	select {
	case <-q.closing:
	default:
		select {
		case q.jobs <- compose:
			return true
		default:
		}
	}
	q.cfg.Metrics.Dropped.Inc()
	q.cfg.Logger.Warn("email dropped: the outgoing queue is full or closing", "queue_size", q.cfg.Size)
	return false
}

// Close stops accepting messages and lets the workers finish those queued
// (without further retries) until ctx is done; then in-flight sends are
// cancelled and what is left is dropped.
func (q *Queue) Close(ctx context.Context) error {
	q.closeOnce.Do(func() { close(q.closing) })
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.cancel()
		<-done
		return fmt.Errorf("mail queue: %w", ctx.Err())
	}
}

func (q *Queue) work() {
	defer q.wg.Done()
	for {
		select {
		case compose := <-q.jobs:
			q.process(compose)
		case <-q.closing:
			for {
				select {
				case compose := <-q.jobs:
					if q.ctx.Err() != nil {
						q.cfg.Metrics.Dropped.Inc()
						continue
					}
					q.process(compose)
				default:
					return
				}
			}
		}
	}
}

// process composes one message and sends it, retrying transient failures.
func (q *Queue) process(compose kisee.Compose) {
	ctx, log := q.ctx, q.cfg.Logger
	m, ok, err := compose(ctx)
	if err != nil {
		q.cfg.Metrics.Failed.Inc()
		log.ErrorContext(ctx, "email not sent: cannot compose it", "error", err)
		return
	}
	if !ok {
		return
	}
	attrs := []any{"kind", m.Kind, "user", m.User}
	delay := q.cfg.RetryDelay
	for attempt := 1; ; attempt++ {
		err := q.sender.Send(ctx, m)
		if err == nil {
			q.cfg.Metrics.Sent.Inc()
			log.InfoContext(ctx, "email sent", append(attrs, "attempt", attempt)...)
			return
		}
		var permanent *PermanentError
		switch {
		case errors.As(err, &permanent):
			q.cfg.Metrics.Failed.Inc()
			log.ErrorContext(ctx, "email not sent: refused", append(attrs, "attempt", attempt, "error", err)...)
			return
		case attempt >= q.cfg.Attempts:
			q.cfg.Metrics.Failed.Inc()
			log.ErrorContext(ctx, "email not sent: every attempt failed", append(attrs, "attempts", attempt, "error", err)...)
			return
		}
		wait := delay/2 + rand.N(delay/2+1)
		log.WarnContext(ctx, "email not sent yet; will retry", append(attrs, "attempt", attempt, "retry_in", wait.Round(time.Millisecond), "error", err)...)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-q.closing:
			t.Stop()
			q.cfg.Metrics.Failed.Inc()
			log.ErrorContext(ctx, "email not sent: shutting down before its retry", attrs...)
			return
		}
		q.cfg.Metrics.Retries.Inc()
		delay *= 2
	}
}
