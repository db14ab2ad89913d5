package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/store/sqlstore"
	"github.com/kisee-pasee/suite/internal/pasee/store/storetest"
	"github.com/kisee-pasee/suite/internal/pgtest"
	"github.com/kisee-pasee/suite/internal/sqldb"
)

// engines are the databases every store behaviour runs against.
var engines = []struct {
	name   string
	target func(t *testing.T) sqldb.Target
}{
	{"SQLite", func(t *testing.T) sqldb.Target {
		return sqldb.Target{Dialect: sqldb.SQLite, DSN: filepath.Join(t.TempDir(), "pasee.db")}
	}},
	{"PostgreSQL", func(t *testing.T) sqldb.Target {
		return sqldb.Target{Dialect: sqldb.Postgres, DSN: pgtest.URL(t)}
	}},
}

func open(t *testing.T, target sqldb.Target) *sqlstore.Store {
	t.Helper()
	return sqlstore.OpenForTest(t, target)
}

func TestConformance(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) pasee.Store { return open(t, e.target(t)) })
		})
	}
}

func TestMigrateTwice(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			s := open(t, e.target(t))
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatalf("second Migrate: %v", err)
			}
		})
	}
}

// Stores started together on one empty PostgreSQL database (several
// instances rolling out) migrate it once and all start. (A SQLite file
// serves one instance: goose has no lock there, and two processes
// migrating a new file at the same instant can both try the first
// migration.)
func TestPostgresConcurrentMigrations(t *testing.T) {
	target := sqldb.Target{Dialect: sqldb.Postgres, DSN: pgtest.URL(t)}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			s, err := sqlstore.Open(t.Context(), target)
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			errs[i] = s.Migrate(t.Context())
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	s := open(t, target)
	if ok, err := s.GroupExists(t.Context(), pasee.StaffGroup); err != nil || !ok {
		t.Fatalf("GroupExists(staff) = %v, %v", ok, err)
	}
}

// New's store shares one SQLite pool between reads and writes: concurrent
// writers then queue on SQLite's busy timeout rather than in database/sql.
func TestConformanceSQLiteOnePool(t *testing.T) {
	storetest.Run(t, func(t *testing.T) pasee.Store {
		db, err := sqldb.OpenSQLite(filepath.Join(t.TempDir(), "pasee.db"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := sqlstore.New(db, sqldb.SQLite)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestNewRefusesUnknownDialects(t *testing.T) {
	if _, err := sqlstore.New(nil, "mysql"); err == nil {
		t.Fatal("a mysql store was made")
	}
	if _, err := sqlstore.Open(t.Context(), sqldb.Target{Dialect: "mysql", DSN: "x"}); err == nil {
		t.Fatal("a mysql store was opened")
	}
}

// Two stores on one file stand for the server and the CLI's "pasee append"
// writing at the same time: neither loses a membership.
func TestSQLiteTwoStoresOnOneFile(t *testing.T) {
	ctx := t.Context()
	target := sqldb.Target{Dialect: sqldb.SQLite, DSN: filepath.Join(t.TempDir(), "pasee.db")}
	a := open(t, target)
	b, err := sqlstore.Open(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	now := time.Now()
	if err := a.EnsureGroup(ctx, "cli", "team", now); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 60)
	for i := range 30 {
		wg.Go(func() { errs[i] = a.AddMember(ctx, "server", "team", fmt.Sprintf("kisee-a%02d", i), now) })
		wg.Go(func() { errs[30+i] = b.AddMember(ctx, "cli", "team", fmt.Sprintf("kisee-b%02d", i), now) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got, err := b.Members(ctx, "team", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 60 {
		t.Fatalf("%d members, want 60", len(got))
	}
}

// An in-memory store serves reads and writes on its one connection.
func TestSQLiteInMemory(t *testing.T) {
	ctx := t.Context()
	s := open(t, sqldb.Target{Dialect: sqldb.SQLite, DSN: ":memory:"})
	now := time.Now()
	if err := s.CreateGroup(ctx, "kisee-root", "admin", "kisee-root", now); err != nil {
		t.Fatal(err)
	}
	got, err := s.VisibleGroups(ctx, "kisee-root", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"admin", "admin.staff"}; !slices.Equal(got, want) {
		t.Fatalf("visible groups = %q, want %q", got, want)
	}
}

// A PostgreSQL server that cannot be reached gives ErrUnavailable, and the
// error does not carry the password.
func TestPostgresUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := sqlstore.Open(ctx, sqldb.Target{Dialect: sqldb.Postgres,
		DSN: "postgres://pasee:s3cr3t-pw@127.0.0.1:1/pasee?sslmode=disable&connect_timeout=2"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, call := range map[string]func() error{
		"Ping":        func() error { return s.Ping(ctx) },
		"GroupExists": func() error { _, err := s.GroupExists(ctx, "staff"); return err },
		"AddMember":   func() error { return s.AddMember(ctx, "cli", "staff", "kisee-a", time.Now()) },
		"Rotate": func() error {
			_, _, err := s.Rotate(ctx, "sid", "jti", pasee.NextTokens{}, time.Now(), 0)
			return err
		},
		"Migrate": func() error { return s.Migrate(ctx) },
	} {
		err := call()
		if !errors.Is(err, pasee.ErrUnavailable) {
			t.Errorf("%s: error = %v, want ErrUnavailable", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("%s: error shows the password: %v", name, err)
		}
	}
}

// Names compare bytewise whatever the database's collation, which the
// subtree ranges and the pages' order rely on.
func TestPostgresNameColumnsAreCollateC(t *testing.T) {
	url := pgtest.URL(t)
	open(t, sqldb.Target{Dialect: sqldb.Postgres, DSN: url})
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	rows, err := conn.Query(t.Context(), `
		SELECT table_name || '.' || column_name, coalesce(collation_name, '')
		FROM information_schema.columns
		WHERE table_schema = current_schema()
		  AND (table_name, column_name) IN (('pasee_users', 'name'), ('pasee_groups', 'name'), ('pasee_groups', 'parent_name'),
		      ('pasee_memberships', 'group_name'), ('pasee_memberships', 'user_name'), ('pasee_sessions', 'user_name'))`)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for rows.Next() {
		var col, coll string
		if err := rows.Scan(&col, &coll); err != nil {
			t.Fatal(err)
		}
		seen++
		if coll != "C" {
			t.Errorf("%s has collation %q, want C", col, coll)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != 6 {
		t.Fatalf("%d name columns found, want 6", seen)
	}
}
