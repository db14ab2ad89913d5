package sql_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/kisee/backend/backendtest"
	sqlbackend "github.com/kisee-pasee/suite/internal/kisee/backend/sql"
	"github.com/kisee-pasee/suite/internal/password"
	"github.com/kisee-pasee/suite/internal/pgtest"
	"github.com/kisee-pasee/suite/internal/sqldb"
	"github.com/kisee-pasee/suite/migrations"
)

// openDB returns a migrated database of dialect for one test.
func openDB(t *testing.T, dialect sqldb.Dialect) *sql.DB {
	t.Helper()
	ctx := context.Background()
	target := sqldb.Target{Dialect: sqldb.SQLite, DSN: filepath.Join(t.TempDir(), "kisee.db")}
	if dialect == sqldb.Postgres {
		target = sqldb.Target{Dialect: sqldb.Postgres, DSN: pgtest.URL(t)}
	}
	db, err := sqldb.Open(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	fsys, err := migrations.Kisee(string(dialect))
	if err != nil {
		t.Fatal(err)
	}
	if err := sqldb.Migrate(ctx, db, dialect, fsys, migrations.KiseeTable, nil); err != nil {
		t.Fatal(err)
	}
	return db
}

func seeded(t *testing.T, dialect sqldb.Dialect) (*sqlbackend.Backend, *sql.DB) {
	db := openDB(t, dialect)
	b := sqlbackend.New(db, password.NewHasher(backendtest.FastParams, 0), nil)
	for _, u := range backendtest.Users {
		if _, err := b.Register(context.Background(), kisee.NewUser{Username: u.Username, Email: u.Email, Password: u.Password}); err != nil {
			t.Fatal(err)
		}
	}
	return b, db
}

func TestConformance(t *testing.T) {
	for _, d := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			backendtest.Run(t, func(t *testing.T) kisee.Backend {
				b, _ := seeded(t, d)
				return b
			})
		})
	}
}

// Hashes imported from other systems log in, and are upgraded to argon2id
// by the first successful login.
func TestImportedHashesAreUpgraded(t *testing.T) {
	for _, d := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			b, db := seeded(t, d)
			ctx := context.Background()
			imported := map[string]string{
				"django": "pbkdf2_sha256$260000$seasalt$htpQDYdyy5MZ7bxS8mQJ0sjrWSVIvZJLEHJYe2DWsYQ=",
				"apache": "$2y$05$LAxYPZdhjaP2jYd.Q/x5xeXDknmEAlMq43GQ51kd3sxpdjQ/1TAXi",
				"unix":   "$6$saltsalt$hRM5XZ86KXEw9UOmjigeVqFgULtFB2sgpC9lXQDfMib3Zgw7mEiUvBJI2EplzfAqxL5Vvwp2scFtv/uamSo5z0",
			}
			for name, hash := range imported {
				if _, err := db.ExecContext(ctx, `INSERT INTO kisee_users (username, password_hash, is_superuser, created_at, updated_at) VALUES ($1, $2, FALSE, 0, 0)`, name, hash); err != nil {
					t.Fatal(err)
				}
			}
			for name := range imported {
				if _, err := b.Identify(ctx, name, "wrong"); err == nil {
					t.Fatalf("%s: wrong password accepted", name)
				}
				var before string
				_ = db.QueryRowContext(ctx, `SELECT password_hash FROM kisee_users WHERE username = $1`, name).Scan(&before)
				if before != imported[name] {
					t.Fatalf("%s: a failed login changed the hash", name)
				}
				if _, err := b.Identify(ctx, name, "correct horse"); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				var after string
				_ = db.QueryRowContext(ctx, `SELECT password_hash FROM kisee_users WHERE username = $1`, name).Scan(&after)
				if after[:10] != "$argon2id$" {
					t.Fatalf("%s: hash not upgraded: %s", name, after)
				}
				if _, err := b.Identify(ctx, name, "correct horse"); err != nil {
					t.Fatalf("%s after upgrade: %v", name, err)
				}
			}
		})
	}
}

func TestEnsureRoot(t *testing.T) {
	for _, d := range []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			db := openDB(t, d)
			b := sqlbackend.New(db, password.NewHasher(backendtest.FastParams, 0), nil)
			ctx := context.Background()
			pw, created, err := b.EnsureRoot(ctx)
			if err != nil || !created || len(pw) < 20 {
				t.Fatalf("first start: %q %v %v", pw, created, err)
			}
			u, err := b.Identify(ctx, "root", pw)
			if err != nil || !u.IsSuperuser {
				t.Fatalf("root: %+v %v", u, err)
			}
			pw2, created, err := b.EnsureRoot(ctx)
			if err != nil || created || pw2 != "" {
				t.Fatalf("second start must not recreate root: %q %v %v", pw2, created, err)
			}
		})
	}
}
