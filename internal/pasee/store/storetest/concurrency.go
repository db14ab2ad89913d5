package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee"
)

// SPEC section 4: concurrent writers never lose a membership or a session
// update. These tests are meant for the race detector too.

func testConcurrentMembers(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	ensure(t, s, "team")
	leaving := names("kisee-old", 50)
	joining := names("kisee-new", 50)
	add(t, s, "team", leaving...)
	since := lastAuditID(t, s)

	var wg sync.WaitGroup
	errs := make([]error, 100)
	for i := range 50 {
		wg.Go(func() { errs[i] = s.AddMember(ctx, "cli", "team", joining[i], at(0)) })
		wg.Go(func() { errs[50+i] = s.RemoveMember(ctx, "cli", "team", leaving[i], at(0)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Run("the final members are exactly those added", func(t *testing.T) {
		equal(t, "team members", members(t, s, "team"), joining)
	})
	t.Run("every change is audited once", func(t *testing.T) {
		adds, removes := 0, 0
		for _, e := range auditSince(t, s, since) {
			switch e.Action {
			case pasee.ActionMemberAdd:
				adds++
			case pasee.ActionMemberRemove:
				removes++
			}
		}
		if adds != 50 || removes != 50 {
			t.Fatalf("%d adds and %d removes audited, want 50 and 50", adds, removes)
		}
	})
	t.Run("the same member added concurrently is added once", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make([]error, 10)
		for i := range errs {
			wg.Go(func() { errs[i] = s.AddMember(ctx, "cli", "team", "kisee-twin", at(0)) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, pasee.ErrAlreadyMember):
				t.Fatalf("AddMember: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d adds succeeded, want 1", ok)
		}
	})
}

func testConcurrentRotate(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	newSession(t, s, "sid", "kisee-alice")
	const n = 20
	type result struct {
		out  pasee.RotateOutcome
		sess pasee.Session
		next string
		err  error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			next := pasee.NextTokens{
				RefreshJTI: fmt.Sprintf("r1-%02d", i), AccessJTI: fmt.Sprintf("a1-%02d", i),
				IssuedAt: at(time.Minute), ExpiresAt: at(time.Minute + 24*time.Hour),
			}
			out, sess, err := s.Rotate(ctx, "sid", "sid-r0", next, at(time.Minute), 5*time.Second)
			results[i] = result{out, sess, next.RefreshJTI, err}
		})
	}
	wg.Wait()
	winner := ""
	for _, r := range results {
		must(t, r.err)
		switch r.out {
		case pasee.Rotated:
			if winner != "" {
				t.Fatalf("two rotations won: %s and %s", winner, r.next)
			}
			winner = r.next
		case pasee.Replayed:
		default:
			t.Fatalf("outcome %v, want Rotated or Replayed", r.out)
		}
	}
	if winner == "" {
		t.Fatal("no rotation won")
	}
	t.Run("every replay answers the winner's pair", func(t *testing.T) {
		for _, r := range results {
			if r.sess.RefreshJTI != winner || r.sess.PreviousJTI != "sid-r0" {
				t.Fatalf("outcome %v answered refresh %s (previous %s), want %s", r.out, r.sess.RefreshJTI, r.sess.PreviousJTI, winner)
			}
		}
	})
	t.Run("the stored session holds the winner's token, live", func(t *testing.T) {
		sess := session(t, s, "sid")
		if sess.RefreshJTI != winner || !sess.RevokedAt.IsZero() {
			t.Fatalf("session = %+v, want live with %s", sess, winner)
		}
	})
}

func testConcurrentLogins(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = s.RecordLogin(ctx, "kisee-newcomer", at(time.Duration(i)*time.Second))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	users, err := s.ListUsers(ctx, "", 100)
	must(t, err)
	if len(users) != 1 || users[0].Name != "kisee-newcomer" {
		t.Fatalf("users = %+v, want kisee-newcomer once", users)
	}
}

func testConcurrentCreate(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	creators := names("kisee-c", 10)
	errs := make([]error, len(creators))
	var wg sync.WaitGroup
	for i, c := range creators {
		wg.Go(func() { errs[i] = s.CreateGroup(ctx, c, "race", c, at(0)) })
	}
	wg.Wait()
	winner := ""
	for i, err := range errs {
		switch {
		case err == nil:
			if winner != "" {
				t.Fatalf("two creations succeeded: %s and %s", winner, creators[i])
			}
			winner = creators[i]
		case !errors.Is(err, pasee.ErrGroupExists):
			t.Fatalf("CreateGroup: %v", err)
		}
	}
	if winner == "" {
		t.Fatal("no creation succeeded")
	}
	equal(t, "race.staff members", members(t, s, "race.staff"), []string{winner})
}

// testCreateRacingDelete creates a subgroup while its parent is deleted: a
// group never outlives its parent.
func testCreateRacingDelete(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	for round := range 10 {
		parent := fmt.Sprintf("p%d", round)
		ensure(t, s, parent)
		var createErr, deleteErr error
		var wg sync.WaitGroup
		wg.Go(func() { createErr = s.CreateGroup(ctx, "kisee-a", parent+".child", "kisee-a", at(0)) })
		wg.Go(func() { deleteErr = s.DeleteGroup(ctx, "kisee-b", parent, at(0)) })
		wg.Wait()
		must(t, deleteErr)
		if createErr != nil && !errors.Is(createErr, pasee.ErrParentNotFound) {
			t.Fatalf("CreateGroup: %v", createErr)
		}
		for _, g := range []string{parent, parent + ".child", parent + ".child.staff"} {
			if exists(t, s, g) {
				t.Fatalf("round %d: %s survived the deletion of %s", round, g, parent)
			}
		}
	}
}

func testPing(t *testing.T, s pasee.Store) {
	must(t, s.Ping(t.Context()))
}

// testConcurrentManySessions refreshes many sessions at once, as a busy
// server does: a store may then write rotations together (one statement,
// one commit), and each must still come out as if written alone. Live
// sessions are refreshed three times in parallel with the same token;
// among them are sessions of a banned user, expired sessions and spent
// tokens, each of which must keep its own outcome inside a crowd.
func testConcurrentManySessions(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	const (
		sessions = 36
		grace    = 5 * time.Second
	)
	ensure(t, s, "g.0", "g.1", "g.2")
	type attempt struct {
		id, presented string
		when          time.Time
		next          pasee.NextTokens
		out           pasee.RotateOutcome
		sess          pasee.Session
		groups        []string
		err           error
	}
	kind := func(i int) string { return [...]string{"banned", "expired", "reused", "live", "live", "live"}[i%6] }
	user := func(i int) string { return fmt.Sprintf("kisee-crowd%02d", i) }
	wantGroups := func(i int) []string { return []string{fmt.Sprintf("g.%d", i%3)} }
	var attempts []*attempt
	for i := range sessions {
		id := fmt.Sprintf("crowd%02d", i)
		_, err := s.RecordLogin(ctx, user(i), at(0))
		must(t, err)
		add(t, s, wantGroups(i)[0], user(i))
		expires := at(24 * time.Hour)
		when := at(time.Minute)
		tries := 3
		switch kind(i) {
		case "banned": // banned after the session was opened, as "late" above
			must(t, s.SetBanned(ctx, "kisee-root", user(i), true, at(0)))
		case "expired":
			expires = at(30 * time.Second)
		case "reused":
			when, tries = at(time.Minute+grace+time.Second), 1
		}
		must(t, s.CreateSession(ctx, pasee.Session{ID: id, User: user(i), IDP: "kisee",
			RefreshJTI: id + "-r0", AccessJTI: id + "-a0", IssuedAt: at(0), ExpiresAt: expires, CreatedAt: at(0)}))
		presented := id + "-r0"
		if kind(i) == "reused" {
			out, _, _, err := s.RotateAndReadGroups(ctx, id, presented, pasee.NextTokens{RefreshJTI: id + "-r1", AccessJTI: id + "-a1",
				IssuedAt: at(time.Minute), ExpiresAt: at(time.Minute + 24*time.Hour)}, at(time.Minute), grace)
			must(t, err)
			if out != pasee.Rotated {
				t.Fatalf("preparing %s: outcome %v", id, out)
			}
		}
		for k := range tries {
			attempts = append(attempts, &attempt{id: id, presented: presented, when: when, next: pasee.NextTokens{
				RefreshJTI: fmt.Sprintf("%s-r1-%d", id, k), AccessJTI: fmt.Sprintf("%s-a1-%d", id, k),
				IssuedAt: when, ExpiresAt: when.Add(24 * time.Hour)}})
		}
	}
	run := func(attempts []*attempt) {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, a := range attempts {
			wg.Go(func() {
				<-start
				a.out, a.sess, a.groups, a.err = s.RotateAndReadGroups(ctx, a.id, a.presented, a.next, a.when, grace)
			})
		}
		close(start)
		wg.Wait()
	}
	run(attempts)

	winners := map[string]string{}
	for _, a := range attempts {
		must(t, a.err)
		var i int
		fmt.Sscanf(a.id, "crowd%02d", &i)
		switch kind(i) {
		case "banned", "expired":
			if a.out != pasee.SessionRevoked {
				t.Fatalf("%s (%s): outcome %v, want SessionRevoked", a.id, kind(i), a.out)
			}
		case "reused":
			if a.out != pasee.ReuseDetected {
				t.Fatalf("%s (spent token): outcome %v, want ReuseDetected", a.id, a.out)
			}
		case "live":
			switch a.out {
			case pasee.Rotated:
				if w, ok := winners[a.id]; ok {
					t.Fatalf("%s: two rotations won: %s and %s", a.id, w, a.next.RefreshJTI)
				}
				winners[a.id] = a.next.RefreshJTI
			case pasee.Replayed:
			default:
				t.Fatalf("%s: outcome %v, want Rotated or Replayed", a.id, a.out)
			}
			if a.sess.User != user(i) || a.sess.PreviousJTI != a.presented {
				t.Fatalf("%s: answered session %+v", a.id, a.sess)
			}
			equal(t, a.id+" groups", a.groups, wantGroups(i))
		}
	}
	for _, a := range attempts {
		var i int
		fmt.Sscanf(a.id, "crowd%02d", &i)
		stored := session(t, s, a.id)
		switch kind(i) {
		case "live":
			if winners[a.id] == "" || a.sess.RefreshJTI != winners[a.id] || stored.RefreshJTI != winners[a.id] || !stored.RevokedAt.IsZero() {
				t.Fatalf("%s: answered %s, stored %+v, winner %q", a.id, a.sess.RefreshJTI, stored, winners[a.id])
			}
		case "expired", "banned":
			if stored.RefreshJTI != a.id+"-r0" {
				t.Fatalf("%s (%s): stored refresh token %s, want it unchanged", a.id, kind(i), stored.RefreshJTI)
			}
		case "reused":
			if stored.RevokedAt.IsZero() || stored.RefreshJTI != a.id+"-r1" {
				t.Fatalf("%s (spent token): stored %+v, want revoked with -r1", a.id, stored)
			}
		}
	}

	t.Run("the winners' tokens rotate again, all together", func(t *testing.T) {
		var again []*attempt
		for id, w := range winners {
			again = append(again, &attempt{id: id, presented: w, when: at(2 * time.Minute), next: pasee.NextTokens{
				RefreshJTI: id + "-r2", AccessJTI: id + "-a2", IssuedAt: at(2 * time.Minute), ExpiresAt: at(2*time.Minute + 24*time.Hour)}})
		}
		run(again)
		for _, a := range again {
			must(t, a.err)
			if a.out != pasee.Rotated || a.sess.RefreshJTI != a.id+"-r2" || a.sess.PreviousJTI != a.presented {
				t.Fatalf("%s: outcome %v, session %+v", a.id, a.out, a.sess)
			}
		}
	})
}
