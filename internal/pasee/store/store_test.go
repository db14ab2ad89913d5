package store_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/store"
	"github.com/kisee-pasee/suite/internal/pgtest"
)

func TestOpen(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"a sqlite URL opens a SQLite store", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "pasee.db") }},
		{"a postgres URL opens a PostgreSQL store", func(t *testing.T) string { return pgtest.URL(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			s, err := store.Open(ctx, tc.url(t), nil, true)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.EnsureGroup(ctx, "cli", "a.b", time.Now()); err != nil {
				t.Fatal(err)
			}
			ok, err := s.GroupExists(ctx, "a.b.staff")
			if err != nil || !ok {
				t.Fatalf("GroupExists(a.b.staff) = %v, %v", ok, err)
			}
		})
	}
}

func TestOpenWithoutMigrating(t *testing.T) {
	ctx := t.Context()
	s, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "pasee.db"), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.GroupExists(ctx, "staff")
	if err == nil {
		t.Fatal("an unmigrated store answered")
	}
	if errors.Is(err, pasee.ErrUnavailable) {
		t.Fatalf("a missing table is not unavailability: %v", err)
	}
}

func TestOpenRefusesUnknownURLs(t *testing.T) {
	_, err := store.Open(t.Context(), "mysql://root:hunter2@db/pasee", nil, true)
	if err == nil {
		t.Fatal("a mysql URL was accepted")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the error shows the password: %v", err)
	}
}
