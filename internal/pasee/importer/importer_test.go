package importer_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/importer"
	"github.com/kisee-pasee/suite/internal/pasee/store"
	"github.com/kisee-pasee/suite/internal/pgtest"
	"github.com/kisee-pasee/suite/internal/sqldb"
)

// The original Pasee's PostgreSQL schema (schema_01.sql, without its
// CREATE DATABASE).
const schema01 = `
CREATE TABLE "groups" ("id" serial NOT NULL PRIMARY KEY, "name" text NOT NULL UNIQUE);
CREATE TABLE "users" ("id" serial NOT NULL PRIMARY KEY, "username" text NOT NULL UNIQUE, "is_banned" boolean DEFAULT FALSE);
CREATE TABLE "user_in_group" ("id" serial NOT NULL PRIMARY KEY, "user_id" integer NOT NULL, "group_id" integer NOT NULL);
CREATE INDEX "groups_name_46b2c599_like" ON "groups" ("name" text_pattern_ops);
CREATE INDEX "users_username_e8658fc8_like" ON "users" ("username" text_pattern_ops);
ALTER TABLE "user_in_group" ADD CONSTRAINT "user_in_group_user_id_8b54342e_fk_users_id" FOREIGN KEY ("user_id") REFERENCES "users" ("id") DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE "user_in_group" ADD CONSTRAINT "user_in_group_group_id_2691306a_fk_groups_id" FOREIGN KEY ("group_id") REFERENCES "groups" ("id") DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE "user_in_group" ADD CONSTRAINT "user_in_group_user_id_group_id_1e50f3dc_uniq" UNIQUE ("user_id", "group_id");
`

// The original demo SQLite storage, as DemoSqliteStorage creates it.
const demoSchema = `
CREATE TABLE IF NOT EXISTS users(name TEXT PRIMARY KEY, is_banned BOOLEAN DEFAULT FALSE);
CREATE TABLE IF NOT EXISTS groups(name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS user_in_group(id INTEGER PRIMARY KEY, user TEXT, group_name TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS group_name_index on groups (name);
`

// The original's data, as its API and CLI left it: nested groups (one
// without its parent), bans (one of a user in no group), names the new
// rules refuse, a user of a provider no longer configured.
var (
	origUsers = []struct {
		name   string
		banned bool
	}{
		{"kisee-root", false}, {"kisee-John", false}, {"kisee-Ada", true}, {"kisee-Eve", true},
		{"kisee-Bob", false}, {"kisee-bad user", false}, {"twitter-1234", false},
	}
	origGroups  = []string{"staff", "admin", "admin.staff", "admin.developers", "articles.writers", "Bad Group"}
	origMembers = [][2]string{
		{"kisee-root", "staff"}, {"kisee-John", "admin.staff"}, {"kisee-John", "admin.developers"},
		{"kisee-Ada", "admin.developers"}, {"kisee-bad user", "admin"}, {"kisee-John", "Bad Group"},
		{"twitter-1234", "articles.writers"},
	}
)

func fillPostgres(t *testing.T, db *sql.DB) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, schema01); err != nil {
		t.Fatal(err)
	}
	for _, u := range origUsers {
		mustExec(t, db, `INSERT INTO users (username, is_banned) VALUES ($1, $2)`, u.name, u.banned)
	}
	for _, g := range origGroups {
		mustExec(t, db, `INSERT INTO groups (name) VALUES ($1)`, g)
	}
	for _, m := range origMembers {
		mustExec(t, db, `INSERT INTO user_in_group (user_id, group_id)
			SELECT u.id, g.id FROM users u, groups g WHERE u.username = $1 AND g.name = $2`, m[0], m[1])
	}
}

