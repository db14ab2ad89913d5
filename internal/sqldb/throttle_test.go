package sqldb

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Housekeeping runs once per interval, however many goroutines ask at once.
func TestThrottleRunsOncePerInterval(t *testing.T) {
	var th Throttle
	now := time.Unix(1_800_000_000, 0)
	var ran atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if th.Due(now, time.Minute) {
				ran.Add(1)
			}
		})
	}
	wg.Wait()
	if ran.Load() != 1 {
		t.Fatalf("%d of 50 concurrent callers ran the task; want 1", ran.Load())
	}
	if th.Due(now.Add(59*time.Second), time.Minute) {
		t.Fatal("due again within the interval")
	}
	if !th.Due(now.Add(time.Minute), time.Minute) {
		t.Fatal("not due once the interval has passed")
	}
}

// Wrap keeps the cause, and adds the caller's unavailable error only for
// a database that cannot be reached.
func TestWrap(t *testing.T) {
	unavailable := errors.New("unavailable")
	bad := errors.New("syntax error")
	if err := Wrap("read", bad, unavailable); !errors.Is(err, bad) || errors.Is(err, unavailable) {
		t.Fatalf("Wrap(query error) = %v", err)
	}
	down := errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	if err := Wrap("read", down, unavailable); !errors.Is(err, unavailable) || !errors.Is(err, down) {
		t.Fatalf("Wrap(connection refused) = %v", err)
	}
}
