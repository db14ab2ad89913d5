package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/store/internal/storeutil"
	"github.com/kisee-pasee/suite/internal/sqldb"
)

// Group commit of refresh-token rotations.
//
// Every refresh spends the live token of its session: one conditional
// UPDATE, one commit. Refreshes arriving while one is being written do not
// each take a connection, a round trip and a commit of their own: they
// wait for it, then go together as one statement (PostgreSQL: one UPDATE
// over arrays, so one round trip and one commit for all) or one transaction
// (SQLite: one write lock and one commit). A refresh arriving when nothing
// is being written goes at once, alone: a quiet server adds no latency.
//
// Semantics do not change. A batch holds at most one rotation per session
// (a second refresh of the same session waits for the next batch, so it
// sees the first one committed, exactly as one statement after the other);
// a rotation the batch did not match (spent, revoked, expired token, banned
// user) is classified afterwards by the same transaction as before. A
// batch's statement is atomic: an error fails every rotation in it and
// commits none, so no refresh is answered that was not committed, and none
// that was committed is lost: PostgreSQL's commit is durable under the
// default synchronous_commit = on (see docs/decisions.md).

// maxBatch bounds the rotations of one statement.
const maxBatch = 64

// batchTimeout bounds one batch's statement. A batch serves several
// requests, so it does not stop when the one that started it is cancelled.
const batchTimeout = 15 * time.Second

// rotation is one live-token rotation waiting to be written.
type rotation struct {
	id, presented string
	next          pasee.NextTokens
	now           time.Time

	// Set by the batch that wrote it, before done is closed.
	matched bool
	sess    pasee.Session
	groups  []string
	err     error
	done    chan struct{}
}

// batcher queues rotations and writes them in batches, one batch at a time
// per process: while one is written the next one fills. (Two at a time
// made smaller batches for no more throughput: the database's and Pasee's
// processor time per refresh grew.)
type batcher struct {
	write func(ctx context.Context, batch []*rotation) error

	mu      sync.Mutex
	pending []*rotation
	busy    bool

	// batches and rotations count what was written, for tests and
	// benchmarks: their ratio is the mean batch size.
	batches, rotations atomic.Int64
}

// rotate writes r, alone if nothing is being written, else in the next
// batch, and returns when r's outcome is known (in its fields, r.err
// included) or ctx ends (ctx's error).
func (b *batcher) rotate(ctx context.Context, r *rotation) error {
	r.done = make(chan struct{})
	b.mu.Lock()
	b.pending = append(b.pending, r)
	if b.busy {
		b.mu.Unlock()
		select {
		case <-r.done:
			return nil
		case <-ctx.Done():
			// The rotation may still be written: like a response lost
			// on the way, the client then retries within the grace
			// window, or its token was spent.
			return ctx.Err()
		}
	}
	b.busy = true
	// This goroutine writes batches until its own rotation is written;
	// what arrived meanwhile is handed to a goroutine of its own.
	for {
		batch := b.takeLocked()
		b.mu.Unlock()
		b.run(ctx, batch)
		b.mu.Lock()
		select {
		case <-r.done:
			if len(b.pending) > 0 {
				go b.drain(context.WithoutCancel(ctx))
			} else {
				b.busy = false
			}
			b.mu.Unlock()
			return nil
		default:
		}
	}
}

// drain writes batches until none is pending.
func (b *batcher) drain(ctx context.Context) {
	b.mu.Lock()
	for len(b.pending) > 0 {
		batch := b.takeLocked()
		b.mu.Unlock()
		b.run(ctx, batch)
		b.mu.Lock()
	}
	b.busy = false
	b.mu.Unlock()
}

// takeLocked removes the next batch from pending: up to maxBatch rotations,
// at most one per session, the first to arrive, sorted by session id. The
// order is the one in which PostgreSQL locks the rows when it follows the
// arrays (as it does on a table of any size): two instances' batches then
// lock the sessions they share in the same order and do not deadlock.
func (b *batcher) takeLocked() []*rotation {
	n := min(len(b.pending), maxBatch)
	batch := make([]*rotation, 0, n)
	rest := b.pending[:0]
	for _, r := range b.pending {
		if len(batch) == maxBatch || holds(batch, r.id) {
			rest = append(rest, r)
			continue
		}
		batch = append(batch, r)
	}
	clear(b.pending[len(rest):])
	b.pending = rest
	slices.SortFunc(batch, func(x, y *rotation) int { return strings.Compare(x.id, y.id) })
	return batch
}

func holds(batch []*rotation, id string) bool {
	for _, r := range batch {
		if r.id == id {
			return true
		}
	}
	return false
}

// run writes batch and tells its rotations.
func (b *batcher) run(ctx context.Context, batch []*rotation) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	err := b.write(ctx, batch)
	cancel()
	b.batches.Add(1)
	b.rotations.Add(int64(len(batch)))
	for _, r := range batch {
		if err != nil {
			r.matched, r.sess, r.groups, r.err = false, pasee.Session{}, nil, err
		}
		close(r.done)
	}
}

