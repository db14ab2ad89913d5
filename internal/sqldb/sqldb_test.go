package sqldb

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/kisee-pasee/suite/internal/pgtest"
)

// Closing a PostgreSQL *sql.DB must close its connections: a leak here
// exhausts the server's max_connections after a few restarts of a store.
func TestPostgresCloseReleasesConnections(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	count := func() int {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sqldb-close-test'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	tagged := url + "&application_name=sqldb-close-test"
	if !strings.Contains(url, "?") {
		tagged = url + "?application_name=sqldb-close-test"
	}
	for range 3 {
		db, err := OpenPostgres(ctx, tagged)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		if n := count(); n < 1 {
			t.Fatalf("%d connections open while the DB is in use", n)
		}
		db.Close()
	}
	if n := count(); n != 0 {
		t.Fatalf("%d connections left open after Close", n)
	}
}

func TestParseURL(t *testing.T) {
	for raw, want := range map[string]Target{
		"sqlite:kisee.db":                  {SQLite, "kisee.db"},
		"sqlite:///var/lib/kisee/kisee.db": {SQLite, "/var/lib/kisee/kisee.db"},
		"sqlite::memory:":                  {SQLite, ":memory:"},
		"postgres://u@h/db":                {Postgres, "postgres://u@h/db"},
		"postgresql://u@h/db":              {Postgres, "postgresql://u@h/db"},
	} {
		got, err := ParseURL(raw)
		if err != nil || got != want {
			t.Errorf("%s: %+v %v", raw, got, err)
		}
	}
	for _, bad := range []string{"", "mysql://x", "sqlite:", "kisee.db"} {
		if _, err := ParseURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	_, err := ParseURL("mysql://user:hunter2@host/db")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("password in error: %v", err)
	}
}
