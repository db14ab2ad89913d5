package ratelimit

import (
	"container/heap"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxKeys bounds a MemoryStore built with maxKeys ≤ 0 (a counter
// takes about 250 bytes, so at most some 25 MB).
const DefaultMaxKeys = 100_000

// FullError is returned by MemoryStore.Incr for a new key when the store
// is full of protected counters (see MemoryStore): the attempt cannot be
// counted, and RetryAfter is when the first of them ends.
type FullError struct{ RetryAfter time.Duration }

func (e *FullError) Error() string {
	return fmt.Sprintf("rate limit store full of live lockouts; retry in %s", e.RetryAfter.Round(time.Second))
}

// MemoryStore is an in-process Store for a single instance. It holds at
// most maxKeys counters: expired ones are purged as time passes, and when
// it is full of live ones, the coldest counter (the lowest count, then the
// earliest end) is evicted to make room — unless its count has reached the
// protection threshold (SetProtectFrom: the limiter sets it to its lockout
// threshold), in which case the new key is refused with a *FullError
// rather than freeing a lockout. Evictions and refusals are counted
// (Evictions, Refusals). Safe for concurrent use.
type MemoryStore struct {
	// Now returns the current time (time.Now); tests replace it before
	// using the store.
	Now func() time.Time

	mu          sync.Mutex
	maxKeys     int
	protectFrom int64
	entries     map[string]*memEntry
	byEnd       entryHeap // the same entries, earliest window end first
	byCount     entryHeap // the same entries, coldest first

	evictions, refusals atomic.Uint64
}

type memEntry struct {
	key     string
	count   int64
	resetAt time.Time
	idx     [2]int // in byEnd, byCount
}

// NewMemoryStore returns an empty MemoryStore of at most maxKeys counters
// (DefaultMaxKeys if maxKeys ≤ 0). Until SetProtectFrom is called, every
// counter may be evicted.
func NewMemoryStore(maxKeys int) *MemoryStore {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &MemoryStore{
		Now: time.Now, maxKeys: maxKeys, protectFrom: 1<<63 - 1,
		entries: make(map[string]*memEntry),
		byEnd:   entryHeap{which: 0, less: func(a, b *memEntry) bool { return a.resetAt.Before(b.resetAt) }},
		byCount: entryHeap{which: 1, less: func(a, b *memEntry) bool {
			return a.count < b.count || a.count == b.count && a.resetAt.Before(b.resetAt)
		}},
	}
}

// SetProtectFrom makes counters whose count reached n unevictable: they
// are lockouts (or about to be), and evicting them would free an attacker.
func (s *MemoryStore) SetProtectFrom(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.protectFrom = max(n, 1)
}

// Evictions returns how many live counters were evicted to make room.
func (s *MemoryStore) Evictions() uint64 { return s.evictions.Load() }

// Refusals returns how many new counters were refused because every live
// counter was protected.
func (s *MemoryStore) Refusals() uint64 { return s.refusals.Load() }

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
			coldest := s.byCount.entries[0]
			if coldest.count >= s.protectFrom {
				s.refusals.Add(1)
				return 0, time.Time{}, &FullError{RetryAfter: remaining(s.byEnd.entries[0].resetAt, now)}
			}
			s.removeLocked(coldest)
			s.evictions.Add(1)
		}
		e = &memEntry{key: key, resetAt: now.Add(window)}
		s.entries[key] = e
		heap.Push(&s.byEnd, e)
		heap.Push(&s.byCount, e)
	}
	e.count++
	heap.Fix(&s.byCount, e.idx[1])
	return e.count, e.resetAt, nil
}

// Decr implements Store.
func (s *MemoryStore) Decr(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[key]
	if e == nil || !s.Now().Before(e.resetAt) {
		return nil
	}
	e.count--
	if e.count <= 0 {
		s.removeLocked(e)
		return nil
	}
	heap.Fix(&s.byCount, e.idx[1])
	return nil
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
		s.removeLocked(e)
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
	for len(s.byEnd.entries) > 0 && !now.Before(s.byEnd.entries[0].resetAt) {
		s.removeLocked(s.byEnd.entries[0])
	}
}

func (s *MemoryStore) removeLocked(e *memEntry) {
	heap.Remove(&s.byEnd, e.idx[0])
	heap.Remove(&s.byCount, e.idx[1])
	delete(s.entries, e.key)
}

// entryHeap orders entries by less (container/heap), keeping each entry's
// position in idx[which].
type entryHeap struct {
	entries []*memEntry
	which   int
	less    func(a, b *memEntry) bool
}

func (h *entryHeap) Len() int           { return len(h.entries) }
func (h *entryHeap) Less(i, j int) bool { return h.less(h.entries[i], h.entries[j]) }
func (h *entryHeap) Swap(i, j int) {
	h.entries[i], h.entries[j] = h.entries[j], h.entries[i]
	h.entries[i].idx[h.which] = i
	h.entries[j].idx[h.which] = j
}

func (h *entryHeap) Push(x any) {
	e := x.(*memEntry)
	e.idx[h.which] = len(h.entries)
	h.entries = append(h.entries, e)
}

func (h *entryHeap) Pop() any {
	n := len(h.entries)
	e := h.entries[n-1]
	h.entries[n-1] = nil
	h.entries = h.entries[:n-1]
	e.idx[h.which] = -1
	return e
}
