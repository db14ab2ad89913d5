package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kisee-pasee/suite/internal/sqldb"
)

// dialect is all that differs between SQLite and PostgreSQL for the store:
// how the database is opened, how concurrent migrations are kept apart,
// how a row read before being changed is locked, and how strings are
// aggregated. The statements themselves are the same on both (both drivers
// take $n placeholders, both engines ON CONFLICT and RETURNING).
type dialect struct {
	name sqldb.Dialect
	// lockRow ends a SELECT whose row the transaction then changes. On
	// PostgreSQL, FOR UPDATE; SQLite has no row locks and needs none: its
	// write transactions take the database's one write lock at BEGIN
	// (sqldb's DSN asks for BEGIN IMMEDIATE).
	lockRow string
	// rotateWithGroupsSQL is rotateSQL with the groups of the session's
	// user, aggregated in the dialect's way.
	rotateWithGroupsSQL string
}

func dialectOf(name sqldb.Dialect) (dialect, error) {
	switch name {
	case sqldb.SQLite:
		return dialect{name: name, rotateWithGroupsSQL: rotateWithGroups(`group_concat(m.group_name, ' ')`)}, nil
	case sqldb.Postgres:
		return dialect{name: name, lockRow: " FOR UPDATE", rotateWithGroupsSQL: rotateWithGroups(`string_agg(m.group_name, ' ')`)}, nil
	}
	return dialect{}, fmt.Errorf("unsupported dialect %q", name)
}

// open returns the pools for writes and for reads.
//
// SQLite: a file gets a writer pool of one connection, so that this
// process's writers queue in database/sql rather than on SQLite's lock,
// and a reader pool of several (WAL readers do not wait for the writer).
// ":memory:" is one connection for both: a second pool would be a second
// database.
//
// PostgreSQL: one pool for both, sized by pgxpool (pool_max_conns in the
// URL, else max(4, CPUs)).
func (d dialect) open(ctx context.Context, dsn string) (w, r *sql.DB, err error) {
	if d.name == sqldb.Postgres {
		db, err := sqldb.OpenPostgres(ctx, dsn)
		return db, db, err
	}
	w, err = sqldb.OpenSQLite(dsn)
	if err != nil {
		return nil, nil, err
	}
	if dsn == ":memory:" {
		return w, w, nil
	}
	w.SetMaxOpenConns(1)
	r, err = sqldb.OpenSQLite(dsn)
	if err != nil {
		w.Close()
		return nil, nil, err
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	return w, r, nil
}

// migrateLockKey is the PostgreSQL advisory lock that makes Migrate calls
// wait for one another. goose takes its own lock too, but polls for it
// every five seconds; waiting on this one first keeps concurrent starts
// (and parallel tests) from sleeping.
const migrateLockKey int64 = 0x7061_7365_655f_6d69 // "pasee_mi"

// lockMigrations waits until no other process migrates the database, and
// returns the function that lets the next one in. SQLite's migrations run
// on the writer connection, one at a time already.
func (d dialect) lockMigrations(ctx context.Context, db *sql.DB) (unlock func(), err error) {
	if d.name != sqldb.Postgres {
		return func() {}, nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLockKey); err != nil {
		_ = tx.Rollback()
		return nil, err
	}
	// The rollback releases the lock; nothing was written.
	return func() { _ = tx.Rollback() }, nil
}

// PostgreSQL error codes and constraint names the store interprets.
const (
	foreignKeyViolation = "23503"
	membershipGroupFK   = "pasee_memberships_group_fk"
)

// isForeignKeyViolation reports whether err is PostgreSQL's refusal of a
// row whose parent row (of constraint, or any when empty) was deleted by a
// concurrent transaction. On SQLite writers are serialised, so the check
// that precedes every such insert cannot be overtaken.
func isForeignKeyViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == foreignKeyViolation && (constraint == "" || pe.ConstraintName == constraint)
}
