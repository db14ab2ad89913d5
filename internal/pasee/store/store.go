// Package store opens the Pasee Store named by the settings' storage URL:
// "sqlite:pasee.db" (the embedded default) or "postgres://user@host/db",
// both served by package store/sqlstore.
package store

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/store/sqlstore"
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
	s, err := sqlstore.Open(ctx, target)
	if err != nil {
		return nil, fmt.Errorf("pasee storage: %w", err)
	}
	s.Logger = logger
	if migrate {
		if err := s.Migrate(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("pasee storage: %w", err)
		}
	}
	return s, nil
}
