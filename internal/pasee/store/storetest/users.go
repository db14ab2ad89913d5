package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee"
)

// newSession records user's login and a session id for it, issued at at(0),
// whose refresh token id+"-r0" expires a day later.
func newSession(t *testing.T, s pasee.Store, id, user string) pasee.Session {
	t.Helper()
	_, err := s.RecordLogin(t.Context(), user, at(0))
	must(t, err)
	sess := pasee.Session{
		ID: id, User: user, IDP: "kisee",
		RefreshJTI: id + "-r0", AccessJTI: id + "-a0",
		IssuedAt: at(0), ExpiresAt: at(24 * time.Hour), CreatedAt: at(0),
	}
	must(t, s.CreateSession(t.Context(), sess))
	return sess
}

func session(t *testing.T, s pasee.Store, id string) pasee.Session {
	t.Helper()
	sess, err := s.GetSession(t.Context(), id)
	must(t, err)
	return sess
}

func testRecordLogin(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	t.Run("the first login records the user", func(t *testing.T) {
		u, err := s.RecordLogin(ctx, "kisee-alice", at(0))
		must(t, err)
		want := pasee.User{Name: "kisee-alice", CreatedAt: at(0), LastLoginAt: at(0)}
		checkUser(t, u, want)
		got, err := s.GetUser(ctx, "kisee-alice")
		must(t, err)
		checkUser(t, got, want)
	})
	t.Run("a later login moves the last login only", func(t *testing.T) {
		u, err := s.RecordLogin(ctx, "kisee-alice", at(time.Hour))
		must(t, err)
		want := pasee.User{Name: "kisee-alice", CreatedAt: at(0), LastLoginAt: at(time.Hour)}
		checkUser(t, u, want)
		got, err := s.GetUser(ctx, "kisee-alice")
		must(t, err)
		checkUser(t, got, want)
	})
	t.Run("the login of a banned user says it is banned", func(t *testing.T) {
		_, err := s.RecordLogin(ctx, "kisee-mallory", at(0))
		must(t, err)
		must(t, s.SetBanned(ctx, "kisee-root", "kisee-mallory", true, at(0)))
		u, err := s.RecordLogin(ctx, "kisee-mallory", at(time.Minute))
		must(t, err)
		if !u.IsBanned {
			t.Fatal("IsBanned = false")
		}
	})
	t.Run("GetUser of an unknown user fails with ErrUserNotFound", func(t *testing.T) {
		_, err := s.GetUser(ctx, "kisee-nobody")
		mustErr(t, err, pasee.ErrUserNotFound)
	})
}

func checkUser(t *testing.T, got, want pasee.User) {
	t.Helper()
	if got.Name != want.Name || got.IsBanned != want.IsBanned ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.LastLoginAt.Equal(want.LastLoginAt) {
		t.Fatalf("user = %+v, want %+v", got, want)
	}
}

func testListUsers(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	all := []string{"kisee-B", "kisee-a", "kisee-a-b", "kisee-a.b", "kisee-a_b", "twitter-1"}
	for _, i := range []int{3, 0, 5, 1, 4, 2} {
		_, err := s.RecordLogin(ctx, all[i], at(0))
		must(t, err)
	}
	for _, tc := range []struct {
		name, after string
		limit       int
		want        []string
	}{
		{"all users in byte order", "", 100, all},
		{"the first page", "", 2, all[:2]},
		{"after is exclusive", "kisee-a", 2, []string{"kisee-a-b", "kisee-a.b"}},
		{"after need not be a user", "kisee-a.a", 10, []string{"kisee-a.b", "kisee-a_b", "twitter-1"}},
		{"after the last user the page is empty", "twitter-1", 10, nil},
		{"a zero limit gives nothing", "", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListUsers(ctx, tc.after, tc.limit)
			must(t, err)
			var gotNames []string
			for _, u := range got {
				gotNames = append(gotNames, u.Name)
				sameTime(t, u.Name+" CreatedAt", u.CreatedAt, at(0))
			}
			equal(t, "users", gotNames, tc.want)
		})
	}
}

