// Package sqlstore is the Pasee Store over database/sql, one implementation
// for both engines: SQLite (modernc.org/sqlite, no cgo), the embedded
// default, and PostgreSQL (pgx's stdlib driver), for deployments with
// several Pasee instances or a shared database. Every statement is written
// once, with $n placeholders, which both drivers accept; what differs
// between the engines is in dialect.go.
//
// On SQLite the database is one file in WAL mode, so reads run beside the
// one writer. Writes go through a single connection, so that writers of
// this process queue in database/sql instead of contending for SQLite's
// write lock; other processes (the CLI's "pasee append" while the server
// runs) wait on the busy timeout.
//
// On PostgreSQL transactions run at READ COMMITTED. Races are closed by the
// schema and by conditional statements rather than by isolation: unique
// keys with ON CONFLICT for creations, foreign keys (a group references its
// parent, a membership its group and user, all ON DELETE CASCADE) so that
// nothing outlives what it belongs to, and a conditional UPDATE for
// refresh-token rotation.
//
// Times are stored as Unix milliseconds; see migrations/pasee.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/store/internal/storeutil"
	"github.com/kisee-pasee/suite/internal/sqldb"
	"github.com/kisee-pasee/suite/migrations"
)

// Store is the Pasee store on SQLite or PostgreSQL. It is safe for
// concurrent use.
type Store struct {
	w *sql.DB // writes and read-modify-write transactions
	r *sql.DB // plain reads: w itself but on a SQLite file
	d dialect
	// prepared holds statements of the hot path prepared once on w, by
	// query text (see prepare).
	prepared sync.Map
	// rotations writes the rotations of live refresh tokens in batches.
	rotations *batcher
	// purges paces the deletion of expired sessions; housekeeping tracks
	// the one under way, which Close waits for (closed: none may start).
	purges       sqldb.Throttle
	housekeeping struct {
		sync.Mutex
		closed  bool
		running sync.WaitGroup
	}

	// Logger, when set before Migrate, logs each migration applied.
	Logger *slog.Logger
}

var _ pasee.Store = (*Store)(nil)

// Open opens the database of t: a SQLite file (created if needed; a
// private in-memory database for ":memory:") or a PostgreSQL server. A
// PostgreSQL connection is made on first use: Open succeeds while the
// server is down, and the store answers ErrUnavailable until it is back.
// Call Migrate before use unless the schema is known to be current.
func Open(ctx context.Context, t sqldb.Target) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open pasee store: %w", err)
	}
	d, err := dialectOf(t.Dialect)
	if err != nil {
		return nil, fmt.Errorf("open pasee store: %w", err)
	}
	w, r, err := d.open(ctx, t.DSN)
	if err != nil {
		return nil, fmt.Errorf("open pasee store: %w", err)
	}
	return newStore(w, r, d), nil
}

func newStore(w, r *sql.DB, d dialect) *Store {
	s := &Store{w: w, r: r, d: d}
	s.rotations = &batcher{write: s.writeRotations}
	return s
}

// New returns a store on db, of the given dialect, for reads and writes
// alike. On SQLite concurrent writers then rely on the busy timeout; Open's
// dedicated writer connection avoids that.
func New(db *sql.DB, name sqldb.Dialect) (*Store, error) {
	d, err := dialectOf(name)
	if err != nil {
		return nil, err
	}
	return newStore(db, db, d), nil
}

// Migrate applies Pasee's migrations of the store's dialect.
func (s *Store) Migrate(ctx context.Context) error {
	const op = "migrate pasee store"
	fsys, err := migrations.Pasee(string(s.d.name))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	unlock, err := s.d.lockMigrations(ctx, s.w)
	if err != nil {
		return fail(op, err)
	}
	defer unlock()
	if err := sqldb.Migrate(ctx, s.w, s.d.name, fsys, migrations.PaseeTable, s.Logger); err != nil {
		return fail(op, err)
	}
	return nil
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fail("ping", err)
	}
	return nil
}

// SynchronousCommit is PostgreSQL's synchronous_commit for the store's
// connections ("" on SQLite, whose durability is fixed by the store). A
// refresh is answered once its rotation's COMMIT returned, so an answered
// refresh survives a database crash unless it is "off".
func (s *Store) SynchronousCommit(ctx context.Context) (string, error) {
	if s.d.name != sqldb.Postgres {
		return "", nil
	}
	var v string
	if err := s.r.QueryRowContext(ctx, `SHOW synchronous_commit`).Scan(&v); err != nil {
		return "", fail("synchronous_commit", err)
	}
	return v, nil
}

