package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/store/postgres"
	"github.com/kisee-pasee/suite/internal/pasee/store/storetest"
	"github.com/kisee-pasee/suite/internal/pgtest"
)

func open(t *testing.T) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// The test server is shared with other packages' tests: ride out a
	// moment of "too many clients".
	for attempt := 1; ; attempt++ {
		err = s.Migrate(t.Context())
		if err == nil || attempt == 5 || !errors.Is(err, pasee.ErrUnavailable) {
			break
		}
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) pasee.Store { return open(t) })
}

func TestMigrateTwice(t *testing.T) {
	s := open(t)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
}

// A server that cannot be reached gives ErrUnavailable, and the error does
// not carry the password.
func TestUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, "postgres://pasee:s3cr3t-pw@127.0.0.1:1/pasee?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, call := range map[string]func() error{
		"Ping":        func() error { return s.Ping(ctx) },
		"GroupExists": func() error { _, err := s.GroupExists(ctx, "staff"); return err },
		"AddMember":   func() error { return s.AddMember(ctx, "cli", "staff", "kisee-a", time.Now()) },
		"Migrate":     func() error { return s.Migrate(ctx) },
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
func TestNameColumnsAreCollateC(t *testing.T) {
	url := pgtest.URL(t)
	s, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
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
