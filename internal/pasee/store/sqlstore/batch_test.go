package sqlstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pgtest"
	"github.com/kisee-pasee/suite/internal/sqldb"
)

// TestRotationsAreWrittenTogether checks the group commit itself: two
// stores on one database (two Pasee instances) refresh the same sessions
// at the same moment, round after round. Every refresh must get its
// sequential outcome — one winner per session and round, the other
// replayed with the winner's pair, no error even when the two instances'
// batches lock the same sessions in opposite orders — and the rotations
// must indeed have gone in batches of more than one.
func TestRotationsAreWrittenTogether(t *testing.T) {
	t.Parallel()
	for _, e := range []struct {
		name   string
		target func(t *testing.T) sqldb.Target
	}{
		{"SQLite", func(t *testing.T) sqldb.Target {
			return sqldb.Target{Dialect: sqldb.SQLite, DSN: filepath.Join(t.TempDir(), "pasee.db")}
		}},
		{"PostgreSQL", func(t *testing.T) sqldb.Target { return sqldb.Target{Dialect: sqldb.Postgres, DSN: pgtest.URL(t)} }},
	} {
		t.Run(e.name, func(t *testing.T) {
			target := e.target(t)
			a, b := OpenForTest(t, target), OpenForTest(t, target)
			ctx := t.Context()
			const sessions, rounds = 24, 6
			start := time.Unix(1_700_000_000, 0)
			live := map[string]string{}
			for i := range sessions {
				id, user := fmt.Sprintf("s%02d", i), fmt.Sprintf("kisee-u%02d", i)
				if _, err := a.RecordLogin(ctx, user, start); err != nil {
					t.Fatal(err)
				}
				if err := a.CreateSession(ctx, pasee.Session{ID: id, User: user, IDP: "kisee", RefreshJTI: id + "-0",
					AccessJTI: id + "-a0", IssuedAt: start, ExpiresAt: start.Add(time.Hour), CreatedAt: start}); err != nil {
					t.Fatal(err)
				}
				live[id] = id + "-0"
			}
			type result struct {
				id, next string
				out      pasee.RotateOutcome
				sess     pasee.Session
				err      error
			}
			for round := 1; round <= rounds; round++ {
				now := start.Add(time.Duration(round) * time.Minute)
				results := make(chan result, 4*sessions)
				var wg sync.WaitGroup
				gate := make(chan struct{})
				for id, presented := range live {
					for k, s := range []*Store{a, b, a, b} {
						wg.Go(func() {
							<-gate
							next := fmt.Sprintf("%s-%d-%d", id, round, k)
							out, sess, _, err := s.RotateAndReadGroups(ctx, id, presented,
								pasee.NextTokens{RefreshJTI: next, AccessJTI: next + "a", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, now, 5*time.Second)
							results <- result{id, next, out, sess, err}
						})
					}
				}
				close(gate)
				wg.Wait()
				close(results)
				winners := map[string]string{}
				var answered []result
				for r := range results {
					if r.err != nil {
						t.Fatalf("round %d, %s: %v", round, r.id, r.err)
					}
					switch r.out {
					case pasee.Rotated:
						if w, ok := winners[r.id]; ok {
							t.Fatalf("round %d, %s: two winners %s and %s", round, r.id, w, r.next)
						}
						winners[r.id] = r.next
					case pasee.Replayed:
					default:
						t.Fatalf("round %d, %s: outcome %v", round, r.id, r.out)
					}
					answered = append(answered, r)
				}
				for _, r := range answered {
					if r.sess.RefreshJTI != winners[r.id] {
						t.Fatalf("round %d, %s: answered %s, winner %s", round, r.id, r.sess.RefreshJTI, winners[r.id])
					}
				}
				if len(winners) != sessions {
					t.Fatalf("round %d: %d sessions rotated, want %d", round, len(winners), sessions)
				}
				live = winners
			}
			batches := a.rotations.batches.Load() + b.rotations.batches.Load()
			written := a.rotations.rotations.Load() + b.rotations.rotations.Load()
			t.Logf("%d rotations written in %d batches", written, batches)
			if written <= batches {
				t.Errorf("%d rotations in %d batches: none was written together", written, batches)
			}
		})
	}
}

// OpenForTest opens and migrates a store on target, closed with t; the
// external tests (sqlstore_test) use it too. The test PostgreSQL server is
// shared with other packages' tests: it rides out a moment of "too many
// clients".
func OpenForTest(t *testing.T, target sqldb.Target) *Store {
	t.Helper()
	s, err := Open(t.Context(), target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for attempt := 1; ; attempt++ {
		err = s.Migrate(t.Context())
		if err == nil || attempt == 5 || !errors.Is(err, pasee.ErrUnavailable) {
			break
		}
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBatchesThatDeadlockAreWrittenOneByOne makes two instances' batches
// lock two sessions in opposite orders, which PostgreSQL breaks by rolling
// one back: that batch must then be written rotation by rotation, each told
// its own outcome, and no refresh must fail.
func TestBatchesThatDeadlockAreWrittenOneByOne(t *testing.T) {
	t.Parallel()
	// The plan of a large table: the arrays drive, each row found by its
	// key, so rows are locked in the batch's order. (The batcher sorts its
	// batches; these two are given unsorted to writeRotations.)
	target := sqldb.Target{Dialect: sqldb.Postgres, DSN: pgtest.URL(t) + "&enable_hashjoin=off&enable_mergejoin=off&enable_seqscan=off"}
	a, b := OpenForTest(t, target), OpenForTest(t, target)
	ctx := t.Context()
	now := time.Unix(1_700_000_000, 0)
	for _, id := range []string{"A", "B"} {
		if _, err := a.RecordLogin(ctx, "kisee-"+id, now); err != nil {
			t.Fatal(err)
		}
		if err := a.CreateSession(ctx, pasee.Session{ID: id, User: "kisee-" + id, IDP: "kisee", RefreshJTI: id + "-0",
			AccessJTI: id + "-a0", IssuedAt: now, ExpiresAt: now.Add(time.Hour), CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	rot := func(id, next string) *rotation {
		return &rotation{id: id, presented: id + "-0", now: now.Add(time.Minute),
			next: pasee.NextTokens{RefreshJTI: next, AccessJTI: next + "a", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}}
	}
	first := []*rotation{rot("A", "A-1"), rot("B", "B-1")}
	second := []*rotation{rot("B", "B-2"), rot("A", "A-2")}

	// Hold both rows so that each batch stops at its first one; released
	// together, each takes its first and waits for the other's.
	hold, err := a.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.ExecContext(ctx, `SELECT 1 FROM pasee_sessions WHERE id IN ('A', 'B') FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { errs <- a.writeRotations(ctx, first) }()
	go func() { errs <- b.writeRotations(ctx, second) }()
	time.Sleep(300 * time.Millisecond) // both batches wait on the held rows
	if err := hold.Rollback(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("a batch failed: %v", err)
		}
	}
	for _, id := range []string{"A", "B"} {
		var won []string
		for _, r := range append(first, second...) {
			if r.err != nil {
				t.Fatalf("rotation of %s to %s: %v", r.id, r.next.RefreshJTI, r.err)
			}
			if r.id == id && r.matched {
				won = append(won, r.next.RefreshJTI)
			}
		}
		stored, err := a.GetSession(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(won) != 1 || stored.RefreshJTI != won[0] {
			t.Fatalf("session %s: rotations matched %v, stored %s", id, won, stored.RefreshJTI)
		}
	}
}

// TestRotationBatchFindsSessionsByKey checks the plan PostgreSQL keeps for
// the batch statement (the generic plan of a prepared statement, as pgx
// runs it) on 100,000 sessions: each session found through the primary
// key, driven by the arrays — never a scan of the table per batch, and
// rows locked in the batch's order, which the batcher sorts.
func TestRotationBatchFindsSessionsByKey(t *testing.T) {
	t.Parallel()
	s := OpenForTest(t, sqldb.Target{Dialect: sqldb.Postgres, DSN: pgtest.URL(t)})
	ctx := t.Context()
	c, err := s.w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, q := range []string{
		`INSERT INTO pasee_users (name, created_at) SELECT 'kisee-u' || i, 0 FROM generate_series(1, 100000) i`,
		`INSERT INTO pasee_sessions (id, user_name, idp, claims, refresh_jti, access_jti, previous_jti, issued_at, expires_at, created_at)
		 SELECT 's' || i, 'kisee-u' || i, 'kisee', '{}', 'r' || i, 'a' || i, '', 0, 4102444800000, 0 FROM generate_series(1, 100000) i`,
		`ANALYZE`,
		`SET plan_cache_mode = force_generic_plan`,
		`PREPARE batch (text[], text[], text[], text[], bigint[], bigint[], bigint[]) AS ` + rotateArraysSQL,
	} {
		if _, err := c.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	var plan []string
	rows, err := c.QueryContext(ctx, `EXPLAIN EXECUTE batch('{s1,s2,s3}', '{r1,r2,r3}', '{x,y,z}', '{x,y,z}', '{1,1,1}', '{2,2,2}', '{1,1,1}')`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	text := strings.Join(plan, "\n")
	if !strings.Contains(text, "Index Scan using pasee_sessions_pkey") || strings.Contains(text, "Seq Scan on pasee_sessions") ||
		!strings.Contains(text, "Nested Loop") {
		t.Fatalf("the batch does not find sessions by key, one by one:\n%s", text)
	}
	// Fixing the plan also fixes the order: the function scan drives.
	if strings.Index(text, "Function Scan") > strings.Index(text, "Index Scan using pasee_sessions_pkey") {
		t.Fatalf("the sessions drive the plan, not the arrays:\n%s", text)
	}
}