// Close closes the database, waiting for connections in use to be
// released.
func (s *Store) Close() error {
	s.housekeeping.Lock()
	s.housekeeping.closed = true
	s.housekeeping.Unlock()
	s.housekeeping.running.Wait()
	s.prepared.Range(func(_, v any) bool {
		_ = v.(*sql.Stmt).Close()
		return true
	})
	if s.r == s.w {
		return s.w.Close()
	}
	return errors.Join(s.w.Close(), s.r.Close())
}

// fail wraps err with the operation; errors meaning the database cannot be
// reached also wrap pasee.ErrUnavailable.
func fail(op string, err error) error { return sqldb.Wrap(op, err, pasee.ErrUnavailable) }

// write runs fn in a transaction on the writer pool (on SQLite, BEGIN
// IMMEDIATE from the DSN: the transaction holds the write lock from the
// start).
func (s *Store) write(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fail(op, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return fail(op, err)
	}
	if err := tx.Commit(); err != nil {
		return fail(op, err)
	}
	return nil
}

// querier is what reads need: a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func audit(ctx context.Context, tx *sql.Tx, now time.Time, actor, action, target, detail string) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO pasee_audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)`,
		storeutil.Millis(now), actor, action, target, detail)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

func queryStrings(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func groupExists(ctx context.Context, q querier, name string) (bool, error) {
	var ok bool
	err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pasee_groups WHERE name = $1)`, name).Scan(&ok)
	return ok, err
}

// insertGroup creates name if missing and reports whether it did.
func insertGroup(ctx context.Context, tx *sql.Tx, name string, now time.Time) (bool, error) {
	var parent *string
	if p := pasee.GroupParent(name); p != "" {
		parent = &p
	}
	res, err := tx.ExecContext(ctx,
		`INSERT INTO pasee_groups (name, parent_name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`,
		name, parent, storeutil.Millis(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// ensureUser records user if unknown.
func ensureUser(ctx context.Context, tx *sql.Tx, user string, now time.Time) error {
	if user == "" {
		return errors.New("empty user name")
	}
	_, err := tx.ExecContext(ctx,
		`INSERT INTO pasee_users (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
		user, storeutil.Millis(now))
	return err
}

// addMember adds user (which must exist) to group and reports whether it
// was not a member already.
func addMember(ctx context.Context, tx *sql.Tx, group, user string, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx,
		`INSERT INTO pasee_memberships (group_name, user_name, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		group, user, storeutil.Millis(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// CreateGroup creates name and name.staff and makes creator a member of
// name.staff (no one when creator is empty).
func (s *Store) CreateGroup(ctx context.Context, actor, name, creator string, now time.Time) error {
	const op = "create group"
	if err := pasee.ValidateGroupName(name); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.write(ctx, op, func(tx *sql.Tx) error {
		if parent := pasee.GroupParent(name); parent != "" {
			ok, err := groupExists(ctx, tx, parent)
			if err != nil {
				return err
			}
			if !ok {
				return pasee.ErrParentNotFound
			}
		}
		created, err := insertGroup(ctx, tx, name, now)
		if isForeignKeyViolation(err, "") { // the parent was deleted meanwhile
			return pasee.ErrParentNotFound
		}
		if err != nil {
			return err
		}
		if !created {
			return pasee.ErrGroupExists
		}
		if err := audit(ctx, tx, now, actor, pasee.ActionGroupCreate, name, ""); err != nil {
			return err
		}
		staff := pasee.StaffOf(name)
		created, err = insertGroup(ctx, tx, staff, now)
		if err != nil {
			return err
		}
		if created {
			if err := audit(ctx, tx, now, actor, pasee.ActionGroupCreate, staff, ""); err != nil {
				return err
			}
		}
		if creator == "" {
			return nil
		}
		if err := ensureUser(ctx, tx, creator, now); err != nil {
			return err
		}
		added, err := addMember(ctx, tx, staff, creator, now)
		if err != nil || !added {
			return err
		}
		return audit(ctx, tx, now, actor, pasee.ActionMemberAdd, staff, creator)
	})
}

// EnsureGroup creates name and its missing ancestors, each (unless it is a
// staff group itself) with its staff group.
func (s *Store) EnsureGroup(ctx context.Context, actor, name string, now time.Time) error {
	const op = "ensure group"
	if err := pasee.ValidateGroupName(name); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return s.write(ctx, op, func(tx *sql.Tx) error {
		chain := pasee.GroupAncestors(name)
		for i := len(chain) - 1; i >= 0; i-- {
			g := chain[i]
			toCreate := []string{g}
			if !pasee.IsStaffGroup(g) {
				toCreate = append(toCreate, pasee.StaffOf(g))
			}
			for _, c := range toCreate {
				created, err := insertGroup(ctx, tx, c, now)
				if err != nil {
					return err
				}
				if created {
					if err := audit(ctx, tx, now, actor, pasee.ActionGroupCreate, c, ""); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
}

// DeleteGroup deletes name and its subtree; their memberships go with
// them (foreign keys), as does a subgroup created concurrently. The root
// group "staff" cannot be deleted.
func (s *Store) DeleteGroup(ctx context.Context, actor, name string, now time.Time) error {
	const op = "delete group"
	if name == pasee.StaffGroup {
		return fmt.Errorf("%s: the root group %q cannot be deleted", op, pasee.StaffGroup)
	}
	below := storeutil.SubtreeBelow(name)
	return s.write(ctx, op, func(tx *sql.Tx) error {
		ok, err := groupExists(ctx, tx, name)
		if err != nil {
			return err
		}
		if !ok {
			return pasee.ErrGroupNotFound
		}
		var members int64
		err = tx.QueryRowContext(ctx,
			`SELECT count(*) FROM pasee_memberships WHERE group_name = $1 OR (group_name > $2 AND group_name < $3)`,
			name, below.After, below.Before).Scan(&members)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx,
			`DELETE FROM pasee_groups WHERE name = $1 OR (name > $2 AND name < $3)`,
			name, below.After, below.Before)
		if err != nil {
			return err
		}
		groups, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if groups == 0 { // deleted meanwhile
			return pasee.ErrGroupNotFound
		}
		return audit(ctx, tx, now, actor, pasee.ActionGroupDelete, name,
			fmt.Sprintf("%d groups, %d memberships", groups, members))
	})
}

// GroupExists reports whether name exists.
func (s *Store) GroupExists(ctx context.Context, name string) (bool, error) {
	ok, err := groupExists(ctx, s.r, name)
	if err != nil {
		return false, fail("group exists", err)
	}
	return ok, nil
}

// ListGroups returns group names in byte order after after, at most limit.
func (s *Store) ListGroups(ctx context.Context, after string, limit int) ([]string, error) {
	if limit <= 0 {
		return []string{}, nil
	}
	out, err := queryStrings(ctx, s.r,
		`SELECT name FROM pasee_groups WHERE name > $1 ORDER BY name LIMIT $2`, after, limit)
	if err != nil {
		return nil, fail("list groups", err)
	}
	return out, nil
}

// VisibleGroups returns the groups user belongs to or administers, in byte
// order after after, at most limit; members of "staff" see every group.
// Each administered subtree is read as one range of the primary key,
// limited to the page size.
func (s *Store) VisibleGroups(ctx context.Context, user, after string, limit int) ([]string, error) {
	const op = "visible groups"
	if limit <= 0 {
		return []string{}, nil
	}
	mine, err := s.UserGroups(ctx, user)
	if err != nil {
		return nil, err
	}
	v := storeutil.PlanVisibility(mine, after)
	if v.All {
		return s.ListGroups(ctx, after, limit)
	}
	var read []string
	if len(v.Ranges) > 0 {
		var q strings.Builder
		args := make([]any, 0, 2*len(v.Ranges)+1)
		args = append(args, limit)
		for i, r := range v.Ranges {
			if i > 0 {
				q.WriteString(" UNION ALL ")
			}
			fmt.Fprintf(&q, `SELECT name FROM (SELECT name FROM pasee_groups WHERE name > $%d AND name < $%d ORDER BY name LIMIT $1) AS r%d`,
				len(args)+1, len(args)+2, i)
			args = append(args, r.After, r.Before)
		}
		q.WriteString(` ORDER BY name LIMIT $1`)
		read, err = queryStrings(ctx, s.r, q.String(), args...)
		if err != nil {
			return nil, fail(op, err)
		}
	}
	return v.Merge(read, limit), nil
}

// AddMember adds user to group, recording the user if unknown.
func (s *Store) AddMember(ctx context.Context, actor, group, user string, now time.Time) error {
	return s.write(ctx, "add member", func(tx *sql.Tx) error {
		ok, err := groupExists(ctx, tx, group)
		if err != nil {
			return err
		}
		if !ok {
			return pasee.ErrGroupNotFound
		}
		if err := ensureUser(ctx, tx, user, now); err != nil {
			return err
		}
		added, err := addMember(ctx, tx, group, user, now)
		if isForeignKeyViolation(err, membershipGroupFK) { // the group was deleted meanwhile
			return pasee.ErrGroupNotFound
		}
		if err != nil {
			return err
		}
		if !added {
			return pasee.ErrAlreadyMember
		}
		return audit(ctx, tx, now, actor, pasee.ActionMemberAdd, group, user)
	})
}

// RemoveMember removes user from group: ErrNotMember if it was not a
// member, ErrGroupNotFound if the group does not exist.
func (s *Store) RemoveMember(ctx context.Context, actor, group, user string, now time.Time) error {
	return s.write(ctx, "remove member", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`DELETE FROM pasee_memberships WHERE group_name = $1 AND user_name = $2`, group, user)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			ok, err := groupExists(ctx, tx, group)
			if err != nil {
				return err
			}
			if !ok {
				return pasee.ErrGroupNotFound
			}
			return pasee.ErrNotMember
		}
		return audit(ctx, tx, now, actor, pasee.ActionMemberRemove, group, user)
	})
}

// Members returns the members of group in byte order after after, at most
// limit; ErrGroupNotFound if the group does not exist.
func (s *Store) Members(ctx context.Context, group, after string, limit int) ([]string, error) {
	const op = "members"
	out := []string{}
	if limit > 0 {
		var err error
		out, err = queryStrings(ctx, s.r,
			`SELECT user_name FROM pasee_memberships WHERE group_name = $1 AND user_name > $2 ORDER BY user_name LIMIT $3`,
			group, after, limit)
		if err != nil {
			return nil, fail(op, err)
		}
	}
	if len(out) == 0 {
		ok, err := groupExists(ctx, s.r, group)
		if err != nil {
			return nil, fail(op, err)
		}
		if !ok {
			return nil, fmt.Errorf("%s: %w", op, pasee.ErrGroupNotFound)
		}
	}
	return out, nil
}

// UserGroups returns the groups user belongs to, sorted (none for an
// unknown user).
func (s *Store) UserGroups(ctx context.Context, user string) ([]string, error) {
	out, err := queryStrings(ctx, s.r,
		`SELECT group_name FROM pasee_memberships WHERE user_name = $1 ORDER BY group_name`, user)
	if err != nil {
		return nil, fail("user groups", err)
	}
	return out, nil
}

// IsMemberOfAny reports whether user belongs to at least one of groups.
func (s *Store) IsMemberOfAny(ctx context.Context, user string, groups []string) (bool, error) {
	if len(groups) == 0 {
		return false, nil
	}
	args := make([]any, 0, len(groups)+1)
	args = append(args, user)
	var marks strings.Builder
	for i, g := range groups {
		if i > 0 {
			marks.WriteByte(',')
		}
		marks.WriteString("$" + strconv.Itoa(i+2))
		args = append(args, g)
	}
	var ok bool
	err := s.r.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM pasee_memberships WHERE user_name = $1 AND group_name IN (`+marks.String()+`))`,
		args...).Scan(&ok)
	if err != nil {
		return false, fail("is member", err)
	}
	return ok, nil
}

