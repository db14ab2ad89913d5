package tokenstore_test

import (
	"errors"

	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/kisee/tokenstore"
	"github.com/kisee-pasee/suite/internal/pgtest"
	"github.com/kisee-pasee/suite/internal/sqldb"
	"github.com/kisee-pasee/suite/migrations"
)

// engines are the databases the token store runs on: every behaviour below
// runs against both.
var engines = []struct {
	name   string
	target func(t *testing.T) sqldb.Target
}{
	{"SQLite", func(t *testing.T) sqldb.Target {
		return sqldb.Target{Dialect: sqldb.SQLite, DSN: filepath.Join(t.TempDir(), "kisee.db")}
	}},
	{"PostgreSQL", func(t *testing.T) sqldb.Target {
		return sqldb.Target{Dialect: sqldb.Postgres, DSN: pgtest.URL(t)}
	}},
}

// open returns a token store on a fresh, migrated database.
func open(t *testing.T, target sqldb.Target) *tokenstore.Store {
	t.Helper()
	db, err := sqldb.Open(t.Context(), target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	fsys, err := migrations.Kisee(string(target.Dialect))
	if err != nil {
		t.Fatal(err)
	}
	if err := sqldb.Migrate(t.Context(), db, target.Dialect, fsys, migrations.KiseeTable, nil); err != nil {
		t.Fatal(err)
	}
	return tokenstore.New(db)
}

// now is the suite's clock: whole seconds, which the store keeps.
var now = time.Unix(1741964966, 0)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, s *tokenstore.Store, jti string) kisee.TokenRecord {
	t.Helper()
	r, err := s.Get(t.Context(), jti)
	must(t, err)
	return r
}

func record(t *testing.T, s *tokenstore.Store, jti, subject string, ttl time.Duration) {
	t.Helper()
	must(t, s.Record(t.Context(), kisee.TokenRecord{JTI: jti, Subject: subject, IssuedAt: now, ExpiresAt: now.Add(ttl)}))
}

func TestConformance(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			for name, test := range map[string]func(t *testing.T, s *tokenstore.Store){
				"RecordAndGet":             testRecordAndGet,
				"Revoke":                   testRevoke,
				"RevokeSubject":            testRevokeSubject,
				"SpendResetToken":          testSpendResetToken,
				"ConcurrentResetTokenUses": testConcurrentSpend,
				"Purge":                    testPurge,
				"Ping":                     func(t *testing.T, s *tokenstore.Store) { must(t, s.Ping(t.Context())) },
			} {
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					test(t, open(t, e.target(t)))
				})
			}
		})
	}
}

func testRecordAndGet(t *testing.T, s *tokenstore.Store) {
	record(t, s, "jti-1", "alice", time.Hour)
	r := get(t, s, "jti-1")
	if r.JTI != "jti-1" || r.Subject != "alice" || !r.IssuedAt.Equal(now) || !r.ExpiresAt.Equal(now.Add(time.Hour)) || r.Revoked() {
		t.Fatalf("record read back as %+v", r)
	}
	if _, err := s.Get(t.Context(), "never-issued"); !errors.Is(err, kisee.ErrTokenNotFound) {
		t.Fatalf("Get(unknown) = %v, want ErrTokenNotFound", err)
	}
	// A jti names one token: a second record under it is refused, not
	// merged into the first.
	err := s.Record(t.Context(), kisee.TokenRecord{JTI: "jti-1", Subject: "mallory", IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	if err == nil {
		t.Fatal("a second record with the same jti was accepted")
	}
	if r := get(t, s, "jti-1"); r.Subject != "alice" {
		t.Fatalf("the first record became %+v", r)
	}
}

func testRevoke(t *testing.T, s *tokenstore.Store) {
	record(t, s, "jti-1", "alice", time.Hour)
	record(t, s, "jti-2", "alice", time.Hour)
	must(t, s.Revoke(t.Context(), "jti-1", now.Add(time.Minute)))
	r := get(t, s, "jti-1")
	if !r.Revoked() || !r.RevokedAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("revoked record: %+v", r)
	}
	if get(t, s, "jti-2").Revoked() {
		t.Fatal("revoking one token revoked another")
	}
	// Idempotent: a second revocation keeps the time of the first.
	must(t, s.Revoke(t.Context(), "jti-1", now.Add(time.Hour)))
	if r := get(t, s, "jti-1"); !r.RevokedAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("second revocation moved revoked_at to %v", r.RevokedAt)
	}
	// Revoking what was never issued is no error and creates nothing.
	must(t, s.Revoke(t.Context(), "never-issued", now))
	if _, err := s.Get(t.Context(), "never-issued"); !errors.Is(err, kisee.ErrTokenNotFound) {
		t.Fatalf("Get after revoking an unknown jti = %v", err)
	}
}