func testSetBanned(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	newSession(t, s, "s1", "kisee-mallory")
	newSession(t, s, "s2", "kisee-mallory")
	newSession(t, s, "s3", "kisee-mallory")
	newSession(t, s, "s4", "kisee-alice")
	must(t, s.RevokeSession(ctx, "kisee-mallory", "s3", at(time.Minute)))

	t.Run("banning sets the flag and revokes every live session", func(t *testing.T) {
		must(t, s.SetBanned(ctx, "kisee-root", "kisee-mallory", true, at(time.Hour)))
		u, err := s.GetUser(ctx, "kisee-mallory")
		must(t, err)
		if !u.IsBanned {
			t.Fatal("IsBanned = false")
		}
		for _, id := range []string{"s1", "s2"} {
			sameTime(t, id+" RevokedAt", session(t, s, id).RevokedAt, at(time.Hour))
		}
	})
	t.Run("a session revoked before keeps its revocation time", func(t *testing.T) {
		sameTime(t, "s3 RevokedAt", session(t, s, "s3").RevokedAt, at(time.Minute))
	})
	t.Run("the sessions of other users live on", func(t *testing.T) {
		if r := session(t, s, "s4").RevokedAt; !r.IsZero() {
			t.Fatalf("s4 RevokedAt = %v", r)
		}
	})
	t.Run("banning twice is harmless", func(t *testing.T) {
		must(t, s.SetBanned(ctx, "kisee-root", "kisee-mallory", true, at(2*time.Hour)))
		sameTime(t, "s1 RevokedAt", session(t, s, "s1").RevokedAt, at(time.Hour))
	})
	t.Run("unbanning clears the flag but revoked sessions stay revoked", func(t *testing.T) {
		must(t, s.SetBanned(ctx, "kisee-root", "kisee-mallory", false, at(3*time.Hour)))
		u, err := s.GetUser(ctx, "kisee-mallory")
		must(t, err)
		if u.IsBanned {
			t.Fatal("IsBanned = true")
		}
		sameTime(t, "s1 RevokedAt", session(t, s, "s1").RevokedAt, at(time.Hour))
	})
	for _, banned := range []bool{true, false} {
		name := "unbanning an unknown user fails with ErrUserNotFound"
		if banned {
			name = "banning an unknown user fails with ErrUserNotFound"
		}
		t.Run(name, func(t *testing.T) {
			mustErr(t, s.SetBanned(ctx, "kisee-root", "kisee-nobody", banned, at(0)), pasee.ErrUserNotFound)
			if _, err := s.GetUser(ctx, "kisee-nobody"); !errors.Is(err, pasee.ErrUserNotFound) {
				t.Fatalf("GetUser = %v: the unknown user was recorded", err)
			}
		})
	}
}

func testRevokeUserSessions(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	newSession(t, s, "s1", "kisee-mallory")
	newSession(t, s, "s2", "kisee-mallory")
	newSession(t, s, "s3", "kisee-mallory")
	newSession(t, s, "s4", "kisee-alice")
	must(t, s.RevokeSession(ctx, "kisee-mallory", "s3", at(time.Minute)))

	t.Run("revokes every live session and counts them", func(t *testing.T) {
		n, err := s.RevokeUserSessions(ctx, "kisee-root", "kisee-mallory", at(time.Hour))
		must(t, err)
		if n != 2 {
			t.Fatalf("%d sessions revoked, want 2", n)
		}
		for _, id := range []string{"s1", "s2"} {
			sameTime(t, id+" RevokedAt", session(t, s, id).RevokedAt, at(time.Hour))
		}
	})
	t.Run("a session revoked before keeps its revocation time", func(t *testing.T) {
		sameTime(t, "s3 RevokedAt", session(t, s, "s3").RevokedAt, at(time.Minute))
	})
	t.Run("the user is not banned", func(t *testing.T) {
		u, err := s.GetUser(ctx, "kisee-mallory")
		must(t, err)
		if u.IsBanned {
			t.Fatal("IsBanned = true")
		}
	})
	t.Run("the sessions of other users live on", func(t *testing.T) {
		if r := session(t, s, "s4").RevokedAt; !r.IsZero() {
			t.Fatalf("s4 RevokedAt = %v", r)
		}
	})
	t.Run("a revoked session cannot be rotated", func(t *testing.T) {
		outcome, _, err := s.Rotate(ctx, "s1", "s1-r0", pasee.NextTokens{RefreshJTI: "s1-r1", AccessJTI: "s1-a1", IssuedAt: at(2 * time.Hour), ExpiresAt: at(26 * time.Hour)}, at(2*time.Hour), 5*time.Second)
		must(t, err)
		if outcome != pasee.SessionRevoked {
			t.Fatalf("Rotate = %v, want SessionRevoked", outcome)
		}
	})
	t.Run("a user without live sessions has none revoked", func(t *testing.T) {
		n, err := s.RevokeUserSessions(ctx, "kisee-root", "kisee-mallory", at(3*time.Hour))
		must(t, err)
		if n != 0 {
			t.Fatalf("%d sessions revoked, want 0", n)
		}
		sameTime(t, "s1 RevokedAt", session(t, s, "s1").RevokedAt, at(time.Hour))
	})
	t.Run("a later login opens a live session again", func(t *testing.T) {
		newSession(t, s, "s5", "kisee-mallory")
		if r := session(t, s, "s5").RevokedAt; !r.IsZero() {
			t.Fatalf("s5 RevokedAt = %v", r)
		}
	})
	t.Run("an unknown user fails with ErrUserNotFound", func(t *testing.T) {
		_, err := s.RevokeUserSessions(ctx, "kisee-root", "kisee-nobody", at(0))
		mustErr(t, err, pasee.ErrUserNotFound)
		if _, err := s.GetUser(ctx, "kisee-nobody"); !errors.Is(err, pasee.ErrUserNotFound) {
			t.Fatalf("GetUser = %v: the unknown user was recorded", err)
		}
	})
}

