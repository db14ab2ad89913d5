package web

import (
	"io"
	"sync"
)

// maxPendingLog bounds the log bytes waiting for the writer; past it,
// Write waits for the sink instead of growing without bound.
const maxPendingLog = 1 << 20

// LogWriter hands log lines to its sink from a goroutine of its own, so
// that a request does not wait for the write system call of its access log
// line before its answer is sent. Lines written while a write is under way
// go together in the next one: one system call for many lines under load,
// one per line when quiet. Lines keep their order. Close writes what is
// pending and returns; a process that exits without Close loses at most
// the lines of the write under way.
type LogWriter struct {
	sink io.Writer

	mu      sync.Mutex
	pending []byte
	closed  bool
	drained *sync.Cond // signalled when pending was taken
	wake    chan struct{}
	done    chan struct{}
}

// NewLogWriter starts the writer of sink.
func NewLogWriter(sink io.Writer) *LogWriter {
	w := &LogWriter{sink: sink, wake: make(chan struct{}, 1), done: make(chan struct{})}
	w.drained = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// Write queues p (a copy) for the sink. After Close it writes p directly,
// once the lines queued before are written.
func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	for len(w.pending) > maxPendingLog && !w.closed {
		w.drained.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		<-w.done // the lines queued before Close go first
		return w.sink.Write(p)
	}
	w.pending = append(w.pending, p...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // the writer is awake already and will see p
	}
	return len(p), nil
}

// run writes what is pending until Close.
func (w *LogWriter) run() {
	defer close(w.done)
	var spare []byte
	for {
		<-w.wake
		w.mu.Lock()
		out, closed := w.pending, w.closed
		w.pending = spare[:0]
		w.drained.Broadcast()
		w.mu.Unlock()
		if len(out) > 0 {
			_, _ = w.sink.Write(out) // a log sink's failure has nowhere to go
		}
		spare = out
		if closed {
			return
		}
	}
}

// Close writes the pending lines and stops the writer; later lines go to
// the sink directly. It is safe to call more than once.
func (w *LogWriter) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return nil
	}
	w.closed = true
	w.drained.Broadcast()
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
	return nil
}
