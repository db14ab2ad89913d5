package storetest

import (
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee"
)

func checkSession(t *testing.T, got, want pasee.Session) {
	t.Helper()
	if got.ID != want.ID || got.User != want.User || got.IDP != want.IDP ||
		got.RefreshJTI != want.RefreshJTI || got.AccessJTI != want.AccessJTI || got.PreviousJTI != want.PreviousJTI {
		t.Fatalf("session =\n%+v\nwant\n%+v", got, want)
	}
	sameTime(t, "IssuedAt", got.IssuedAt, want.IssuedAt)
	sameTime(t, "RotatedAt", got.RotatedAt, want.RotatedAt)
	sameTime(t, "ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	sameTime(t, "RevokedAt", got.RevokedAt, want.RevokedAt)
	sameTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	if len(got.Claims) != len(want.Claims) || (len(want.Claims) > 0 && !maps.EqualFunc(got.Claims, want.Claims, func(a, b any) bool { return a == b })) {
		t.Fatalf("claims = %#v, want %#v", got.Claims, want.Claims)
	}
}

func testSessions(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	_, err := s.RecordLogin(ctx, "kisee-alice", at(0))
	must(t, err)
	full := pasee.Session{
		ID: "sid-1", User: "kisee-alice", IDP: "kisee",
		Claims:     map[string]any{"email": "alice@example.com", "email_verified": true, "age": float64(42)},
		RefreshJTI: "r1", AccessJTI: "a1", PreviousJTI: "r0",
		IssuedAt: at(time.Minute), RotatedAt: at(time.Minute), ExpiresAt: at(24 * time.Hour), CreatedAt: at(0),
	}
	t.Run("a session reads back as written", func(t *testing.T) {
		must(t, s.CreateSession(ctx, full))
		checkSession(t, session(t, s, "sid-1"), full)
	})
	t.Run("a session without claims reads back without claims", func(t *testing.T) {
		bare := pasee.Session{ID: "sid-2", User: "kisee-alice", IDP: "kisee", RefreshJTI: "r", AccessJTI: "a",
			IssuedAt: at(0), ExpiresAt: at(time.Hour), CreatedAt: at(0)}
		must(t, s.CreateSession(ctx, bare))
		checkSession(t, session(t, s, "sid-2"), bare)
	})
	t.Run("a second session with the same id is refused", func(t *testing.T) {
		dup := full
		dup.RefreshJTI = "other"
		if err := s.CreateSession(ctx, dup); err == nil {
			t.Fatal("CreateSession of an existing id succeeded")
		}
		checkSession(t, session(t, s, "sid-1"), full)
	})
	t.Run("an unknown session fails with ErrNotFound", func(t *testing.T) {
		_, err := s.GetSession(ctx, "nope")
		mustErr(t, err, pasee.ErrNotFound)
	})
	t.Run("revoking sets the revocation time", func(t *testing.T) {
		must(t, s.RevokeSession(ctx, "kisee-alice", "sid-1", at(time.Hour)))
		want := full
		want.RevokedAt = at(time.Hour)
		checkSession(t, session(t, s, "sid-1"), want)
	})
	t.Run("revoking again keeps the first revocation time", func(t *testing.T) {
		must(t, s.RevokeSession(ctx, "kisee-alice", "sid-1", at(2*time.Hour)))
		sameTime(t, "RevokedAt", session(t, s, "sid-1").RevokedAt, at(time.Hour))
	})
	t.Run("revoking an unknown session fails with ErrNotFound", func(t *testing.T) {
		mustErr(t, s.RevokeSession(ctx, "kisee-alice", "nope", at(0)), pasee.ErrNotFound)
	})
}

func testRotate(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	const grace = 5 * time.Second
	next := func(id string, n int, when time.Time) pasee.NextTokens {
		return pasee.NextTokens{
			RefreshJTI: fmt.Sprintf("%s-r%d", id, n), AccessJTI: fmt.Sprintf("%s-a%d", id, n),
			IssuedAt: when, ExpiresAt: when.Add(24 * time.Hour),
		}
	}
	rotate := func(t *testing.T, id, presented string, n int, when time.Time, g time.Duration) (pasee.RotateOutcome, pasee.Session) {
		t.Helper()
		out, sess, err := s.Rotate(ctx, id, presented, next(id, n, when), when, g)
		must(t, err)
		return out, sess
	}
	rotated := func(t *testing.T, id, presented string, n int, when time.Time) {
		t.Helper()
		if out, _ := rotate(t, id, presented, n, when, grace); out != pasee.Rotated {
			t.Fatalf("preparing rotation: outcome %v, want Rotated", out)
		}
	}

	t.Run("the live token is rotated", func(t *testing.T) {
		created := newSession(t, s, "live", "kisee-alice")
		out, got := rotate(t, "live", "live-r0", 1, at(time.Minute), grace)
		if out != pasee.Rotated {
			t.Fatalf("outcome = %v, want Rotated", out)
		}
		want := created
		want.RefreshJTI, want.AccessJTI, want.PreviousJTI = "live-r1", "live-a1", "live-r0"
		want.IssuedAt, want.RotatedAt, want.ExpiresAt = at(time.Minute), at(time.Minute), at(time.Minute+24*time.Hour)
		checkSession(t, got, want)
		checkSession(t, session(t, s, "live"), want)
	})
	t.Run("the new token is rotated in turn", func(t *testing.T) {
		out, got := rotate(t, "live", "live-r1", 2, at(2*time.Minute), grace)
		if out != pasee.Rotated || got.RefreshJTI != "live-r2" || got.PreviousJTI != "live-r1" {
			t.Fatalf("outcome = %v, session = %+v", out, got)
		}
	})

	for i, tc := range []struct {
		name string
		// prepare runs after the session id (user id+"-user", refresh token
		// id-r0 issued at at(0), expiring at at(0)+24h) is created.
		prepare   func(t *testing.T, id string)
		session   string // presented session, if not the prepared one
		presented string // presented token, as a suffix of id
		when      time.Time
		grace     time.Duration
		want      pasee.RotateOutcome
		// current is the refresh token the session holds afterwards (as a
		// suffix of id); revoked whether it is revoked afterwards.
		current string
		revoked bool
	}{
		{
			name:      "a spent token within the grace window is replayed with the current pair",
			prepare:   func(t *testing.T, id string) { rotated(t, id, id+"-r0", 1, at(time.Minute)) },
			presented: "-r0", when: at(time.Minute + 3*time.Second), grace: grace,
			want: pasee.Replayed, current: "-r1",
		},
		{
			name:      "a spent token at the end of the grace window is replayed",
			prepare:   func(t *testing.T, id string) { rotated(t, id, id+"-r0", 1, at(time.Minute)) },
			presented: "-r0", when: at(time.Minute + grace), grace: grace,
			want: pasee.Replayed, current: "-r1",
		},
		{
			name:      "a spent token after the grace window is reuse: the session is revoked",
			prepare:   func(t *testing.T, id string) { rotated(t, id, id+"-r0", 1, at(time.Minute)) },
			presented: "-r0", when: at(time.Minute + grace + time.Second), grace: grace,
			want: pasee.ReuseDetected, current: "-r1", revoked: true,
		},
		{
			name: "an older spent token is reuse even within the grace window",
			prepare: func(t *testing.T, id string) {
				rotated(t, id, id+"-r0", 1, at(time.Minute))
				rotated(t, id, id+"-r1", 2, at(time.Minute+time.Second))
			},
			presented: "-r0", when: at(time.Minute + 2*time.Second), grace: grace,
			want: pasee.ReuseDetected, current: "-r2", revoked: true,
		},
		{
			name:      "a spent token with no grace window is reuse",
			prepare:   func(t *testing.T, id string) { rotated(t, id, id+"-r0", 1, at(time.Minute)) },
			presented: "-r0", when: at(time.Minute + time.Second), grace: 0,
			want: pasee.ReuseDetected, current: "-r1", revoked: true,
		},
		{
			name:      "with no grace window, reuse in the very instant of rotation is reuse",
			prepare:   func(t *testing.T, id string) { rotated(t, id, id+"-r0", 1, at(time.Minute)) },
			presented: "-r0", when: at(time.Minute), grace: 0,
			want: pasee.ReuseDetected, current: "-r1", revoked: true,
		},
		{
			name:      "a token the session never had is reuse",
			presented: "-forged", when: at(time.Minute), grace: grace,
			want: pasee.ReuseDetected, current: "-r0", revoked: true,
		},
		{
			name: "the live token of a revoked session is refused",
			prepare: func(t *testing.T, id string) {
				must(t, s.RevokeSession(ctx, id+"-user", id, at(time.Second)))
			},
			presented: "-r0", when: at(time.Minute), grace: grace,
			want: pasee.SessionRevoked, current: "-r0", revoked: true,
		},
		{
			name: "a replay after the session was revoked is refused",
			prepare: func(t *testing.T, id string) {
				rotated(t, id, id+"-r0", 1, at(time.Minute))
				must(t, s.RevokeSession(ctx, id+"-user", id, at(time.Minute)))
			},
			presented: "-r0", when: at(time.Minute + time.Second), grace: grace,
			want: pasee.SessionRevoked, current: "-r1", revoked: true,
		},
		{
			name: "the session of a banned user is refused",
			prepare: func(t *testing.T, id string) {
				must(t, s.SetBanned(ctx, "kisee-root", id+"-user", true, at(time.Second)))
			},
			presented: "-r0", when: at(time.Minute), grace: grace,
			want: pasee.SessionRevoked, current: "-r0", revoked: true,
		},
		{
			name: "the session of a deleted user is refused",
			prepare: func(t *testing.T, id string) {
				must(t, s.DeleteUser(ctx, "kisee-root", id+"-user", at(time.Second)))
			},
			presented: "-r0", when: at(time.Minute), grace: grace,
			want: pasee.SessionRevoked,
		},
		{
			name:      "an expired session is refused and left as it was",
			presented: "-r0", when: at(25 * time.Hour), grace: grace,
			want: pasee.SessionRevoked, current: "-r0",
		},
		{
			name:      "a session is expired from its expiry time on",
			presented: "-r0", when: at(24 * time.Hour), grace: grace,
			want: pasee.SessionRevoked, current: "-r0",
		},
		{
			name:    "an unknown session is refused",
			session: "nope", presented: "-r0", when: at(time.Minute), grace: grace,
			want: pasee.SessionRevoked, current: "-r0",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("rot%02d", i)
			newSession(t, s, id, id+"-user")
			if tc.prepare != nil {
				tc.prepare(t, id)
			}
			target := id
			if tc.session != "" {
				target = tc.session
			}
			out, got := rotate(t, target, id+tc.presented, 9, tc.when, tc.grace)
			if out != tc.want {
				t.Fatalf("outcome = %v, want %v", out, tc.want)
			}
			if tc.current == "" { // the session is gone
				if _, err := s.GetSession(ctx, id); err == nil {
					t.Fatal("the session still exists")
				}
				return
			}
			after := session(t, s, id)
			if after.RefreshJTI != id+tc.current {
				t.Fatalf("live refresh token = %s, want %s", after.RefreshJTI, id+tc.current)
			}
			if after.RevokedAt.IsZero() == tc.revoked {
				t.Fatalf("RevokedAt = %v, want revoked: %v", after.RevokedAt, tc.revoked)
			}
			if target == id && (got.RefreshJTI != after.RefreshJTI || !got.RevokedAt.Equal(after.RevokedAt)) {
				t.Fatalf("returned session %+v differs from the stored one %+v", got, after)
			}
			if tc.want == pasee.ReuseDetected {
				sameTime(t, "RevokedAt", after.RevokedAt, tc.when)
				// The live token dies with the session.
				if o, _ := rotate(t, id, after.RefreshJTI, 8, tc.when.Add(time.Second), tc.grace); o != pasee.SessionRevoked {
					t.Fatalf("the live token after reuse: outcome %v, want SessionRevoked", o)
				}
			}
		})
	}

	t.Run("a session created after its user was banned cannot be refreshed", func(t *testing.T) {
		_, err := s.RecordLogin(ctx, "kisee-late", at(0))
		must(t, err)
		must(t, s.SetBanned(ctx, "kisee-root", "kisee-late", true, at(0)))
		must(t, s.CreateSession(ctx, pasee.Session{ID: "late", User: "kisee-late", IDP: "kisee",
			RefreshJTI: "late-r0", AccessJTI: "late-a0", IssuedAt: at(0), ExpiresAt: at(time.Hour), CreatedAt: at(0)}))
		if out, _ := rotate(t, "late", "late-r0", 1, at(time.Minute), grace); out != pasee.SessionRevoked {
			t.Fatalf("outcome = %v, want SessionRevoked", out)
		}
	})
}