const userColumns = `name, is_banned, created_at, last_login_at`

type scanner interface{ Scan(dest ...any) error }

func scanUser(sc scanner) (pasee.User, error) {
	var (
		u         pasee.User
		created   int64
		lastLogin *int64
	)
	if err := sc.Scan(&u.Name, &u.IsBanned, &created, &lastLogin); err != nil {
		return pasee.User{}, err
	}
	u.CreatedAt = storeutil.Time(created)
	u.LastLoginAt = storeutil.NullTime(lastLogin)
	return u, nil
}

// RecordLogin records user if unknown and sets its last login time.
func (s *Store) RecordLogin(ctx context.Context, user string, now time.Time) (pasee.User, error) {
	const op = "record login"
	if user == "" {
		return pasee.User{}, fmt.Errorf("%s: empty user name", op)
	}
	u, err := scanUser(s.w.QueryRowContext(ctx,
		`INSERT INTO pasee_users (name, created_at, last_login_at) VALUES ($1, $2, $2)
		 ON CONFLICT (name) DO UPDATE SET last_login_at = excluded.last_login_at
		 RETURNING `+userColumns,
		user, storeutil.Millis(now)))
	if err != nil {
		return pasee.User{}, fail(op, err)
	}
	return u, nil
}

// GetUser returns user name, or ErrUserNotFound.
func (s *Store) GetUser(ctx context.Context, name string) (pasee.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM pasee_users WHERE name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return pasee.User{}, fmt.Errorf("get user: %w", pasee.ErrUserNotFound)
	}
	if err != nil {
		return pasee.User{}, fail("get user", err)
	}
	return u, nil
}

