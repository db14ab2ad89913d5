package ratelimit

import (
	"database/sql"
	"io"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisee-pasee/suite/internal/settings"
)

// FromSettings builds the limiter of a [rate_limit] table: store "" or
// "memory", a redis:// URL, or "sql" (counters in db, the service's own
// database). The returned closer releases the store (a Redis client); it
// may be nil.
func FromSettings(s settings.RateLimit, db *sql.DB, dialect string) (*Limiter, io.Closer, error) {
	store, err := Open(s.Store, db, dialect)
	if err != nil {
		return nil, nil, err
	}
	p := DefaultPolicy()
	if s.MaxFailures > 0 {
		p.MaxFailures = s.MaxFailures
		p.AddressMaxFailures = AddressFactor * s.MaxFailures
	}
	if s.Window > 0 {
		p.Window = s.Window.D()
	}
	closer, _ := store.(io.Closer)
	return New(store, p), closer, nil
}

// Collectors are the limiter's metrics, for a Prometheus registry, under
// namespace: how many counters a memory store evicted to make room, and
// how many new ones it refused because all it held were lockouts.
func Collectors(namespace string, l *Limiter) []prometheus.Collector {
	m, ok := l.store.(*MemoryStore)
	if !ok {
		return nil
	}
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "ratelimit_evictions_total",
			Help: "Brute-force counters evicted from the memory store to make room (never a lockout)."},
			func() float64 { return float64(m.Evictions()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "ratelimit_refusals_total",
			Help: "Attempts refused because the memory store was full of lockouts."},
			func() float64 { return float64(m.Refusals()) }),
	}
}
