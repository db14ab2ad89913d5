package sqlquery_test

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/GehirnInc/crypt/sha512_crypt"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/pelletier/go-toml/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/kisee/backend/backendtest"
	"github.com/kisee-pasee/suite/internal/kisee/backend/sqlquery"
	"github.com/kisee-pasee/suite/internal/password"
	"github.com/kisee-pasee/suite/internal/pgtest"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/internal/sqldb"
)

var dialects = []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres}

// djangoPBKDF2 is Django's default hasher format.
func djangoPBKDF2(t testing.TB, pw string) string {
	salt := rand.Text()[:22]
	const iter = 5000 // Django uses 870000 today; tests need not wait
	key, err := pbkdf2.Key(sha256.New, pw, []byte(salt), iter, 32)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("pbkdf2_sha256$%d$%s$%s", iter, salt, base64.StdEncoding.EncodeToString(key))
}

func bcryptHash(t testing.TB, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func sha512Crypt(t testing.TB, pw string) string {
	h, err := sha512_crypt.New().Generate([]byte(pw), nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// oldArgon2 has parameters other than the backend hasher's, so that a
// login upgrades them.
var oldArgon2 = password.NewHasher(password.Params{Memory: 2048, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 0)

func argon2Hash(t testing.TB, pw string) string {
	h, err := oldArgon2.Hash(context.Background(), pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// schema is another application's user table.
type schema struct {
	name   string
	ddl    map[sqldb.Dialect]string
	insert string // $1 login, $2 email, $3 hash
	hash   func(testing.TB, string) string
	opts   sqlquery.Options // without URL
}

var schemas = []schema{
	{
		name: "django auth_user, PBKDF2, all queries",
		ddl: map[sqldb.Dialect]string{
			sqldb.SQLite: `CREATE TABLE auth_user (id integer NOT NULL PRIMARY KEY AUTOINCREMENT, password varchar(128) NOT NULL,
				last_login datetime NULL, is_superuser bool NOT NULL DEFAULT 0, username varchar(150) NOT NULL UNIQUE,
				first_name varchar(150) NOT NULL DEFAULT '', last_name varchar(150) NOT NULL DEFAULT '', email varchar(254) NOT NULL,
				is_staff bool NOT NULL DEFAULT 0, is_active bool NOT NULL DEFAULT 1, date_joined datetime NOT NULL DEFAULT CURRENT_TIMESTAMP)`,
			sqldb.Postgres: `CREATE TABLE auth_user (id serial PRIMARY KEY, password varchar(128) NOT NULL,
				last_login timestamptz NULL, is_superuser boolean NOT NULL DEFAULT false, username varchar(150) NOT NULL UNIQUE,
				first_name varchar(150) NOT NULL DEFAULT '', last_name varchar(150) NOT NULL DEFAULT '', email varchar(254) NOT NULL,
				is_staff boolean NOT NULL DEFAULT false, is_active boolean NOT NULL DEFAULT true, date_joined timestamptz NOT NULL DEFAULT now())`,
		},
		insert: `INSERT INTO auth_user (username, email, password) VALUES ($1, $2, $3)`,
		hash:   djangoPBKDF2,
		opts: sqlquery.Options{
			UserQuery:           `SELECT id, username, email, password AS password_hash, is_superuser FROM auth_user WHERE username = $1 AND is_active`,
			EmailQuery:          `SELECT id, username, email, is_superuser FROM auth_user WHERE lower(email) = lower($1) AND is_active`,
			UpdatePasswordQuery: `UPDATE auth_user SET password = $1 WHERE username = $2`,
		},
	},
	{
		name: "forum members, bcrypt, login only",
		ddl: map[sqldb.Dialect]string{
			sqldb.SQLite:   `CREATE TABLE members (member_id text PRIMARY KEY, login text NOT NULL, mail text, pw_bcrypt text)`,
			sqldb.Postgres: `CREATE TABLE members (member_id text PRIMARY KEY, login text NOT NULL, mail text, pw_bcrypt text)`,
		},
		insert: `INSERT INTO members (member_id, login, mail, pw_bcrypt) VALUES ('m-' || $1, $1, $2, $3)`,
		hash:   bcryptHash,
		opts: sqlquery.Options{
			UserQuery: `SELECT member_id AS id, mail AS email, pw_bcrypt AS password_hash FROM members WHERE login = $1`,
		},
	},
	{
		name: "unix accounts, SHA-512-crypt, email lookup",
		ddl: map[sqldb.Dialect]string{
			sqldb.SQLite:   `CREATE TABLE accounts (uid integer PRIMARY KEY, name text UNIQUE, email_address text, crypt text, wheel integer NOT NULL DEFAULT 0)`,
			sqldb.Postgres: `CREATE TABLE accounts (uid serial PRIMARY KEY, name text UNIQUE, email_address text, crypt text, wheel integer NOT NULL DEFAULT 0)`,
		},
		insert: `INSERT INTO accounts (name, email_address, crypt) VALUES ($1, $2, $3)`,
		hash:   sha512Crypt,
		opts: sqlquery.Options{
			UserQuery:  `SELECT uid AS id, name AS username, email_address AS email, crypt AS password_hash, wheel = 1 AS is_superuser FROM accounts WHERE name = $1`,
			EmailQuery: `SELECT uid AS id, name AS username, email_address AS email FROM accounts WHERE upper(email_address) = upper($1)`,
		},
	},
	{
		name: "app users, argon2id, password updates",
		ddl: map[sqldb.Dialect]string{
			sqldb.SQLite:   `CREATE TABLE app_users (uuid text PRIMARY KEY DEFAULT (lower(hex(randomblob(16)))), handle text NOT NULL UNIQUE, contact text, secret text)`,
			sqldb.Postgres: `CREATE TABLE app_users (uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(), handle text NOT NULL UNIQUE, contact text, secret text)`,
		},
		insert: `INSERT INTO app_users (handle, contact, secret) VALUES ($1, $2, $3)`,
		hash:   argon2Hash,
		opts: sqlquery.Options{
			UserQuery:           `SELECT uuid AS id, contact AS email, secret AS password_hash FROM app_users WHERE handle = $1`,
			UpdatePasswordQuery: `UPDATE app_users SET secret = $1 WHERE handle = $2`,
		},
	},
}

// foreignDB creates s's table in a fresh database of dialect, seeded with
// backendtest.Users, and returns its URL and a connection for checks.
func foreignDB(t *testing.T, d sqldb.Dialect, s schema) (string, *sql.DB) {
	t.Helper()
	ctx := context.Background()
	var url string
	target := sqldb.Target{Dialect: d}
	if d == sqldb.Postgres {
		url = pgtest.URL(t)
		target.DSN = url
	} else {
		target.DSN = filepath.Join(t.TempDir(), "app.db")
		url = "sqlite:" + target.DSN
	}
	var db *sql.DB
	var err error
	if d == sqldb.Postgres {
		// Plain pgx/stdlib, whose Close closes its connections (the
		// *sql.DB of sqldb.OpenPostgres leaves its pool open); two
		// connections are enough for seeding and checks.
		if db, err = sql.Open("pgx", url); err == nil {
			db.SetMaxOpenConns(2)
		}
	} else {
		db, err = sqldb.Open(ctx, target)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.ExecContext(ctx, s.ddl[d]); err != nil {
		t.Fatalf("create %s: %v", s.name, err)
	}
	for _, u := range backendtest.Users {
		if _, err := db.ExecContext(ctx, s.insert, u.Username, u.Email, s.hash(t, u.Password)); err != nil {
			t.Fatalf("seed %s: %v", s.name, err)
		}
	}
	return url, db
}

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func hasher() *password.Hasher { return password.NewHasher(backendtest.FastParams, 0) }

func open(t *testing.T, url string, o sqlquery.Options) (sqlquery.Backend, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	o.URL = url
	b, err := sqlquery.Open(context.Background(), o, hasher(), slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, logs
}

func TestConformance(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		for _, s := range schemas {
			t.Run(string(d)+"/"+s.name, func(t *testing.T) {
				t.Parallel()
				backendtest.Run(t, func(t *testing.T) kisee.Backend {
					url, _ := foreignDB(t, d, s)
					b, _ := open(t, url, s.opts)
					return b
				})
			})
		}
	}
}

// The backend has a capability exactly when its query is configured.
func TestCapabilitiesFollowTheQueries(t *testing.T) {
	t.Parallel()
	url, _ := foreignDB(t, sqldb.SQLite, schemas[0])
	base := schemas[0].opts
	for _, tc := range []struct {
		email, update    bool
		finder, pwSetter bool
	}{
		{false, false, false, false},
		{true, false, true, false},
		{false, true, false, true},
		{true, true, true, true},
	} {
		o := sqlquery.Options{UserQuery: base.UserQuery}
		if tc.email {
			o.EmailQuery = base.EmailQuery
		}
		if tc.update {
			o.UpdatePasswordQuery = base.UpdatePasswordQuery
		}
		b, _ := open(t, url, o)
		_, finder := b.(kisee.UserFinder)
		_, setter := b.(kisee.PasswordSetter)
		_, registerer := b.(kisee.Registerer)
		if finder != tc.finder || setter != tc.pwSetter || registerer {
			t.Errorf("email_query %v, update_password_query %v: UserFinder %v, PasswordSetter %v, Registerer %v",
				tc.email, tc.update, finder, setter, registerer)
		}
	}
}

func countRows(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// Logins and emails are bound parameters: SQL in them matches nobody,
// errors nothing and changes nothing.
func TestSQLInjection(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			url, db := foreignDB(t, d, schemas[0])
			b, _ := open(t, url, schemas[0].opts)
			ctx := context.Background()
			for _, login := range []string{
				"x' OR '1'='1", "alice' --", "alice'/*", `alice" OR "1"="1`, "' OR 1=1 --",
				"alice'; DROP TABLE auth_user; --", "alice' UNION SELECT 1, 'alice', 'a@b', 'x', true --",
			} {
				for _, pw := range []string{"x", "' OR '1'='1", backendtest.Users[0].Password} {
					if _, err := b.Identify(ctx, login, pw); !errors.Is(err, kisee.ErrInvalidCredentials) {
						t.Errorf("Identify(%q, %q): err = %v, want ErrInvalidCredentials", login, pw, err)
					}
				}
				if _, err := b.(kisee.UserFinder).FindByUsername(ctx, login); !errors.Is(err, kisee.ErrUserNotFound) {
					t.Errorf("FindByUsername(%q): %v", login, err)
				}
				if _, err := b.(kisee.UserFinder).FindByEmail(ctx, login); !errors.Is(err, kisee.ErrUserNotFound) {
					t.Errorf("FindByEmail(%q): %v", login, err)
				}
				if err := b.(kisee.PasswordSetter).SetPassword(ctx, login, "pwned password"); !errors.Is(err, kisee.ErrUserNotFound) {
					t.Errorf("SetPassword(%q): %v", login, err)
				}
			}
			if n := countRows(t, db, "auth_user"); n != len(backendtest.Users) {
				t.Fatalf("auth_user has %d rows", n)
			}
			for _, u := range backendtest.Users {
				if _, err := b.Identify(ctx, u.Username, u.Password); err != nil {
					t.Errorf("%s can no longer log in: %v", u.Username, err)
				}
			}
		})
	}
}

func storedHash(t *testing.T, db *sql.DB, login string) string {
	t.Helper()
	var h string
	if err := db.QueryRow(`SELECT password FROM auth_user WHERE username = $1`, login).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

// Imported hashes are upgraded to argon2id at login when the settings say
// how to write them, and left alone otherwise.
func TestRehashOnLogin(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url, db := foreignDB(t, d, schemas[0])
			readOnly := schemas[0].opts
			readOnly.UpdatePasswordQuery = ""
			ro, _ := open(t, url, readOnly)
			before := storedHash(t, db, "alice")
			if _, err := ro.Identify(ctx, "alice", backendtest.Users[0].Password); err != nil {
				t.Fatal(err)
			}
			if got := storedHash(t, db, "alice"); got != before {
				t.Fatalf("without update_password_query the hash changed to %q", got)
			}

			rw, _ := open(t, url, schemas[0].opts)
			if _, err := rw.Identify(ctx, "alice", "wrong password"); !errors.Is(err, kisee.ErrInvalidCredentials) {
				t.Fatal(err)
			}
			if got := storedHash(t, db, "alice"); got != before {
				t.Fatal("a failed login rewrote the hash")
			}
			if _, err := rw.Identify(ctx, "alice", backendtest.Users[0].Password); err != nil {
				t.Fatal(err)
			}
			after := storedHash(t, db, "alice")
			if !strings.HasPrefix(after, "$argon2id$") {
				t.Fatalf("hash after login: %q, want argon2id", after)
			}
			if _, err := rw.Identify(ctx, "alice", backendtest.Users[0].Password); err != nil {
				t.Fatalf("login with the upgraded hash: %v", err)
			}
			if storedHash(t, db, "alice") != after {
				t.Fatal("a current hash was rewritten")
			}
			if storedHash(t, db, "bob") == after || !strings.HasPrefix(storedHash(t, db, "bob"), "pbkdf2_sha256$") {
				t.Fatal("bob's hash was touched")
			}
		})
	}
}

// A query that matches several users refuses the login and says why.
func TestAmbiguousLogin(t *testing.T) {
	t.Parallel()
	url, db := foreignDB(t, sqldb.SQLite, schemas[0])
	if _, err := db.Exec(`INSERT INTO auth_user (username, email, password) VALUES ('ALICE', 'other@example.com', $1)`,
		djangoPBKDF2(t, backendtest.Users[0].Password)); err != nil {
		t.Fatal(err)
	}
	o := schemas[0].opts
	o.UserQuery = strings.Replace(o.UserQuery, "username = $1", "lower(username) = lower($1)", 1)
	b, logs := open(t, url, o)
	ctx := context.Background()
	if _, err := b.Identify(ctx, "alice", backendtest.Users[0].Password); !errors.Is(err, kisee.ErrInvalidCredentials) {
		t.Fatalf("ambiguous login: %v", err)
	}
	if !strings.Contains(logs.String(), "several users") {
		t.Errorf("ambiguity not logged:\n%s", logs)
	}
	if _, err := b.(kisee.UserFinder).FindByUsername(ctx, "alice"); !errors.Is(err, kisee.ErrUserNotFound) {
		t.Errorf("ambiguous find: %v", err)
	}
	if _, err := b.Identify(ctx, "bob", backendtest.Users[1].Password); err != nil {
		t.Errorf("bob is not ambiguous: %v", err)
	}
}

// Columns map to the user: id (an integer here) is the token's subject,
// is_superuser is read, a user without a usable password cannot log in.
func TestRowMapping(t *testing.T) {
	t.Parallel()
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url, db := foreignDB(t, d, schemas[0])
			if _, err := db.Exec(`UPDATE auth_user SET is_superuser = TRUE WHERE username = 'alice'`); err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{
				`INSERT INTO auth_user (username, email, password) VALUES ('sso', 'sso@example.com', '!Xc8vT1unusable')`,
				`INSERT INTO auth_user (username, email, password) VALUES ('nopw', 'nopw@example.com', '')`,
				`INSERT INTO auth_user (username, email, password) VALUES ('md5', 'md5@example.com', 'md5$salt$0123456789abcdef')`,
			} {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			b, logs := open(t, url, schemas[0].opts)
			var wantID string
			if err := db.QueryRow(`SELECT id FROM auth_user WHERE username = 'alice'`).Scan(&wantID); err != nil {
				t.Fatal(err)
			}
			u, err := b.Identify(ctx, "alice", backendtest.Users[0].Password)
			if err != nil {
				t.Fatal(err)
			}
			if u.ID != wantID || u.Username != "alice" || u.Email != "alice@example.com" || !u.IsSuperuser {
				t.Errorf("alice = %+v, want id %s, superuser", u, wantID)
			}
			if u, _ := b.Identify(ctx, "bob", backendtest.Users[1].Password); u.IsSuperuser {
				t.Error("bob is superuser")
			}
			for _, login := range []string{"sso", "nopw", "md5"} {
				for _, pw := range []string{"", "x", "Xc8vT1unusable"} {
					if _, err := b.Identify(ctx, login, pw); !errors.Is(err, kisee.ErrInvalidCredentials) {
						t.Errorf("%s/%q: %v", login, pw, err)
					}
				}
			}
			out := logs.String()
			if strings.Contains(out, "login=sso") {
				t.Errorf("Django's unusable password is logged as a problem:\n%s", out)
			}
			if !strings.Contains(out, "login=md5") || strings.Contains(out, "0123456789abcdef") {
				t.Errorf("unsupported hash not reported, or reported with its value:\n%s", out)
			}
		})
	}
}

// An update query that would change several rows is rolled back.
func TestSetPasswordChangingSeveralRowsIsRolledBack(t *testing.T) {
	t.Parallel()
	url, db := foreignDB(t, sqldb.SQLite, schemas[0])
	o := schemas[0].opts
	o.UpdatePasswordQuery = `UPDATE auth_user SET password = $1 WHERE username = $2 OR is_active`
	b, _ := open(t, url, o)
	before := storedHash(t, db, "bob")
	if err := b.(kisee.PasswordSetter).SetPassword(context.Background(), "alice", "new password"); err == nil || !strings.Contains(err.Error(), "2 rows") {
		t.Fatalf("err = %v", err)
	}
	if storedHash(t, db, "bob") != before {
		t.Fatal("the update was not rolled back")
	}
}

// An unknown user costs a verification of the kind of hash the database
// holds, not the hasher's cheaper dummy.
func TestUnknownUserCostsLikeAWrongPassword(t *testing.T) {
	t.Parallel()
	url, db := foreignDB(t, sqldb.SQLite, schemas[1])
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), 6)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE members SET pw_bcrypt = $1`, string(h)); err != nil {
		t.Fatal(err)
	}
	b, _ := open(t, url, schemas[1].opts)
	fastest := func(user string) time.Duration {
		best := time.Hour
		for range 3 {
			start := time.Now()
			if _, err := b.Identify(context.Background(), user, "wrong"); !errors.Is(err, kisee.ErrInvalidCredentials) {
				t.Fatalf("%s: %v", user, err)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	known, unknown := fastest("alice"), fastest("mallory")
	if unknown < known/3 {
		t.Errorf("unknown user answered in %v, a wrong password in %v: timing tells them apart", unknown, known)
	}
}

// Mistakes in the settings stop the start, with the option named.
func TestOpenRefusesBadSettings(t *testing.T) {
	t.Parallel()
	url, _ := foreignDB(t, sqldb.SQLite, schemas[0])
	good := schemas[0].opts
	missing := filepath.Join(t.TempDir(), "missing.db")
	for name, tc := range map[string]struct {
		o    sqlquery.Options
		want string
	}{
		"no url":                {sqlquery.Options{UserQuery: good.UserQuery}, "url is required"},
		"unsupported url":       {sqlquery.Options{URL: "mysql://x", UserQuery: good.UserQuery}, "unsupported database URL"},
		"missing sqlite file":   {sqlquery.Options{URL: "sqlite:" + missing, UserQuery: good.UserQuery}, "must exist"},
		"no user_query":         {sqlquery.Options{URL: url}, "user_query is required"},
		"user_query without $1": {sqlquery.Options{URL: url, UserQuery: `SELECT id, password AS password_hash FROM auth_user WHERE username = 'alice'`}, "user_query must take the login as the bound parameter $1"},
		"$10 is not $1":         {sqlquery.Options{URL: url, UserQuery: `SELECT id, password AS password_hash FROM auth_user WHERE username = $10`}, "user_query must take"},
		"question mark":         {sqlquery.Options{URL: url, UserQuery: `SELECT id, password AS password_hash FROM auth_user WHERE username = ?`}, "user_query must take"},
		"email_query without $1": {sqlquery.Options{URL: url, UserQuery: good.UserQuery,
			EmailQuery: `SELECT id, username FROM auth_user WHERE email = 'x'`}, "email_query must take the email"},
		"update without $2": {sqlquery.Options{URL: url, UserQuery: good.UserQuery,
			UpdatePasswordQuery: `UPDATE auth_user SET password = $1 WHERE username = 'alice'`}, "update_password_query must take"},
		"syntax error":      {sqlquery.Options{URL: url, UserQuery: `SELEC id FROM auth_user WHERE username = $1`}, "user_query does not run"},
		"no such table":     {sqlquery.Options{URL: url, UserQuery: `SELECT id, password AS password_hash FROM users WHERE username = $1`}, "user_query does not run"},
		"unknown column":    {sqlquery.Options{URL: url, UserQuery: `SELECT id, password FROM auth_user WHERE username = $1`}, `user_query: unknown result column "password"`},
		"no password_hash":  {sqlquery.Options{URL: url, UserQuery: `SELECT id, email FROM auth_user WHERE username = $1`}, `user_query: missing result column "password_hash"`},
		"no id":             {sqlquery.Options{URL: url, UserQuery: `SELECT password AS password_hash FROM auth_user WHERE username = $1`}, `missing result column "id"`},
		"email no username": {sqlquery.Options{URL: url, UserQuery: good.UserQuery, EmailQuery: `SELECT id, email FROM auth_user WHERE email = $1`}, `email_query: missing result column "username"`},
		"bad update": {sqlquery.Options{URL: url, UserQuery: good.UserQuery,
			UpdatePasswordQuery: `UPDATE nothere SET password = $1 WHERE username = $2`}, "update_password_query does not compile"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := sqlquery.Open(context.Background(), tc.o, hasher(), slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("opening a missing SQLite database created it: %v", err)
	}
}

// A database down at start does not stop Kisee; logins then answer
// ErrUnavailable (503, not 403), and no password leaks in errors or logs.
func TestUnreachableDatabase(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-db-password"
	url := "postgres://kisee:" + secret + "@127.0.0.1:1/app?connect_timeout=2"
	o := schemas[0].opts
	o.URL = url
	logs := &logBuffer{}
	ctx := context.Background()
	b, err := sqlquery.Open(ctx, o, hasher(), slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatalf("Open with the database down: %v", err)
	}
	defer b.Close()
	_, err = b.Identify(ctx, "alice", "whatever")
	if !errors.Is(err, kisee.ErrUnavailable) {
		t.Fatalf("Identify: err = %v, want ErrUnavailable", err)
	}
	herr := b.Health(ctx)
	if herr == nil {
		t.Fatal("Health is fine with the database down")
	}
	_, ferr := b.(kisee.UserFinder).FindByEmail(ctx, "alice@example.com")
	if !errors.Is(ferr, kisee.ErrUnavailable) {
		t.Errorf("FindByEmail: %v", ferr)
	}
	for _, s := range []string{err.Error(), herr.Error(), ferr.Error(), logs.String()} {
		if strings.Contains(s, secret) {
			t.Errorf("the database password leaks: %s", s)
		}
	}
}

// exampleOptions reads the options of configs/kisee-sql-query.toml as the
// settings loader does (strictly: a misspelt key fails).
func exampleOptions(t *testing.T) sqlquery.Options {
	t.Helper()
	return configOptions(t, "kisee-sql-query.toml")
}

// configOptions reads the sql-query options of configs/name strictly.
func configOptions(t *testing.T, name string) sqlquery.Options {
	t.Helper()
	path := filepath.Join("..", "..", "..", "..", "configs", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		IdentityBackend struct {
			Class   string         `toml:"class"`
			Options map[string]any `toml:"options"`
		} `toml:"identity_backend"`
	}
	if err := toml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.IdentityBackend.Class != "sql-query" {
		t.Fatalf("class = %q", doc.IdentityBackend.Class)
	}
	src, err := settings.Parse(path, data, "")
	if err != nil {
		t.Fatal(err)
	}
	var o sqlquery.Options
	if err := src.DecodeSection("identity_backend.options", doc.IdentityBackend.Options, &o); err != nil {
		t.Fatal(err)
	}
	return o
}

// The example settings work on a Django auth_user table, both ways: Kisee
// reads Django's hashes, and the hashes it writes keep Django's form.
func TestExampleSettings(t *testing.T) {
	t.Parallel()
	o := exampleOptions(t)
	django := schemas[0]
	for _, d := range dialects {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			backendtest.Run(t, func(t *testing.T) kisee.Backend {
				url, _ := foreignDB(t, d, django)
				b, _ := open(t, url, o)
				return b
			})
			t.Run("Django argon2 form", func(t *testing.T) {
				url, db := foreignDB(t, d, django)
				b, _ := open(t, url, o)
				ctx := context.Background()
				if _, err := b.Identify(ctx, "alice", alice.Password); err != nil {
					t.Fatal(err)
				}
				if h := storedHash(t, db, "alice"); !strings.HasPrefix(h, "argon2$argon2id$v=19$") {
					t.Fatalf("upgraded hash %q is not in Django's form", h)
				}
				if _, err := b.Identify(ctx, "alice", alice.Password); err != nil {
					t.Fatalf("login after the upgrade: %v", err)
				}
				if _, err := b.Identify(ctx, "alice", "wrong"); !errors.Is(err, kisee.ErrInvalidCredentials) {
					t.Fatalf("wrong password after the upgrade: %v", err)
				}
			})
		})
	}
}

var alice = backendtest.Users[0]
