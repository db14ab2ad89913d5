package sqlquery_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/kisee/backend/backendtest"
	"github.com/kisee-pasee/suite/internal/sqldb"
)

// originalKisee is the users table of the original (Python) Kisee's
// PostgreSQL backend (postgres_backend/schema_01.sql), with passwords as
// Python's bcrypt wrote them ("$2b$") and uuid user ids.
var originalKisee = schema{
	name: "original Kisee users",
	ddl: map[sqldb.Dialect]string{sqldb.Postgres: `CREATE TABLE IF NOT EXISTS users(
    user_id TEXT PRIMARY KEY,
    username TEXT,
    email TEXT,
    password TEXT,
    is_superuser BOOLEAN DEFAULT FALSE
)`},
	insert: `INSERT INTO users (user_id, username, email, password, is_superuser)
		VALUES (gen_random_uuid()::text, $1, $2, $3, $1 = 'alice')`,
	hash: func(t testing.TB, pw string) string {
		h := bcryptHash(t, pw)
		return "$2b$" + strings.TrimPrefix(h, "$2a$") // Python's bcrypt prefix; same algorithm
	},
}

// The documented configurations serve the original Kisee's users as they
// are: by username or email, sub = user_id, is_superuser read. The
// read-only one never writes (the original Kisee reads only "$2b$"); the
// upgrade one rewrites each hash to argon2id at login.
func TestOriginalKiseeUsers(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"kisee-original-readonly.toml", "kisee-original-upgrade.toml"} {
		o := configOptions(t, name)
		upgrades := o.UpdatePasswordQuery != ""
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			backendtest.Run(t, func(t *testing.T) kisee.Backend {
				url, _ := foreignDB(t, sqldb.Postgres, originalKisee)
				b, _ := open(t, url, o)
				return b
			})
			url, db := foreignDB(t, sqldb.Postgres, originalKisee)
			b, _ := open(t, url, o)
			ctx := context.Background()
			var aliceID string
			if err := db.QueryRow(`SELECT user_id FROM users WHERE username = 'alice'`).Scan(&aliceID); err != nil {
				t.Fatal(err)
			}
			before := originalHash(t, db, "alice")
			if !strings.HasPrefix(before, "$2b$") {
				t.Fatalf("seeded hash %q", before)
			}
			if _, err := b.Identify(ctx, "alice", "wrong password"); !errors.Is(err, kisee.ErrInvalidCredentials) {
				t.Fatalf("wrong password: %v", err)
			}
			// By email first: the upgrade must find the row by the login as typed.
			for _, login := range []string{alice.Email, alice.Username} {
				u, err := b.Identify(ctx, login, alice.Password)
				if err != nil {
					t.Fatalf("login %s: %v", login, err)
				}
				if u.ID != aliceID || u.Username != "alice" || !u.IsSuperuser || u.Email != alice.Email {
					t.Fatalf("login %s: %+v, want id %s, superuser", login, u, aliceID)
				}
			}
			after := originalHash(t, db, "alice")
			switch {
			case upgrades && !strings.HasPrefix(after, "$argon2id$"):
				t.Fatalf("hash after login %q, want argon2id", after)
			case !upgrades && after != before:
				t.Fatalf("the read-only configuration rewrote the hash to %q", after)
			}
			if got := originalHash(t, db, "bob"); !strings.HasPrefix(got, "$2b$") {
				t.Fatalf("bob's hash was touched: %q", got)
			}
			if u, err := b.Identify(ctx, "bob@example.com", backendtest.Users[1].Password); err != nil || u.IsSuperuser {
				t.Fatalf("bob by email: %+v, %v", u, err)
			}
			if _, err := b.Identify(ctx, "alice", alice.Password); err != nil {
				t.Fatalf("login after the upgrade: %v", err)
			}
			// One user's username that is another's email is ambiguous: refused.
			if _, err := db.Exec(`INSERT INTO users (user_id, username, email, password) VALUES ('x', 'bob@example.com', 'x@example.com', $1)`, before); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Identify(ctx, "bob@example.com", backendtest.Users[1].Password); !errors.Is(err, kisee.ErrInvalidCredentials) {
				t.Fatalf("ambiguous login: %v", err)
			}
		})
	}
}

func originalHash(t *testing.T, db *sql.DB, username string) string {
	t.Helper()
	var h string
	if err := db.QueryRow(`SELECT password FROM users WHERE username = $1`, username).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}