// ListUsers returns users in byte order of their names after after, at
// most limit.
func (s *Store) ListUsers(ctx context.Context, after string, limit int) ([]pasee.User, error) {
	const op = "list users"
	out := []pasee.User{}
	if limit <= 0 {
		return out, nil
	}
	rows, err := s.r.QueryContext(ctx,
		`SELECT `+userColumns+` FROM pasee_users WHERE name > $1 ORDER BY name LIMIT $2`, after, limit)
	if err != nil {
		return nil, fail(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fail(op, err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// SetBanned bans or unbans user; banning revokes its live sessions in the
// same transaction.
func (s *Store) SetBanned(ctx context.Context, actor, user string, banned bool, now time.Time) error {
	op := "unban user"
	if banned {
		op = "ban user"
	}
	return s.write(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE pasee_users SET is_banned = $1 WHERE name = $2`, banned, user)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return pasee.ErrUserNotFound
		}
		if !banned {
			return audit(ctx, tx, now, actor, pasee.ActionUserUnban, user, "")
		}
		res, err = tx.ExecContext(ctx,
			`UPDATE pasee_sessions SET revoked_at = $1 WHERE user_name = $2 AND revoked_at IS NULL`,
			storeutil.Millis(now), user)
		if err != nil {
			return err
		}
		revoked, err := res.RowsAffected()
		if err != nil {
			return err
		}
		return audit(ctx, tx, now, actor, pasee.ActionUserBan, user, fmt.Sprintf("%d sessions revoked", revoked))
	})
}

// DeleteUser removes user; its memberships and sessions go with it
// (foreign keys).
func (s *Store) DeleteUser(ctx context.Context, actor, user string, now time.Time) error {
	return s.write(ctx, "delete user", func(tx *sql.Tx) error {
		groups, err := queryStrings(ctx, tx,
			`SELECT group_name FROM pasee_memberships WHERE user_name = $1 ORDER BY group_name`, user)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM pasee_users WHERE name = $1`, user)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return pasee.ErrUserNotFound
		}
		return audit(ctx, tx, now, actor, pasee.ActionUserDelete, user, storeutil.GroupsDetail(groups))
	})
}

const sessionColumns = `id, user_name, idp, claims, refresh_jti, access_jti, previous_jti,
	issued_at, rotated_at, expires_at, revoked_at, created_at`

func scanSession(sc scanner, extra ...any) (pasee.Session, error) {
	var (
		s                        pasee.Session
		claims                   string
		issued, expires, created int64
		rotated, revoked         *int64
	)
	dest := []any{&s.ID, &s.User, &s.IDP, &claims, &s.RefreshJTI, &s.AccessJTI, &s.PreviousJTI,
		&issued, &rotated, &expires, &revoked, &created}
	if err := sc.Scan(append(dest, extra...)...); err != nil {
		return pasee.Session{}, err
	}
	c, err := storeutil.DecodeClaims(claims)
	if err != nil {
		return pasee.Session{}, err
	}
	s.Claims = c
	s.IssuedAt = storeutil.Time(issued)
	s.RotatedAt = storeutil.NullTime(rotated)
	s.ExpiresAt = storeutil.Time(expires)
	s.RevokedAt = storeutil.NullTime(revoked)
	s.CreatedAt = storeutil.Time(created)
	return s, nil
}

// CreateSession stores a new session, recording its user if unknown.
// CreatedAt defaults to IssuedAt.
func (s *Store) CreateSession(ctx context.Context, sess pasee.Session) error {
	const op = "create session"
	if sess.ID == "" {
		return fmt.Errorf("%s: empty session id", op)
	}
	claims, err := storeutil.EncodeClaims(sess.Claims)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	created := sess.CreatedAt
	if created.IsZero() {
		created = sess.IssuedAt
	}
	s.purgeSessions(ctx, created)
	return s.write(ctx, op, func(tx *sql.Tx) error {
		if err := ensureUser(ctx, tx, sess.User, created); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx,
			`INSERT INTO pasee_sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			sess.ID, sess.User, sess.IDP, claims, sess.RefreshJTI, sess.AccessJTI, sess.PreviousJTI,
			storeutil.Millis(sess.IssuedAt), storeutil.NullMillis(sess.RotatedAt), storeutil.Millis(sess.ExpiresAt),
			storeutil.NullMillis(sess.RevokedAt), storeutil.Millis(created))
		return err
	})
}

// Expired sessions are deleted an hour after they expire (by then their
// refresh tokens, which expire with them, and their access tokens have
// long been refused by signature checks alone), at most sessionPurgeBatch
// of them a minute per instance, started by a login. Nothing else would
// ever delete them: every login adds a row.
const (
	sessionPurgeAfter   = time.Hour
	sessionPurgeEvery   = time.Minute
	sessionPurgeBatch   = 5000
	sessionPurgeTimeout = 30 * time.Second
)

// purgeSessions starts deleting long-expired sessions when due, in the
// background: the statement scans the table (no index on expires_at, see
// migration 00006), which the login that happens to start it must not wait
// for. Housekeeping: its failure is left to the next one.
func (s *Store) purgeSessions(ctx context.Context, now time.Time) {
	if !s.purges.Due(now, sessionPurgeEvery) {
		return
	}
	s.housekeeping.Lock()
	defer s.housekeeping.Unlock()
	if s.housekeeping.closed {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sessionPurgeTimeout)
	s.housekeeping.running.Go(func() {
		defer cancel()
		_, _ = s.w.ExecContext(ctx, `DELETE FROM pasee_sessions WHERE id IN
			(SELECT id FROM pasee_sessions WHERE expires_at < $1 LIMIT `+strconv.Itoa(sessionPurgeBatch)+`)`,
			storeutil.Millis(now.Add(-sessionPurgeAfter)))
	})
}

// CallerStatus implements pasee.Store in one query.
func (s *Store) CallerStatus(ctx context.Context, user, sid string) (banned, live bool, err error) {
	err = s.r.QueryRowContext(ctx,
		`SELECT u.is_banned, EXISTS (SELECT 1 FROM pasee_sessions s WHERE s.id = $2 AND s.user_name = u.name AND s.revoked_at IS NULL)
		 FROM pasee_users u WHERE u.name = $1`, user, sid).Scan(&banned, &live)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, fmt.Errorf("caller status: %w", pasee.ErrUserNotFound)
	}
	if err != nil {
		return false, false, fail("caller status", err)
	}
	return banned, live, nil
}

// GetSession returns session id, or ErrNotFound.
func (s *Store) GetSession(ctx context.Context, id string) (pasee.Session, error) {
	sess, err := scanSession(s.r.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM pasee_sessions WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return pasee.Session{}, fmt.Errorf("get session: %w", pasee.ErrNotFound)
	}
	if err != nil {
		return pasee.Session{}, fail("get session", err)
	}
	return sess, nil
}

// Rotate spends presentedJTI of session id. The live token of a live,
// unexpired session of a user who is not banned is swapped for next by one
// conditional UPDATE: concurrent rotations of one token queue on the row
// (or, on SQLite, on the write lock) and, once the first commits, no longer
// match. Anything else is classified from the session read (and locked) in
// the same transaction, and reuse outside the grace window revokes the
// session (audited, actor "system").
func (s *Store) Rotate(ctx context.Context, id, presentedJTI string, next pasee.NextTokens, now time.Time, grace time.Duration) (pasee.RotateOutcome, pasee.Session, error) {
	outcome, sess, _, err := s.rotate(ctx, id, presentedJTI, next, now, grace, false)
	return outcome, sess, err
}

// RotateAndReadGroups is Rotate that also returns the groups of the
// session's user when the token is Rotated or Replayed. In the common case
// (the live token) the groups are read by the rotating UPDATE itself, in
// its RETURNING clause: a refresh is one statement, one round trip, one
// commit.
func (s *Store) RotateAndReadGroups(ctx context.Context, id, presentedJTI string, next pasee.NextTokens, now time.Time, grace time.Duration) (pasee.RotateOutcome, pasee.Session, []string, error) {
	return s.rotate(ctx, id, presentedJTI, next, now, grace, true)
}

func (s *Store) rotate(ctx context.Context, id, presentedJTI string, next pasee.NextTokens, now time.Time, grace time.Duration, withGroups bool) (pasee.RotateOutcome, pasee.Session, []string, error) {
	// The live token of a live session is the common case: one statement,
	// atomic on its own, no transaction round trips, written together with
	// the rotations of other sessions arriving meanwhile (batch.go). Only
	// when it changes nothing does the transaction below classify the
	// token.
	r := &rotation{id: id, presented: presentedJTI, next: next, now: now}
	if err := s.rotations.rotate(ctx, r); err != nil {
		return 0, pasee.Session{}, nil, fail("rotate session", err)
	}
	if r.err != nil {
		return 0, pasee.Session{}, nil, fail("rotate session", r.err)
	}
	outcome := pasee.Rotated
	if !r.matched {
		err := s.write(ctx, "rotate session", func(tx *sql.Tx) error {
			// Again inside the transaction: a concurrent refresh may have
			// rotated the session since.
			if err := s.rotateOne(ctx, tx, r); err != nil || r.matched {
				return err
			}
			var err error
			outcome, err = s.classifySpent(ctx, tx, r, grace, withGroups)
			return err
		})
		if err != nil {
			return 0, pasee.Session{}, nil, err
		}
	}
	if !withGroups {
		r.groups = nil
	}
	return outcome, r.sess, r.groups, nil
}

// classifySpent tells, in tx, what the presented token of r is when it is
// not the live one of a live session: read (and locked) with its user's
// ban, the session is classified by storeutil.ClassifySpent. A replay gets
// the user's groups (when asked); reuse outside the grace window revokes
// the session (audited, actor "system"). r.sess is set to the session read.
func (s *Store) classifySpent(ctx context.Context, tx *sql.Tx, r *rotation, grace time.Duration, withGroups bool) (pasee.RotateOutcome, error) {
	var banned bool
	sess, err := scanSession(tx.QueryRowContext(ctx,
		`SELECT `+sessionColumns+`,
		   EXISTS (SELECT 1 FROM pasee_users u WHERE u.name = pasee_sessions.user_name AND u.is_banned)
		 FROM pasee_sessions WHERE id = $1`+s.d.lockRow, r.id), &banned)
	found := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	err = nil
	outcome := storeutil.ClassifySpent(sess, found, banned, r.presented, r.now, grace)
	switch outcome {
	case pasee.Replayed:
		if withGroups {
			r.groups, err = queryStrings(ctx, tx,
				`SELECT group_name FROM pasee_memberships WHERE user_name = $1 ORDER BY group_name`, sess.User)
		}
	case pasee.ReuseDetected:
		if _, err = tx.ExecContext(ctx,
			`UPDATE pasee_sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`,
			storeutil.Millis(r.now), r.id); err == nil {
			sess.RevokedAt = storeutil.Time(storeutil.Millis(r.now))
			err = audit(ctx, tx, r.now, "system", pasee.ActionSessionReuse, r.id, sess.User)
		}
	}
	r.sess = sess
	return outcome, err
}

// queryRow runs query on q (the writer pool or one of its transactions).
// On SQLite, whose driver keeps no statement cache, query is prepared once
// and reused: parsing the statement cost more than running it. pgx caches
// prepared statements per connection itself, so PostgreSQL queries go
// straight through.
func (s *Store) queryRow(ctx context.Context, q querier, query string, args ...any) *sql.Row {
	if s.d.name != sqldb.SQLite {
		return q.QueryRowContext(ctx, query, args...)
	}
	st, ok := s.prepared.Load(query)
	if !ok {
		prepared, err := s.w.PrepareContext(ctx, query)
		if err != nil {
			// The error comes back through the query, wrapped as usual.
			return q.QueryRowContext(ctx, query, args...)
		}
		if st, ok = s.prepared.LoadOrStore(query, prepared); ok {
			_ = prepared.Close()
		} else {
			st = prepared
		}
	}
	if tx, ok := q.(*sql.Tx); ok {
		return tx.StmtContext(ctx, st.(*sql.Stmt)).QueryRowContext(ctx, args...)
	}
	return st.(*sql.Stmt).QueryRowContext(ctx, args...)
}

// rotateSQL spends refresh token $7 of session $6 for the pair $1..$4 at
// $5, if it is the live token of a live session of a user not banned.
const rotateSQL = `UPDATE pasee_sessions
	SET previous_jti = refresh_jti, refresh_jti = $1, access_jti = $2, issued_at = $3, expires_at = $4, rotated_at = $5
	WHERE id = $6 AND refresh_jti = $7 AND revoked_at IS NULL AND expires_at > $5
	  AND NOT EXISTS (SELECT 1 FROM pasee_users u WHERE u.name = pasee_sessions.user_name AND u.is_banned)
	RETURNING ` + sessionColumns

// rotateWithGroups is rotateSQL returning, after the session's columns,
// the groups of its user joined by spaces (NULL for none) by the dialect's
// string aggregate. Group names hold no space.
func rotateWithGroups(groupConcat string) string {
	return rotateSQL + `,
	  (SELECT ` + groupConcat + ` FROM pasee_memberships m WHERE m.user_name = pasee_sessions.user_name)`
}

// splitGroups reads the groups of rotateWithGroups, sorted.
func splitGroups(joined string) []string {
	groups := strings.Fields(joined)
	slices.Sort(groups)
	if groups == nil {
		groups = []string{}
	}
	return groups
}

// RevokeSession revokes session id (ErrNotFound if unknown). Revoking a
// revoked session changes nothing and is not audited again.
func (s *Store) RevokeSession(ctx context.Context, actor, id string, now time.Time) error {
	return s.write(ctx, "revoke session", func(tx *sql.Tx) error {
		var user string
		err := tx.QueryRowContext(ctx,
			`UPDATE pasee_sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING user_name`,
			storeutil.Millis(now), id).Scan(&user)
		if errors.Is(err, sql.ErrNoRows) {
			var exists bool
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pasee_sessions WHERE id = $1)`, id).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				return pasee.ErrNotFound
			}
			return nil
		}
		if err != nil {
			return err
		}
		return audit(ctx, tx, now, actor, pasee.ActionSessionRevoke, id, user)
	})
}