func fillSQLite(t *testing.T, db *sql.DB) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), demoSchema); err != nil {
		t.Fatal(err)
	}
	for _, u := range origUsers {
		if u.banned {
			mustExec(t, db, `INSERT INTO users (name, is_banned) VALUES (?, ?)`, u.name, true)
		} else {
			mustExec(t, db, `INSERT INTO users (name) VALUES (?)`, u.name) // the FALSE default
		}
	}
	for _, g := range origGroups {
		mustExec(t, db, `INSERT INTO groups (name) VALUES (?)`, g)
	}
	for _, m := range origMembers {
		mustExec(t, db, `INSERT INTO user_in_group ("user", group_name) VALUES (?, ?)`, m[0], m[1])
	}
	// The demo storage has no foreign keys: a membership of a deleted user.
	mustExec(t, db, `INSERT INTO user_in_group ("user", group_name) VALUES ('kisee-ghost', 'admin')`)
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func openDB(t *testing.T, url string) *sql.DB {
	t.Helper()
	target, err := sqldb.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqldb.Open(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func kiseeOnly(p string) bool { return p == "kisee" }

func TestImportPostgres(t *testing.T) {
	origURL := pgtest.URL(t)
	fillPostgres(t, openDB(t, origURL))
	testImport(t, origURL, pgtest.URL(t), false)
}

func TestImportDemoSQLite(t *testing.T) {
	dir := t.TempDir()
	origURL := "sqlite:" + filepath.Join(dir, "original.db")
	fillSQLite(t, openDB(t, origURL))
	testImport(t, origURL, "sqlite:"+filepath.Join(dir, "pasee.db"), true)
}

func openStore(t *testing.T, url string) pasee.Store {
	t.Helper()
	st, err := store.Open(context.Background(), url, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func testImport(t *testing.T, origURL, storeURL string, demo bool) {
	ctx := context.Background()
	orig, err := importer.Read(ctx, origURL)
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t, storeURL)
	now := time.Now()
	// Ada already logs in through this Pasee (side-by-side run): her
	// session must close when her ban is imported.
	if _, err := st.RecordLogin(ctx, "kisee-Ada", now); err != nil {
		t.Fatal(err)
	}
	sess := pasee.Session{ID: "sess-ada", User: "kisee-Ada", IDP: "kisee", RefreshJTI: "r1", AccessJTI: "a1",
		IssuedAt: now, ExpiresAt: now.Add(time.Hour), CreatedAt: now}
	if err := st.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	opts := importer.Options{Known: kiseeOnly}

	// A dry run reports and writes nothing.
	dry := opts
	dry.DryRun = true
	report, err := importer.Import(ctx, st, orig, dry)
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Changes) == 0 {
		t.Fatal("dry run: no change reported")
	}
	if ok, _ := st.GroupExists(ctx, "admin"); ok {
		t.Fatal("dry run created a group")
	}
	if events, _ := st.Audit(ctx, 0, 100); len(events) != 0 {
		t.Fatalf("dry run wrote the audit log: %v", events)
	}
	var out bytes.Buffer
	report.Write(&out)
	if !strings.Contains(out.String(), "dry run, nothing written") || !strings.Contains(out.String(), "Bad Group") {
		t.Errorf("dry-run report:\n%s", out.String())
	}

	report, err = importer.Import(ctx, st, orig, opts)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	report.Write(&out)
	t.Logf("report:\n%s", out.String())

	// Users keep their names; memberships are as they were.
	for user, want := range map[string][]string{
		"kisee-root": {"staff"},
		"kisee-John": {"admin.developers", "admin.staff"},
		"kisee-Ada":  {"admin.developers"},
	} {
		got, err := st.UserGroups(ctx, user)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s groups %v, %v; want %v", user, got, err, want)
		}
	}
	// Nested groups, with the ancestors and staff groups the new rules want.
	for _, g := range []string{"admin", "admin.staff", "admin.developers", "admin.developers.staff", "articles", "articles.staff", "articles.writers", "articles.writers.staff"} {
		if ok, err := st.GroupExists(ctx, g); !ok || err != nil {
			t.Errorf("group %s missing (%v)", g, err)
		}
	}
	// Bans: Ada's session is revoked; Eve, in no group, is recorded banned.
	for _, u := range []string{"kisee-Ada", "kisee-Eve"} {
		if got, err := st.GetUser(ctx, u); err != nil || !got.IsBanned {
			t.Errorf("%s: %+v, %v; want banned", u, got, err)
		}
	}
	if _, live, err := st.CallerStatus(ctx, "kisee-Ada", "sess-ada"); err != nil || live {
		t.Errorf("Ada's session live=%v (%v) after her ban was imported", live, err)
	}
	if _, err := st.GetUser(ctx, "kisee-Bob"); !errors.Is(err, pasee.ErrUserNotFound) {
		t.Errorf("kisee-Bob (no group, no ban) was recorded: %v", err)
	}
	// Explicit skips.
	wantSkips := map[string]string{
		"Bad Group":                        "refused",
		"kisee-bad user":                   "refused",
		"twitter-1234":                     "not a configured identity provider",
		"kisee-bad user in admin":          "skipped or missing",
		"kisee-John in Bad Group":          "group is skipped",
		"twitter-1234 in articles.writers": "skipped or missing",
		"kisee-Bob":                        "recorded at first login",
	}
	if demo {
		wantSkips["kisee-ghost in admin"] = "does not exist"
	}
	for _, s := range report.Skipped {
		if reason, ok := wantSkips[s.Name]; ok && strings.Contains(s.Reason, reason) {
			delete(wantSkips, s.Name)
		}
	}
	if len(wantSkips) > 0 {
		t.Errorf("skips not reported: %v\n%s", wantSkips, out.String())
	}
	// The audit log records the import, by the actor "import".
	events, err := st.Audit(ctx, 0, 200)
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for _, e := range events {
		if e.Actor != importer.Actor {
			t.Errorf("audit event by %q: %+v", e.Actor, e)
		}
		actions[e.Action]++
	}
	if actions[pasee.ActionGroupCreate] == 0 || actions[pasee.ActionMemberAdd] != 4 || actions[pasee.ActionUserBan] != 2 {
		t.Errorf("audit actions %v", actions)
	}

	// A rerun changes nothing and writes nothing.
	again, err := importer.Import(ctx, st, orig, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Changes) != 0 {
		t.Errorf("rerun changes: %v", again.Changes)
	}
	if after, _ := st.Audit(ctx, 0, 200); len(after) != len(events) {
		t.Errorf("rerun wrote %d audit events", len(after)-len(events))
	}
}

// failingStore fails the nth write the import makes.
type failingStore struct {
	pasee.Store
	n, writes int
}

var errInjected = errors.New("injected failure")

func (f *failingStore) fail() error {
	f.writes++
	if f.writes == f.n {
		return errInjected
	}
	return nil
}

func (f *failingStore) EnsureGroup(ctx context.Context, actor, name string, now time.Time) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.EnsureGroup(ctx, actor, name, now)
}

