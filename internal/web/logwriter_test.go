package web_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/web"
)

// slowSink records writes and takes its time with each, like a terminal
// or a pipe to a log shipper under load.
type slowSink struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	delay  time.Duration
}

func (s *slowSink) Write(p []byte) (int, error) {
	time.Sleep(s.delay)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.buf.Write(p)
}

func (s *slowSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// Lines from many goroutines all arrive, each whole and in the order each
// goroutine wrote them, in fewer writes than lines; Close leaves nothing
// behind.
func TestLogWriterKeepsEveryLineInOrder(t *testing.T) {
	sink := &slowSink{delay: 200 * time.Microsecond}
	w := web.NewLogWriter(sink)
	const writers, lines = 8, 500
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				if _, err := fmt.Fprintf(w, "g=%d i=%d\n", g, i); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	got := strings.Split(strings.TrimSuffix(sink.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines, want %d", len(got), writers*lines)
	}
	for _, l := range got {
		var g, i int
		if _, err := fmt.Sscanf(l, "g=%d i=%d", &g, &i); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if i != next[g] {
			t.Fatalf("goroutine %d: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
	if sink.writes >= writers*lines {
		t.Errorf("%d writes for %d lines: none went together", sink.writes, writers*lines)
	}
	t.Logf("%d lines in %d writes", writers*lines, sink.writes)
}

// A line written returns before the sink has it (the request does not
// wait), and is in the sink once Close returns; lines after Close go
// straight through.
func TestLogWriterDoesNotMakeTheCallerWait(t *testing.T) {
	sink := &slowSink{delay: 300 * time.Millisecond}
	w := web.NewLogWriter(sink)
	start := time.Now()
	fmt.Fprintln(w, "first")
	fmt.Fprintln(w, "second")
	if d := time.Since(start); d > 150*time.Millisecond {
		t.Errorf("two lines took %s to write: the caller waited for the sink", d)
	}
	w.Close()
	if got := sink.String(); got != "first\nsecond\n" {
		t.Fatalf("after Close the sink has %q", got)
	}
	fmt.Fprintln(w, "late")
	w.Close()
	if got := sink.String(); got != "first\nsecond\nlate\n" {
		t.Fatalf("after a line written past Close the sink has %q", got)
	}
}

// A sink slower than the lines makes writers wait rather than queue
// without bound.
func TestLogWriterBoundsWhatWaits(t *testing.T) {
	sink := &slowSink{delay: 50 * time.Millisecond}
	w := web.NewLogWriter(sink)
	defer w.Close()
	line := bytes.Repeat([]byte("x"), 64<<10)
	start := time.Now()
	for range 40 { // 2.5 MiB, over the 1 MiB bound
		w.Write(line)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("2.5 MiB queued in %s: nothing made the writer wait", d)
	}
}

// A line written while Close is still writing the queued ones comes after
// them, not in the middle (a server logs its last lines while it stops).
func TestLogWriterKeepsOrderAcrossClose(t *testing.T) {
	sink := &slowSink{delay: 200 * time.Millisecond}
	w := web.NewLogWriter(sink)
	fmt.Fprintln(w, "a") // taken by the writer at once: 200 ms in the sink
	time.Sleep(20 * time.Millisecond)
	fmt.Fprintln(w, "b") // queued behind it
	closed := make(chan struct{})
	go func() { w.Close(); close(closed) }()
	time.Sleep(20 * time.Millisecond) // Close has begun, "b" is still queued
	fmt.Fprintln(w, "c")
	<-closed
	if got := sink.String(); got != "a\nb\nc\n" {
		t.Fatalf("the sink has %q, want the lines in the order written", got)
	}
}