// RevokeUserSessions revokes every live session of user without banning
// it, and audits it (even when none was live: an administrator acted).
func (s *Store) RevokeUserSessions(ctx context.Context, actor, user string, now time.Time) (int, error) {
	var revoked int64
	err := s.write(ctx, "revoke user sessions", func(tx *sql.Tx) error {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pasee_users WHERE name = $1)`, user).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return pasee.ErrUserNotFound
		}
		res, err := tx.ExecContext(ctx,
			`UPDATE pasee_sessions SET revoked_at = $1 WHERE user_name = $2 AND revoked_at IS NULL`,
			storeutil.Millis(now), user)
		if err != nil {
			return err
		}
		if revoked, err = res.RowsAffected(); err != nil {
			return err
		}
		return audit(ctx, tx, now, actor, pasee.ActionSessionRevoke, user, fmt.Sprintf("%d sessions revoked", revoked))
	})
	if err != nil {
		return 0, err
	}
	return int(revoked), nil
}

// Audit returns audit events newest first, with ids below before (0: from
// the newest), at most limit.
func (s *Store) Audit(ctx context.Context, before int64, limit int) ([]pasee.AuditEvent, error) {
	const op = "audit log"
	out := []pasee.AuditEvent{}
	if limit <= 0 {
		return out, nil
	}
	if before <= 0 {
		before = math.MaxInt64
	}
	rows, err := s.r.QueryContext(ctx,
		`SELECT id, at, actor, action, target, detail FROM pasee_audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2`,
		before, limit)
	if err != nil {
		return nil, fail(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e  pasee.AuditEvent
			at int64
		)
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Detail); err != nil {
			return nil, fail(op, err)
		}
		e.At = storeutil.Time(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}
