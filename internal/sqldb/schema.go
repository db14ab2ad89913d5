package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

// SchemaBehindError is a database whose schema lacks migrations of this
// build: a service started with --no-migrate before `migrate` ran.
type SchemaBehindError struct {
	Current, Target int64
	Command         string // "kisee" or "pasee"
}

func (e *SchemaBehindError) Error() string {
	return fmt.Sprintf("the database schema is at version %d but this build needs version %d: run `%s migrate` (or start without --no-migrate)",
		e.Current, e.Target, e.Command)
}

// CheckSchema returns a *SchemaBehindError when db lacks some of the
// migrations of fsys (versions recorded in table); command names the
// binary whose migrate command applies them.
func CheckSchema(ctx context.Context, db *sql.DB, dialect Dialect, fsys fs.FS, table, command string) error {
	gd := database.DialectSQLite3
	if dialect == Postgres {
		gd = database.DialectPostgres
	}
	store, err := database.NewStore(gd, table)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	p, err := goose.NewProvider("", db, fsys, goose.WithStore(store), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	current, target, err := p.GetVersions(ctx)
	if err != nil {
		// No version table at all: a database never migrated, if it
		// answers.
		if perr := db.PingContext(ctx); perr != nil {
			return fmt.Errorf("check schema: %w", perr)
		}
		var n int
		if qerr := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); qerr == nil {
			return fmt.Errorf("check schema: %w", err)
		}
		current = 0
		if sources := p.ListSources(); len(sources) > 0 {
			target = sources[len(sources)-1].Version
		}
	}
	if current < target {
		return &SchemaBehindError{Current: current, Target: target, Command: command}
	}
	return nil
}

// SchemaWatch checks a database's schema until it is current, then
// remembers that it is (a schema does not go back): /health stays red
// while the schema is behind and turns green once `migrate` has run.
type SchemaWatch struct {
	check func(context.Context) error

	mu      sync.Mutex
	current bool
}

// NewSchemaWatch watches db's schema against the migrations of fsys.
func NewSchemaWatch(db *sql.DB, dialect Dialect, fsys fs.FS, table, command string) *SchemaWatch {
	return &SchemaWatch{check: func(ctx context.Context) error {
		return CheckSchema(ctx, db, dialect, fsys, table, command)
	}}
}

// Check returns nil once the schema is current, else why it is not.
func (w *SchemaWatch) Check(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.current {
		return nil
	}
	err := w.check(ctx)
	w.current = err == nil
	return err
}

// IsSchemaBehind reports whether err is (or wraps) a *SchemaBehindError.
func IsSchemaBehind(err error) bool {
	var b *SchemaBehindError
	return errors.As(err, &b)
}
