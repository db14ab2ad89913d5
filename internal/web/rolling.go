package web

import (
	"sync"
	"time"
)

// RollingCounter counts events over the last hour in one-minute buckets,
// for the status page ("logins over the last hour"). It is safe for
// concurrent use and implements Inc, so it can stand next to a Prometheus
// counter wherever a service counts.
type RollingCounter struct {
	mu      sync.Mutex
	now     func() time.Time
	buckets [60]int64
	stamps  [60]int64 // the minute each bucket counts
}

// NewRollingCounter returns an empty counter (now: time.Now if nil).
func NewRollingCounter(now func() time.Time) *RollingCounter {
	if now == nil {
		now = time.Now
	}
	return &RollingCounter{now: now}
}

// Inc counts one event now.
func (r *RollingCounter) Inc() {
	m := r.now().Unix() / 60
	i := m % 60
	r.mu.Lock()
	if r.stamps[i] != m {
		r.stamps[i], r.buckets[i] = m, 0
	}
	r.buckets[i]++
	r.mu.Unlock()
}

// LastHour returns the number of events in the last 60 minutes.
func (r *RollingCounter) LastHour() int64 {
	m := r.now().Unix() / 60
	var sum int64
	r.mu.Lock()
	for i := range r.buckets {
		if m-r.stamps[i] < 60 {
			sum += r.buckets[i]
		}
	}
	r.mu.Unlock()
	return sum
}

// Counters increments several counters at once (a Prometheus counter and a
// RollingCounter, say).
type Counters []interface{ Inc() }

// Inc increments each counter.
func (cs Counters) Inc() {
	for _, c := range cs {
		c.Inc()
	}
}