// testExpiredSessionsArePurged checks that sessions long expired do not
// stay forever: a login after their expiry (and an hour's margin) starts
// their deletion, which leaves live sessions, recently expired ones and
// itself alone. The deletion runs beside the login, not in it: the test
// waits for it (up to 10 s).
func testExpiredSessionsArePurged(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	open := func(id string, expires time.Time, created time.Time) {
		t.Helper()
		_, err := s.RecordLogin(ctx, "kisee-"+id, created)
		must(t, err)
		must(t, s.CreateSession(ctx, pasee.Session{ID: id, User: "kisee-" + id, IDP: "kisee", RefreshJTI: id + "-r0",
			AccessJTI: id + "-a0", IssuedAt: created, ExpiresAt: expires, CreatedAt: created}))
	}
	open("old", at(time.Hour), at(0))
	open("recent", at(47*time.Hour+30*time.Minute), at(0))
	open("live", at(72*time.Hour), at(0))
	open("trigger", at(72*time.Hour), at(48*time.Hour)) // a login two days later
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, err := s.GetSession(ctx, "old")
		if errors.Is(err, pasee.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a session expired 47 hours before a login: GetSession error %v 10 s later, want ErrNotFound", err)
		}
	}
	for _, id := range []string{"recent", "live", "trigger"} {
		if _, err := s.GetSession(ctx, id); err != nil {
			t.Fatalf("session %s after the purge: %v", id, err)
		}
	}
	if out, _, err := s.Rotate(ctx, "old", "old-r0", pasee.NextTokens{RefreshJTI: "x", AccessJTI: "y", IssuedAt: at(48 * time.Hour),
		ExpiresAt: at(72 * time.Hour)}, at(48*time.Hour), 5*time.Second); err != nil || out != pasee.SessionRevoked {
		t.Fatalf("the purged session's token: outcome %v, error %v, want SessionRevoked", out, err)
	}
}
