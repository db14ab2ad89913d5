package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee"
)

func testAddMember(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	ensure(t, s, "team")
	t.Run("adds a member and records a user never seen before", func(t *testing.T) {
		must(t, s.AddMember(ctx, "kisee-root", "team", "kisee-alice", at(time.Hour)))
		equal(t, "team members", members(t, s, "team"), []string{"kisee-alice"})
		u, err := s.GetUser(ctx, "kisee-alice")
		must(t, err)
		sameTime(t, "CreatedAt", u.CreatedAt, at(time.Hour))
		if !u.LastLoginAt.IsZero() {
			t.Fatalf("LastLoginAt = %v, want zero: the user never logged in", u.LastLoginAt)
		}
	})
	t.Run("keeps the record of a known user", func(t *testing.T) {
		_, err := s.RecordLogin(ctx, "kisee-bob", at(0))
		must(t, err)
		must(t, s.AddMember(ctx, "kisee-root", "team", "kisee-bob", at(time.Hour)))
		u, err := s.GetUser(ctx, "kisee-bob")
		must(t, err)
		sameTime(t, "CreatedAt", u.CreatedAt, at(0))
		sameTime(t, "LastLoginAt", u.LastLoginAt, at(0))
	})
	t.Run("a member of a group is not a member of its staff group, nor of its parent", func(t *testing.T) {
		ensure(t, s, "team.sub")
		add(t, s, "team.sub", "kisee-carol")
		equal(t, "team.staff members", members(t, s, "team.staff"), nil)
		equal(t, "groups of kisee-carol", userGroups(t, s, "kisee-carol"), []string{"team.sub"})
	})
	for _, tc := range []struct {
		name, group, user string
		want              error
	}{
		{"a member already in the group fails with ErrAlreadyMember", "team", "kisee-alice", pasee.ErrAlreadyMember},
		{"an unknown group fails with ErrGroupNotFound", "nope", "kisee-ghost", pasee.ErrGroupNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustErr(t, s.AddMember(ctx, "kisee-root", tc.group, tc.user, at(0)), tc.want)
		})
	}
	t.Run("a failed add records no user", func(t *testing.T) {
		if _, err := s.GetUser(ctx, "kisee-ghost"); !errors.Is(err, pasee.ErrUserNotFound) {
			t.Fatalf("GetUser(kisee-ghost) = %v, want ErrUserNotFound", err)
		}
	})
}

func testRemoveMember(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	ensure(t, s, "team", "other")
	add(t, s, "team", "kisee-alice", "kisee-bob")
	add(t, s, "other", "kisee-carol")
	t.Run("removes the member only", func(t *testing.T) {
		must(t, s.RemoveMember(ctx, "kisee-root", "team", "kisee-alice", at(0)))
		equal(t, "team members", members(t, s, "team"), []string{"kisee-bob"})
	})
	t.Run("keeps the user", func(t *testing.T) {
		_, err := s.GetUser(ctx, "kisee-alice")
		must(t, err)
	})
	for _, tc := range []struct {
		name, group, user string
		want              error
	}{
		{"a removed member fails with ErrNotMember", "team", "kisee-alice", pasee.ErrNotMember},
		{"a member of another group fails with ErrNotMember", "team", "kisee-carol", pasee.ErrNotMember},
		{"an unknown user fails with ErrNotMember", "team", "kisee-nobody", pasee.ErrNotMember},
		{"an unknown group fails with ErrGroupNotFound", "nope", "kisee-bob", pasee.ErrGroupNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustErr(t, s.RemoveMember(ctx, "kisee-root", tc.group, tc.user, at(0)), tc.want)
		})
	}
}

func testMembers(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	ensure(t, s, "page")
	// Byte order: uppercase before lowercase; '-' < '.' < '_'.
	all := []string{"kisee-Alice", "kisee-Zed", "kisee-a-b", "kisee-a.b", "kisee-a_b", "kisee-alice", "kisee-b", "kisee-c", "twitter-1"}
	for _, i := range []int{5, 8, 0, 3, 1, 7, 2, 6, 4} {
		add(t, s, "page", all[i])
	}
	for _, tc := range []struct {
		name, group, after string
		limit              int
		want               []string
	}{
		{"all members in byte order", "page", "", 100, all},
		{"the first page", "page", "", 3, all[:3]},
		{"after is exclusive", "page", "kisee-a-b", 2, []string{"kisee-a.b", "kisee-a_b"}},
		{"after need not be a member", "page", "kisee-b0", 10, []string{"kisee-c", "twitter-1"}},
		{"a zero limit gives nothing", "page", "", 0, nil},
		{"after the last member the page is empty", "page", "twitter-1", 10, nil},
		{"an empty group has no members", "page.staff", "", 10, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Members(ctx, tc.group, tc.after, tc.limit)
			must(t, err)
			equal(t, "members", got, tc.want)
		})
	}
	t.Run("an unknown group fails with ErrGroupNotFound", func(t *testing.T) {
		_, err := s.Members(ctx, "nope", "", 10)
		mustErr(t, err, pasee.ErrGroupNotFound)
	})
}

func testUserGroups(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	ensure(t, s, "b", "a.b", "a-b", "a", "a.b.c")
	add(t, s, "staff", "kisee-alice")
	for _, g := range []string{"b", "a.b.c", "a-b", "a.staff", "a"} {
		add(t, s, g, "kisee-alice")
	}
	for _, tc := range []struct {
		name, user string
		want       []string
	}{
		{"the groups of a user are sorted, exact memberships only", "kisee-alice", []string{"a", "a-b", "a.b.c", "a.staff", "b", "staff"}},
		{"an unknown user has no groups", "kisee-nobody", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.UserGroups(ctx, tc.user)
			must(t, err)
			equal(t, "groups", got, tc.want)
		})
	}
}

func testIsMemberOfAny(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	ensure(t, s, "team.sub", "other")
	add(t, s, "team.staff", "kisee-alice")
	add(t, s, "other", "kisee-bob")
	for _, tc := range []struct {
		name, user string
		groups     []string
		want       bool
	}{
		{"a member of the only group", "kisee-alice", []string{"team.staff"}, true},
		{"a member of one of the groups", "kisee-alice", []string{"staff", "team.sub.staff", "team.staff"}, true},
		{"a member of none of the groups", "kisee-bob", []string{"staff", "team.sub.staff", "team.staff"}, false},
		{"membership is exact: a staff member of team is no member of team", "kisee-alice", []string{"team", "team.sub"}, false},
		{"no groups", "kisee-alice", nil, false},
		{"an unknown user", "kisee-nobody", []string{"team.staff", "other"}, false},
		{"an unknown group", "kisee-bob", []string{"nope"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.IsMemberOfAny(ctx, tc.user, tc.groups)
			must(t, err)
			if got != tc.want {
				t.Fatalf("IsMemberOfAny(%s, %q) = %v, want %v", tc.user, tc.groups, got, tc.want)
			}
		})
	}
}
