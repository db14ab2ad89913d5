package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee"
)

// groupsRotator is a store whose Rotate goes through RotateAndReadGroups
// and checks the groups it returns against UserGroups: the Rotate and
// ConcurrentRotations suites then hold RotateAndReadGroups to every
// outcome, race and audit event they hold Rotate to.
type groupsRotator struct {
	pasee.Store
	t *testing.T
}

func (g groupsRotator) Rotate(ctx context.Context, id, presentedJTI string, next pasee.NextTokens, now time.Time, grace time.Duration) (pasee.RotateOutcome, pasee.Session, error) {
	out, sess, groups, err := g.RotateAndReadGroups(ctx, id, presentedJTI, next, now, grace)
	if err != nil || (out != pasee.Rotated && out != pasee.Replayed) {
		return out, sess, err
	}
	want, err := g.UserGroups(ctx, sess.User)
	if err != nil {
		return out, sess, err
	}
	if groups == nil || !slices.Equal(groups, want) {
		// Not Fatalf: this may run on another goroutine.
		g.t.Errorf("RotateAndReadGroups(%s) outcome %v: groups %#v, want %#v", id, out, groups, want)
	}
	return out, sess, nil
}

// testRotateAndReadGroups runs the rotation suites through
// RotateAndReadGroups, then checks the groups of users who have some.
func testRotateAndReadGroups(t *testing.T, s pasee.Store) {
	t.Run("as Rotate", func(t *testing.T) { testRotate(t, groupsRotator{Store: s, t: t}) })
	t.Run("as Rotate, concurrently", func(t *testing.T) { testConcurrentRotate(t, groupsRotator{Store: s, t: t}) })

	ctx := t.Context()
	next := func(id string, n int) pasee.NextTokens {
		return pasee.NextTokens{RefreshJTI: fmt.Sprintf("%s-r%d", id, n), AccessJTI: fmt.Sprintf("%s-a%d", id, n),
			IssuedAt: at(time.Minute), ExpiresAt: at(time.Minute + 24*time.Hour)}
	}
	newSession(t, s, "grouped", "kisee-grouped")
	ensure(t, s, "zeta", "alpha.beta", "mid")
	add(t, s, "zeta", "kisee-grouped")
	add(t, s, "alpha.beta.staff", "kisee-grouped")
	add(t, s, "mid", "kisee-grouped", "kisee-other")
	want := []string{"alpha.beta.staff", "mid", "zeta"}

	t.Run("the user's groups come sorted with the rotation", func(t *testing.T) {
		out, sess, groups, err := s.RotateAndReadGroups(ctx, "grouped", "grouped-r0", next("grouped", 1), at(time.Minute), 5*time.Second)
		must(t, err)
		if out != pasee.Rotated || sess.RefreshJTI != "grouped-r1" {
			t.Fatalf("outcome %v, session %+v", out, sess)
		}
		equal(t, "groups", groups, want)
	})
	t.Run("and with a replay", func(t *testing.T) {
		out, sess, groups, err := s.RotateAndReadGroups(ctx, "grouped", "grouped-r0", next("grouped", 2), at(time.Minute+time.Second), 5*time.Second)
		must(t, err)
		if out != pasee.Replayed || sess.RefreshJTI != "grouped-r1" {
			t.Fatalf("outcome %v, session %+v", out, sess)
		}
		equal(t, "groups", groups, want)
	})
	t.Run("a membership removed is gone from the next rotation", func(t *testing.T) {
		must(t, s.RemoveMember(ctx, "cli", "zeta", "kisee-grouped", at(0)))
		out, _, groups, err := s.RotateAndReadGroups(ctx, "grouped", "grouped-r1", next("grouped", 3), at(2*time.Minute), 5*time.Second)
		must(t, err)
		if out != pasee.Rotated {
			t.Fatalf("outcome %v", out)
		}
		equal(t, "groups", groups, []string{"alpha.beta.staff", "mid"})
	})
	t.Run("a user in no group gets an empty list", func(t *testing.T) {
		newSession(t, s, "lonely", "kisee-lonely")
		out, _, groups, err := s.RotateAndReadGroups(ctx, "lonely", "lonely-r0", next("lonely", 1), at(time.Minute), 5*time.Second)
		must(t, err)
		if out != pasee.Rotated || groups == nil || len(groups) != 0 {
			t.Fatalf("outcome %v, groups %#v, want Rotated and []", out, groups)
		}
	})
	t.Run("a banned user's session is refused, its groups not read", func(t *testing.T) {
		newSession(t, s, "banned", "kisee-banned")
		add(t, s, "mid", "kisee-banned")
		must(t, s.SetBanned(ctx, "cli", "kisee-banned", true, at(0)))
		out, _, groups, err := s.RotateAndReadGroups(ctx, "banned", "banned-r0", next("banned", 1), at(time.Minute), 5*time.Second)
		must(t, err)
		if out != pasee.SessionRevoked || len(groups) != 0 {
			t.Fatalf("outcome %v, groups %#v, want SessionRevoked and none", out, groups)
		}
	})
}
