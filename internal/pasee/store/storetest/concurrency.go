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