// writeRotations is the batcher's write: one rotation alone is the single
// statement; several are the dialect's batch.
func (s *Store) writeRotations(ctx context.Context, batch []*rotation) error {
	if len(batch) == 1 {
		return s.rotateOne(ctx, s.w, batch[0])
	}
	if s.d.name == sqldb.Postgres {
		err := s.rotateArrays(ctx, batch)
		if isDeadlock(err) {
			// Two instances' batches locked two sessions in opposite
			// orders (their plans differed); PostgreSQL rolled this one
			// back. One at a time cannot deadlock.
			// Each is then told its own outcome.
			for _, r := range batch {
				r.err = s.rotateOne(ctx, s.w, r)
			}
			return nil
		}
		return err
	}
	return s.rotateInTransaction(ctx, batch)
}

// rotateOne writes r with the single-row statement on q.
func (s *Store) rotateOne(ctx context.Context, q querier, r *rotation) error {
	var groups sql.NullString
	sess, err := scanSession(s.queryRow(ctx, q, s.d.rotateWithGroupsSQL, rotateArgs(r)...), &groups)
	switch {
	case err == nil:
		r.matched, r.sess, r.groups = true, sess, splitGroups(groups.String)
	case errors.Is(err, sql.ErrNoRows):
		r.matched, r.sess, r.groups = false, pasee.Session{}, nil
	default:
		return err
	}
	return nil
}

func rotateArgs(r *rotation) []any {
	return []any{r.next.RefreshJTI, r.next.AccessJTI, storeutil.Millis(r.next.IssuedAt), storeutil.Millis(r.next.ExpiresAt),
		storeutil.Millis(r.now), r.id, r.presented}
}

// rotateInTransaction writes batch as one SQLite transaction: one write
// lock, one commit.
func (s *Store) rotateInTransaction(ctx context.Context, batch []*rotation) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	for _, r := range batch {
		if err := s.rotateOne(ctx, tx, r); err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}

// rotateArraysSQL is rotateSQL for many sessions at once, on PostgreSQL:
// the rotations come as parallel arrays ($1 session ids, $2 presented
// tokens, $3 new refresh and $4 access token ids, $5 issue and $6 expiry
// times, $7 rotation times), and each row returned ends with the ordinal
// of its rotation. One statement, so one round trip and one commit; its
// conditions are rotateSQL's, row by row.
const rotateArraysSQL = `UPDATE pasee_sessions s
	SET previous_jti = s.refresh_jti, refresh_jti = v.b_refresh, access_jti = v.b_access,
	    issued_at = v.b_issued, expires_at = v.b_expires, rotated_at = v.b_now
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[])
	     WITH ORDINALITY AS v(b_id, b_presented, b_refresh, b_access, b_issued, b_expires, b_now, b_i)
	WHERE s.id = v.b_id AND s.refresh_jti = v.b_presented AND s.revoked_at IS NULL AND s.expires_at > v.b_now
	  AND NOT EXISTS (SELECT 1 FROM pasee_users u WHERE u.name = s.user_name AND u.is_banned)
	RETURNING ` + sessionColumns + `,
	  (SELECT string_agg(m.group_name, ' ') FROM pasee_memberships m WHERE m.user_name = s.user_name),
	  v.b_i`

// rotateArrays writes batch with rotateArraysSQL.
func (s *Store) rotateArrays(ctx context.Context, batch []*rotation) error {
	n := len(batch)
	ids, presented, refresh, access := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	issued, expires, now := make([]int64, n), make([]int64, n), make([]int64, n)
	for i, r := range batch {
		ids[i], presented[i], refresh[i], access[i] = r.id, r.presented, r.next.RefreshJTI, r.next.AccessJTI
		issued[i], expires[i], now[i] = storeutil.Millis(r.next.IssuedAt), storeutil.Millis(r.next.ExpiresAt), storeutil.Millis(r.now)
	}
	// Through pgx itself rather than database/sql: its rows scan into
	// the destinations directly, without a driver.Value per column.
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		pc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("rotate sessions: driver connection %T is not pgx's", dc)
		}
		rows, err := pc.Conn().Query(ctx, rotateArraysSQL, ids, presented, refresh, access, issued, expires, now)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				groups  sql.NullString
				ordinal int64
			)
			sess, err := scanSession(rows, &groups, &ordinal)
			if err != nil {
				return err
			}
			if ordinal < 1 || ordinal > int64(n) {
				return fmt.Errorf("rotate sessions: ordinal %d out of %d", ordinal, n)
			}
			r := batch[ordinal-1]
			r.matched, r.sess, r.groups = true, sess, splitGroups(groups.String)
		}
		return rows.Err()
	})
}

// deadlockDetected is PostgreSQL's error code for a transaction rolled
// back to break a lock cycle.
const deadlockDetected = "40P01"

func isDeadlock(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == deadlockDetected
}
