package ratelimit

import (
	"database/sql"
	"io"

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