func testDeleteUser(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	ensure(t, s, "team", "other")
	add(t, s, "team", "kisee-alice", "kisee-bob")
	add(t, s, "other", "kisee-alice")
	add(t, s, "team.staff", "kisee-alice")
	newSession(t, s, "s1", "kisee-alice")
	newSession(t, s, "s2", "kisee-bob")

	t.Run("removes the user, its memberships and its sessions", func(t *testing.T) {
		must(t, s.DeleteUser(ctx, "kisee-root", "kisee-alice", at(time.Hour)))
		_, err := s.GetUser(ctx, "kisee-alice")
		mustErr(t, err, pasee.ErrUserNotFound)
		equal(t, "groups of kisee-alice", userGroups(t, s, "kisee-alice"), nil)
		equal(t, "team members", members(t, s, "team"), []string{"kisee-bob"})
		equal(t, "other members", members(t, s, "other"), nil)
		_, err = s.GetSession(ctx, "s1")
		mustErr(t, err, pasee.ErrNotFound)
	})
	t.Run("leaves the groups and other users", func(t *testing.T) {
		if !exists(t, s, "team") || !exists(t, s, "team.staff") || !exists(t, s, "other") {
			t.Fatalf("groups = %q", allGroups(t, s))
		}
		if r := session(t, s, "s2").RevokedAt; !r.IsZero() {
			t.Fatalf("s2 RevokedAt = %v", r)
		}
	})
	t.Run("an unknown user fails with ErrUserNotFound", func(t *testing.T) {
		mustErr(t, s.DeleteUser(ctx, "kisee-root", "kisee-alice", at(0)), pasee.ErrUserNotFound)
		mustErr(t, s.DeleteUser(ctx, "kisee-root", "kisee-nobody", at(0)), pasee.ErrUserNotFound)
	})
	t.Run("a deleted user comes back as a new user", func(t *testing.T) {
		u, err := s.RecordLogin(ctx, "kisee-alice", at(2*time.Hour))
		must(t, err)
		checkUser(t, u, pasee.User{Name: "kisee-alice", CreatedAt: at(2 * time.Hour), LastLoginAt: at(2 * time.Hour)})
		equal(t, "groups of kisee-alice", userGroups(t, s, "kisee-alice"), nil)
	})
}

func testCallerStatus(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	newSession(t, s, "sess-a", "kisee-alice")
	newSession(t, s, "sess-b", "kisee-bob")
	check := func(name, user, sid string, wantBanned, wantLive bool) {
		t.Helper()
		banned, live, err := s.CallerStatus(ctx, user, sid)
		must(t, err)
		if banned != wantBanned || live != wantLive {
			t.Errorf("%s: banned=%v live=%v, want %v %v", name, banned, live, wantBanned, wantLive)
		}
	}
	check("a live session", "kisee-alice", "sess-a", false, true)
	check("another user's session", "kisee-alice", "sess-b", false, false)
	check("an unknown session", "kisee-alice", "nope", false, false)
	check("no session asked", "kisee-alice", "", false, false)
	must(t, s.RevokeSession(ctx, "test", "sess-a", at(time.Minute)))
	check("a revoked session", "kisee-alice", "sess-a", false, false)
	must(t, s.SetBanned(ctx, "test", "kisee-bob", true, at(time.Minute)))
	check("a banned user", "kisee-bob", "sess-b", true, false)
	if _, _, err := s.CallerStatus(ctx, "kisee-nobody", "x"); !errors.Is(err, pasee.ErrUserNotFound) {
		t.Errorf("unknown user: %v, want ErrUserNotFound", err)
	}
}
