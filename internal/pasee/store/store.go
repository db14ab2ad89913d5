// Package store opens the Pasee Store named by the settings' storage URL:
// "sqlite:pasee.db" (the embedded default, package store/sqlite) or
// "postgres://user@host/db" (package store/postgres).
package store

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/store/postgres"
	"github.com/kisee-pasee/suite/internal/pasee/store/sqlite"
	"github.com/kisee-pasee/suite/internal/sqldb"
)

// Open opens the store at url and, when migrate is set, applies Pasee's
// migrations first (the server does at start unless --no-migrate). logger
// receives the migrations applied; it may be nil.
func Open(ctx context.Context, url string, logger *slog.Logger, migrate bool) (pasee.Store, error) {
	target, err := sqldb.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("pasee storage: %w", err)
	}
	var (
		s        pasee.Store
		migrator interface{ Migrate(context.Context) error }
	)
	switch target.Dialect {
	case sqldb.SQLite:
		st, err := sqlite.Open(ctx, target.DSN)
		if err != nil {
			return nil, fmt.Errorf("pasee storage: %w", err)
		}
		st.Logger = logger
		s, migrator = st, st
	case sqldb.Postgres:
		st, err := postgres.Open(ctx, target.DSN)
		if err != nil {
			return nil, fmt.Errorf("pasee storage: %w", err)
		}
		st.Logger = logger
		s, migrator = st, st
	default:
		return nil, fmt.Errorf("pasee storage: unsupported dialect %q", target.Dialect)
	}
	if migrate {
		if err := migrator.Migrate(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("pasee storage: %w", err)
		}
	}
	return s, nil
}