func (f *failingStore) AddMember(ctx context.Context, actor, group, user string, now time.Time) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Store.AddMember(ctx, actor, group, user, now)
}

func (f *failingStore) SetBanned(ctx context.Context, actor, user string, banned bool, now time.Time) error {
	if banned {
		if err := f.fail(); err != nil {
			return err
		}
	}
	return f.Store.SetBanned(ctx, actor, user, banned, now)
}

// A failure while writing leaves the store as it was: all or nothing.
// Then the import, run again, completes.
func TestImportIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	origURL := "sqlite:" + filepath.Join(dir, "original.db")
	fillSQLite(t, openDB(t, origURL))
	orig, err := importer.Read(ctx, origURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 3, 6, 8} { // a group, a membership, the last membership, a ban
		st := openStore(t, "sqlite:"+filepath.Join(dir, "pasee-"+string(rune('a'+n))+".db"))
		if _, err := importer.Import(ctx, &failingStore{Store: st, n: n}, orig, importer.Options{Known: kiseeOnly}); !errors.Is(err, errInjected) {
			t.Fatalf("write %d: err %v, want the injected failure", n, err)
		}
		if groups, _ := st.ListGroups(ctx, "", 100); !slices.Equal(groups, []string{"staff"}) {
			t.Errorf("write %d failed, groups left: %v", n, groups)
		}
		if users, _ := st.ListUsers(ctx, "", 100); len(users) != 0 {
			t.Errorf("write %d failed, users left: %v", n, users)
		}
		report, err := importer.Import(ctx, st, orig, importer.Options{Known: kiseeOnly})
		if err != nil || len(report.Changes) == 0 {
			t.Fatalf("import after a failed one: %v, %d changes", err, len(report.Changes))
		}
	}
}

// A database that is not an original Pasee's is refused before anything
// is written; a missing SQLite file is not created.
func TestReadRefusesOtherDatabases(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "nope.db")
	if _, err := importer.Read(ctx, "sqlite:"+missing); err == nil {
		t.Fatal("read a missing file")
	}
	other := "sqlite:" + filepath.Join(t.TempDir(), "other.db")
	mustExec(t, openDB(t, other), `CREATE TABLE things (x int)`)
	if _, err := importer.Read(ctx, other); err == nil || !strings.Contains(err.Error(), "demo SQLite storage") {
		t.Fatalf("err = %v", err)
	}
}
