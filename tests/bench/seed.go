package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	kiseeapp "github.com/kisee-pasee/suite/internal/kisee/app"
	"github.com/kisee-pasee/suite/internal/password"
	"github.com/kisee-pasee/suite/internal/sqldb"
)

// benchPassword is every bench user's password.
const benchPassword = "bench password, long enough"

// kiseeUser names the i-th bench user of Kisee.
func kiseeUser(i int) string { return fmt.Sprintf("u%06d", i) }

// openDB opens a store URL with the suite's own opener.
func openDB(ctx context.Context, storeURL string) (*sql.DB, sqldb.Dialect, error) {
	t, err := sqldb.ParseURL(storeURL)
	if err != nil {
		return nil, "", err
	}
	db, err := sqldb.Open(ctx, t)
	if err != nil {
		return nil, "", err
	}
	return db, t.Dialect, nil
}

// SeedKisee migrates Kisee's database at storeURL and inserts users, all
// with the argon2id hash of benchPassword at the production parameters
// (one hash, computed once: each login still verifies it in full).
func SeedKisee(ctx context.Context, storeURL string, users []string) error {
	db, dialect, err := openDB(ctx, storeURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := kiseeapp.Migrate(ctx, db, dialect, nil); err != nil {
		return err
	}
	hash, err := password.NewHasher(password.OWASP, 0).Hash(ctx, benchPassword)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit, a no-op
	now := time.Now().Unix()
	const batch = 200
	for i := 0; i < len(users); i += batch {
		chunk := users[i:min(i+batch, len(users))]
		var q strings.Builder
		q.WriteString(`INSERT INTO kisee_users (username, password_hash, is_superuser, created_at, updated_at) VALUES `)
		args := make([]any, 0, 2*len(chunk)+1)
		args = append(args, hash, now)
		for j, u := range chunk {
			if j > 0 {
				q.WriteString(", ")
			}
			args = append(args, u)
			fmt.Fprintf(&q, "($%d, $1, FALSE, $2, $2)", len(args))
		}
		q.WriteString(` ON CONFLICT DO NOTHING`)
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("seed kisee users: %w", err)
		}
	}
	return tx.Commit()
}
