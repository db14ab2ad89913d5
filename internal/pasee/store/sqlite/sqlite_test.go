package sqlite_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/store/sqlite"
	"github.com/kisee-pasee/suite/internal/pasee/store/storetest"
	"github.com/kisee-pasee/suite/internal/sqldb"
)

func open(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "pasee.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) pasee.Store { return open(t) })
}

// New's store shares one pool between reads and writes: concurrent writers
// then queue on SQLite's busy timeout rather than in database/sql.
func TestConformanceOnePool(t *testing.T) {
	storetest.Run(t, func(t *testing.T) pasee.Store {
		db, err := sqldb.OpenSQLite(filepath.Join(t.TempDir(), "pasee.db"))
		if err != nil {
			t.Fatal(err)
		}
		s := sqlite.New(db)
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Two stores on one file stand for the server and the CLI's "pasee append"
// writing at the same time: neither loses a membership.
func TestTwoStoresOnOneFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "pasee.db")
	a, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := sqlite.Open(ctx, path)
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
// (sqldb's ":memory:" databases are shared by the whole process, so only
// this test uses one.)
func TestInMemory(t *testing.T) {
	ctx := t.Context()
	s, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
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

func TestMigrateTwice(t *testing.T) {
	s := open(t)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
}