func testRevokeSubject(t *testing.T, s *tokenstore.Store) {
	record(t, s, "a-live", "alice", time.Hour)
	record(t, s, "a-expired", "alice", -time.Minute)
	record(t, s, "a-revoked", "alice", time.Hour)
	must(t, s.Revoke(t.Context(), "a-revoked", now.Add(-time.Minute)))
	record(t, s, "b-live", "bob", time.Hour)
	must(t, s.RevokeSubject(t.Context(), "alice", now))
	if r := get(t, s, "a-live"); !r.RevokedAt.Equal(now) {
		t.Fatalf("alice's live token: %+v", r)
	}
	if r := get(t, s, "a-expired"); r.Revoked() {
		t.Fatalf("an expired token was revoked (it needs no revocation): %+v", r)
	}
	if r := get(t, s, "a-revoked"); !r.RevokedAt.Equal(now.Add(-time.Minute)) {
		t.Fatalf("a revoked token's time changed: %+v", r)
	}
	if get(t, s, "b-live").Revoked() {
		t.Fatal("revoking alice's tokens revoked bob's")
	}
}

func testSpendResetToken(t *testing.T, s *tokenstore.Store) {
	first, err := s.SpendResetToken(t.Context(), "reset-1", now.Add(time.Hour))
	must(t, err)
	if !first {
		t.Fatal("the first use of a reset token was refused")
	}
	again, err := s.SpendResetToken(t.Context(), "reset-1", now.Add(time.Hour))
	must(t, err)
	if again {
		t.Fatal("a reset token was spent twice")
	}
	other, err := s.SpendResetToken(t.Context(), "reset-2", now.Add(time.Hour))
	must(t, err)
	if !other {
		t.Fatal("spending one reset token spent another")
	}
}

// Many uses of one reset token at once: exactly one wins.
func testConcurrentSpend(t *testing.T, s *tokenstore.Store) {
	var (
		wg   sync.WaitGroup
		wins atomic.Int32
		errs = make([]error, 16)
	)
	for i := range errs {
		wg.Go(func() {
			ok, err := s.SpendResetToken(t.Context(), "reset-race", now.Add(time.Hour))
			errs[i] = err
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	must(t, errors.Join(errs...))
	if n := wins.Load(); n != 1 {
		t.Fatalf("%d concurrent uses of one reset token succeeded, want 1", n)
	}
}

// Records are kept a day past expiry, so an owner still sees that a token
// expired; then both kinds of record go.
func testPurge(t *testing.T, s *tokenstore.Store) {
	record(t, s, "old", "alice", -25*time.Hour)
	record(t, s, "recent", "alice", -23*time.Hour)
	record(t, s, "live", "alice", time.Hour)
	for _, jti := range []string{"reset-old", "reset-recent"} {
		exp := now.Add(-25 * time.Hour)
		if jti == "reset-recent" {
			exp = now.Add(-23 * time.Hour)
		}
		_, err := s.SpendResetToken(t.Context(), jti, exp)
		must(t, err)
	}
	must(t, s.Purge(t.Context(), now))
	if _, err := s.Get(t.Context(), "old"); !errors.Is(err, kisee.ErrTokenNotFound) {
		t.Fatalf("a token expired 25 hours ago survived the purge: %v", err)
	}
	get(t, s, "recent")
	get(t, s, "live")
	// A purged reset token is past its expiry, so its signature check
	// refuses it before the store is asked; one still remembered stays
	// spent.
	for jti, wantFree := range map[string]bool{"reset-old": true, "reset-recent": false} {
		free, err := s.SpendResetToken(t.Context(), jti, now)
		must(t, err)
		if free != wantFree {
			t.Errorf("%s free after purge = %v, want %v", jti, free, wantFree)
		}
	}
}
