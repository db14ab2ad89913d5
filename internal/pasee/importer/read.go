package importer

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/kisee-pasee/suite/internal/sqldb"
)

// Original is what an original Pasee database holds.
type Original struct {
	Source      string // the database, password hidden
	Users       []OriginalUser
	Groups      []string
	Memberships []OriginalMembership
	// Broken are rows that cannot be read as users, groups or memberships
	// (a NULL name, a membership of a user or group that is not there).
	Broken []Skip
}

// OriginalUser is a row of the original users table.
type OriginalUser struct {
	Name   string
	Banned bool
}

// OriginalMembership is a row of the original user_in_group table.
type OriginalMembership struct {
	User, Group string
}

// Read reads the original Pasee database at url: "postgres://..." for the
// PostgreSQL storage (schema_01.sql), "sqlite:FILE" for the demo SQLite
// storage. It only reads.
func Read(ctx context.Context, url string) (*Original, error) {
	target, err := sqldb.ParseURL(url)
	if err != nil {
		return nil, err
	}
	if target.Dialect == sqldb.SQLite {
		// Opening a missing file would create an empty database.
		if _, err := os.Stat(target.DSN); err != nil {
			return nil, fmt.Errorf("original database: %w", err)
		}
	}
	db, err := sqldb.Open(ctx, target)
	if err != nil {
		return nil, fmt.Errorf("original database %s: %w", sqldb.Scrub(url), err)
	}
	defer db.Close()
	o := &Original{Source: sqldb.Scrub(url)}
	if target.Dialect == sqldb.Postgres {
		err = o.readPostgres(ctx, db)
	} else {
		err = o.readSQLite(ctx, db)
	}
	if err != nil {
		return nil, fmt.Errorf("original database %s: %w", o.Source, err)
	}
	slices.SortFunc(o.Users, func(a, b OriginalUser) int { return strings.Compare(a.Name, b.Name) })
	slices.Sort(o.Groups)
	slices.SortFunc(o.Memberships, func(a, b OriginalMembership) int {
		if c := strings.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		return strings.Compare(a.User, b.User)
	})
	return o, nil
}

// readPostgres reads schema_01.sql: users(id, username, is_banned),
// groups(id, name), user_in_group(user_id, group_id).
func (o *Original) readPostgres(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT username, COALESCE(is_banned, false) FROM users`)
	if err != nil {
		return fmt.Errorf("read users (is this a schema_01.sql database?): %w", err)
	}
	err = scanAll(rows, func() error {
		var u OriginalUser
		if err := rows.Scan(&u.Name, &u.Banned); err != nil {
			return err
		}
		o.Users = append(o.Users, u)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read users: %w", err)
	}
	if o.Groups, err = strings1(ctx, db, `SELECT name FROM groups`); err != nil {
		return fmt.Errorf("read groups: %w", err)
	}
	rows, err = db.QueryContext(ctx, `SELECT m.user_id, u.username, m.group_id, g.name
		FROM user_in_group m LEFT JOIN users u ON u.id = m.user_id LEFT JOIN groups g ON g.id = m.group_id`)
	if err != nil {
		return fmt.Errorf("read memberships: %w", err)
	}
	err = scanAll(rows, func() error {
		var uid, gid int64
		var user, group sql.NullString
		if err := rows.Scan(&uid, &user, &gid, &group); err != nil {
			return err
		}
		switch {
		case !user.Valid:
			o.Broken = append(o.Broken, Skip{Kind: KindMembership, Name: fmt.Sprintf("user id %d in group id %d", uid, gid), Reason: "the user does not exist"})
		case !group.Valid:
			o.Broken = append(o.Broken, Skip{Kind: KindMembership, Name: fmt.Sprintf("%s in group id %d", user.String, gid), Reason: "the group does not exist"})
		default:
			o.Memberships = append(o.Memberships, OriginalMembership{User: user.String, Group: group.String})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read memberships: %w", err)
	}
	return nil
}

// readSQLite reads the demo storage: users(name, is_banned),
// groups(name), user_in_group(id, user, group_name), with no foreign
// keys: memberships may name users or groups that are not there.
func (o *Original) readSQLite(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT name, is_banned FROM users`)
	if err != nil {
		return fmt.Errorf("read users (is this the original demo SQLite storage?): %w", err)
	}
	users := map[string]bool{}
	err = scanAll(rows, func() error {
		var name sql.NullString
		var banned any
		if err := rows.Scan(&name, &banned); err != nil {
			return err
		}
		if !name.Valid || name.String == "" {
			o.Broken = append(o.Broken, Skip{Kind: KindUser, Name: "(no name)", Reason: "a users row without a name"})
			return nil
		}
		users[name.String] = true
		o.Users = append(o.Users, OriginalUser{Name: name.String, Banned: truthy(banned)})
		return nil
	})
	if err != nil {
		return fmt.Errorf("read users: %w", err)
	}
	groups, err := strings1(ctx, db, `SELECT name FROM groups WHERE name IS NOT NULL`)
	if err != nil {
		return fmt.Errorf("read groups: %w", err)
	}
	o.Groups = groups
	rows, err = db.QueryContext(ctx, `SELECT "user", group_name FROM user_in_group`)
	if err != nil {
		return fmt.Errorf("read memberships: %w", err)
	}
	err = scanAll(rows, func() error {
		var user, group sql.NullString
		if err := rows.Scan(&user, &group); err != nil {
			return err
		}
		name := user.String + " in " + group.String
		switch {
		case !user.Valid || !users[user.String]:
			o.Broken = append(o.Broken, Skip{Kind: KindMembership, Name: name, Reason: "the user does not exist in the original users table"})
		case !group.Valid || !slices.Contains(groups, group.String):
			o.Broken = append(o.Broken, Skip{Kind: KindMembership, Name: name, Reason: "the group does not exist in the original groups table"})
		default:
			o.Memberships = append(o.Memberships, OriginalMembership{User: user.String, Group: group.String})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read memberships: %w", err)
	}
	return nil
}

// truthy reads a SQLite boolean as Python's sqlite3 wrote it: 0/1, or the
// text of a default such as FALSE on old SQLite versions.
func truthy(v any) bool {
	switch v := v.(type) {
	case int64:
		return v != 0
	case bool:
		return v
	case string:
		return v == "1" || strings.EqualFold(v, "true")
	case []byte:
		return string(v) == "1" || strings.EqualFold(string(v), "true")
	}
	return false
}

func scanAll(rows *sql.Rows, each func() error) error {
	defer rows.Close()
	for rows.Next() {
		if err := each(); err != nil {
			return err
		}
	}
	return rows.Err()
}

func strings1(ctx context.Context, db *sql.DB, query string) ([]string, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	var out []string
	err = scanAll(rows, func() error {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	return out, err
}
