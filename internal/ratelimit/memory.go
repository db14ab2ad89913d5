package ratelimit

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// DefaultMaxKeys bounds a MemoryStore built with maxKeys ≤ 0 (a counter
// takes about 250 bytes, so at most some 25 MB).
const DefaultMaxKeys = 100_000

// MemoryStore is an in-process Store for a single instance. It holds at
// most maxKeys counters: expired ones are purged as time passes, and when
// it is full of live ones, the counter whose window ends first is evicted
// (it is the closest to being forgiven anyway). Safe for concurrent use.
type MemoryStore struct {
	// Now returns the current time (time.Now); tests replace it before
	// using the store.
	Now func() time.Time

	mu      sync.Mutex
	maxKeys int
	entries map[string]*memEntry
	byEnd   endHeap // the same entries, earliest window end first
}

type memEntry struct {
	key     string
	count   int64
	resetAt time.Time
	index   int // in byEnd
}

// NewMemoryStore returns an empty MemoryStore of at most maxKeys counters
// (DefaultMaxKeys if maxKeys ≤ 0).
func NewMemoryStore(maxKeys int) *MemoryStore {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &MemoryStore{Now: time.Now, maxKeys: maxKeys, entries: make(map[string]*memEntry)}
}

// Incr implements Store.
func (s *MemoryStore) Incr(ctx context.Context, key string, window time.Duration) (int64, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return 0, time.Time{}, err
	}
	if err := checkWindow(window); err != nil {
		return 0, time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Now()
	s.purgeLocked(now)
	e := s.entries[key]
	if e == nil {
		for len(s.entries) >= s.maxKeys {
			old := heap.Pop(&s.byEnd).(*memEntry)
			delete(s.entries, old.key)
		}
		e = &memEntry{key: key, resetAt: now.Add(window)}
		s.entries[key] = e
		heap.Push(&s.byEnd, e)
	}
	e.count++
	return e.count, e.resetAt, nil
}

// Get implements Store.
func (s *MemoryStore) Get(ctx context.Context, key string) (int64, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return 0, time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[key]
	if e == nil || !s.Now().Before(e.resetAt) {
		return 0, time.Time{}, nil
	}
	return e.count, e.resetAt, nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.entries[key]; e != nil {
		heap.Remove(&s.byEnd, e.index)
		delete(s.entries, key)
	}
	return nil
}

// Len returns the number of counters held, expired ones not yet purged
// included.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// purgeLocked drops the counters whose window has ended.
func (s *MemoryStore) purgeLocked(now time.Time) {
	for len(s.byEnd) > 0 && !now.Before(s.byEnd[0].resetAt) {
		e := heap.Pop(&s.byEnd).(*memEntry)
		delete(s.entries, e.key)
	}
}

// endHeap orders entries by window end (container/heap).
type endHeap []*memEntry

func (h endHeap) Len() int           { return len(h) }
func (h endHeap) Less(i, j int) bool { return h[i].resetAt.Before(h[j].resetAt) }
func (h endHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *endHeap) Push(x any) {
	e := x.(*memEntry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *endHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	e.index = -1
	return e
}
