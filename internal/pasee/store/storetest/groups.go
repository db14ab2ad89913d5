package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee"
)

func testCreateGroup(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	t.Run("the root group staff exists from the start", func(t *testing.T) {
		equal(t, "groups", allGroups(t, s), []string{"staff"})
		equal(t, "staff members", members(t, s, "staff"), nil)
	})
	t.Run("creates the group and its staff group with the creator as staff", func(t *testing.T) {
		must(t, s.CreateGroup(ctx, "kisee-root", "admin", "kisee-root", at(0)))
		equal(t, "groups", allGroups(t, s), []string{"admin", "admin.staff", "staff"})
		equal(t, "admin members", members(t, s, "admin"), nil)
		equal(t, "admin.staff members", members(t, s, "admin.staff"), []string{"kisee-root"})
	})
	t.Run("records a creator never seen before", func(t *testing.T) {
		must(t, s.CreateGroup(ctx, "kisee-root", "books", "kisee-newcomer", at(time.Hour)))
		u, err := s.GetUser(ctx, "kisee-newcomer")
		must(t, err)
		sameTime(t, "CreatedAt", u.CreatedAt, at(time.Hour))
		if !u.LastLoginAt.IsZero() || u.IsBanned {
			t.Fatalf("user = %+v, want never logged in and not banned", u)
		}
	})
	t.Run("creates a subgroup under an existing group", func(t *testing.T) {
		must(t, s.CreateGroup(ctx, "kisee-root", "admin.developers", "kisee-dev", at(0)))
		if !exists(t, s, "admin.developers") || !exists(t, s, "admin.developers.staff") {
			t.Fatal("admin.developers or its staff group missing")
		}
		equal(t, "admin.developers.staff members", members(t, s, "admin.developers.staff"), []string{"kisee-dev"})
		equal(t, "admin.staff members", members(t, s, "admin.staff"), []string{"kisee-root"})
	})
	for _, tc := range []struct {
		name, group string
		want        error
	}{
		{"an existing group fails with ErrGroupExists", "admin", pasee.ErrGroupExists},
		{"an existing subgroup fails with ErrGroupExists", "admin.developers", pasee.ErrGroupExists},
		{"an existing staff group fails with ErrGroupExists", "admin.staff", pasee.ErrGroupExists},
		{"the root group staff fails with ErrGroupExists", "staff", pasee.ErrGroupExists},
		{"a missing parent fails with ErrParentNotFound", "nope.child", pasee.ErrParentNotFound},
		{"a missing grandparent fails with ErrParentNotFound", "admin.nope.child", pasee.ErrParentNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := allGroups(t, s)
			mustErr(t, s.CreateGroup(ctx, "kisee-root", tc.group, "kisee-other", at(0)), tc.want)
			equal(t, "groups after the failure", allGroups(t, s), before)
			if _, err := s.GetUser(ctx, "kisee-other"); !errors.Is(err, pasee.ErrUserNotFound) {
				t.Fatalf("the creator of a failed group was recorded: %v", err)
			}
		})
	}
	t.Run("an invalid name is refused", func(t *testing.T) {
		for _, name := range []string{"", "Admin", "a..b", "a/b", ".a", "a."} {
			if err := s.CreateGroup(ctx, "kisee-root", name, "kisee-root", at(0)); err == nil {
				t.Errorf("CreateGroup(%q) succeeded", name)
			}
		}
	})
}

func testEnsureGroup(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	t.Run("creates the missing ancestors, each with its staff group", func(t *testing.T) {
		must(t, s.EnsureGroup(ctx, "cli", "a.b.c", at(0)))
		equal(t, "groups", allGroups(t, s), []string{"a", "a.b", "a.b.c", "a.b.c.staff", "a.b.staff", "a.staff", "staff"})
		equal(t, "a.staff members", members(t, s, "a.staff"), nil)
	})
	t.Run("does nothing when the group exists", func(t *testing.T) {
		id := lastAuditID(t, s)
		must(t, s.EnsureGroup(ctx, "cli", "a.b.c", at(0)))
		must(t, s.EnsureGroup(ctx, "cli", "a", at(0)))
		must(t, s.EnsureGroup(ctx, "cli", "staff", at(0)))
		equal(t, "groups", allGroups(t, s), []string{"a", "a.b", "a.b.c", "a.b.c.staff", "a.b.staff", "a.staff", "staff"})
		if ev := auditSince(t, s, id); len(ev) != 0 {
			t.Fatalf("audit events for nothing done: %+v", ev)
		}
	})
	t.Run("fills in below an existing ancestor", func(t *testing.T) {
		must(t, s.EnsureGroup(ctx, "cli", "a.x", at(0)))
		equal(t, "groups", allGroups(t, s), []string{"a", "a.b", "a.b.c", "a.b.c.staff", "a.b.staff", "a.staff", "a.x", "a.x.staff", "staff"})
	})
	t.Run("a staff group gets no staff group of its own", func(t *testing.T) {
		must(t, s.EnsureGroup(ctx, "cli", "z.staff", at(0)))
		if !exists(t, s, "z") || !exists(t, s, "z.staff") || exists(t, s, "z.staff.staff") {
			t.Fatalf("groups = %q, want z and z.staff only", allGroups(t, s))
		}
	})
	t.Run("keeps existing memberships", func(t *testing.T) {
		add(t, s, "a.staff", "kisee-ann")
		must(t, s.EnsureGroup(ctx, "cli", "a.y", at(0)))
		equal(t, "a.staff members", members(t, s, "a.staff"), []string{"kisee-ann"})
	})
	t.Run("an invalid name is refused", func(t *testing.T) {
		if err := s.EnsureGroup(ctx, "cli", "a.B", at(0)); err == nil {
			t.Fatal("EnsureGroup(a.B) succeeded")
		}
		if exists(t, s, "a.B") {
			t.Fatal("a.B was created")
		}
	})
}

func testDeleteGroup(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	ensure(t, s, "admin.developers.backend", "admin.sales", "admin2", "admin-x", "administrators", "adminx", "p.q")
	add(t, s, "admin", "kisee-u1")
	add(t, s, "admin.developers", "kisee-u2")
	add(t, s, "admin.developers.backend.staff", "kisee-u3")
	add(t, s, "admin2", "kisee-u4", "kisee-u1")
	add(t, s, "admin-x", "kisee-u5")
	add(t, s, "administrators", "kisee-u2")
	add(t, s, "adminx", "kisee-u3")

	t.Run("deletes the subtree with its memberships", func(t *testing.T) {
		must(t, s.DeleteGroup(ctx, "kisee-root", "admin", at(0)))
		for _, g := range []string{"admin", "admin.staff", "admin.developers", "admin.developers.staff",
			"admin.developers.backend", "admin.developers.backend.staff", "admin.sales", "admin.sales.staff"} {
			if exists(t, s, g) {
				t.Errorf("%s still exists", g)
			}
		}
		mustErr(t, func() error { _, err := s.Members(ctx, "admin.developers", "", 10); return err }(), pasee.ErrGroupNotFound)
		equal(t, "groups of kisee-u1", userGroups(t, s, "kisee-u1"), []string{"admin2"})
		equal(t, "groups of kisee-u2", userGroups(t, s, "kisee-u2"), []string{"administrators"})
		equal(t, "groups of kisee-u3", userGroups(t, s, "kisee-u3"), []string{"adminx"})
	})
	t.Run("leaves the siblings that share the prefix", func(t *testing.T) {
		equal(t, "groups", allGroups(t, s), []string{"admin-x", "admin-x.staff", "admin2", "admin2.staff",
			"administrators", "administrators.staff", "adminx", "adminx.staff", "p", "p.q", "p.q.staff", "p.staff", "staff"})
		equal(t, "admin2 members", members(t, s, "admin2"), []string{"kisee-u1", "kisee-u4"})
		equal(t, "admin-x members", members(t, s, "admin-x"), []string{"kisee-u5"})
	})
	t.Run("keeps the members as users", func(t *testing.T) {
		_, err := s.GetUser(ctx, "kisee-u2")
		must(t, err)
	})
	t.Run("a deleted group can be created again, empty", func(t *testing.T) {
		must(t, s.CreateGroup(ctx, "kisee-root", "admin", "kisee-root", at(0)))
		equal(t, "admin members", members(t, s, "admin"), nil)
		equal(t, "admin.staff members", members(t, s, "admin.staff"), []string{"kisee-root"})
		if exists(t, s, "admin.developers") {
			t.Fatal("admin.developers came back")
		}
	})
	t.Run("deleting a subgroup keeps its parent", func(t *testing.T) {
		must(t, s.DeleteGroup(ctx, "kisee-root", "p.q", at(0)))
		if !exists(t, s, "p") || !exists(t, s, "p.staff") || exists(t, s, "p.q") || exists(t, s, "p.q.staff") {
			t.Fatalf("groups = %q", allGroups(t, s))
		}
	})
	t.Run("an unknown group fails with ErrGroupNotFound", func(t *testing.T) {
		mustErr(t, s.DeleteGroup(ctx, "kisee-root", "nope", at(0)), pasee.ErrGroupNotFound)
		mustErr(t, s.DeleteGroup(ctx, "kisee-root", "p.nope", at(0)), pasee.ErrGroupNotFound)
	})
	t.Run("the root group staff is never deleted", func(t *testing.T) {
		add(t, s, "staff", "kisee-boss")
		if err := s.DeleteGroup(ctx, "kisee-root", "staff", at(0)); err == nil {
			t.Fatal("deleting staff succeeded")
		}
		equal(t, "staff members", members(t, s, "staff"), []string{"kisee-boss"})
	})
}

func testListGroups(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	ensure(t, s, "a", "a-b", "a.b", "a.b.c", "a_b", "ab", "b")
	// Byte order: '-' (0x2d) < '.' (0x2e) < '_' (0x5f) < 'a'; a prefix
	// comes before its extensions.
	all := []string{"a", "a-b", "a-b.staff", "a.b", "a.b.c", "a.b.c.staff", "a.b.staff", "a.staff",
		"a_b", "a_b.staff", "ab", "ab.staff", "b", "b.staff", "staff"}
	equal(t, "all groups", allGroups(t, s), all)
	for _, tc := range []struct {
		name, after string
		limit       int
		want        []string
	}{
		{"the first page starts at the smallest name", "", 4, all[:4]},
		{"after is exclusive", "a-b", 2, []string{"a-b.staff", "a.b"}},
		{"after need not be a group", "a.b.b", 2, []string{"a.b.c", "a.b.c.staff"}},
		{"a prefix comes before its extensions", "a.b", 1, []string{"a.b.c"}},
		{"the last page is short", "b", 10, []string{"b.staff", "staff"}},
		{"after the last name the page is empty", "zzz", 10, nil},
		{"a zero limit gives nothing", "", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListGroups(ctx, tc.after, tc.limit)
			must(t, err)
			equal(t, "page", got, tc.want)
		})
	}
	t.Run("walking the pages returns every group once", func(t *testing.T) {
		var got []string
		after := ""
		for {
			page, err := s.ListGroups(ctx, after, 4)
			must(t, err)
			got = append(got, page...)
			if len(page) < 4 {
				break
			}
			after = page[len(page)-1]
		}
		equal(t, "walked", got, all)
	})
}

// testVisibleGroups plays SPEC section 3: a staff member creates admin
// (becoming admin.staff), then admin.developers (becoming
// admin.developers.staff); John is added to admin.developers.staff; Alan,
// Ada and Donald to admin.developers.
func testVisibleGroups(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	const grace = "kisee-grace"
	add(t, s, "staff", grace)
	must(t, s.CreateGroup(ctx, grace, "admin", grace, at(0)))
	must(t, s.CreateGroup(ctx, grace, "admin.developers", grace, at(0)))
	must(t, s.CreateGroup(ctx, grace, "admin.sales", grace, at(0)))
	add(t, s, "admin.developers.staff", "kisee-john")
	add(t, s, "admin.developers", "kisee-alan", "kisee-ada", "kisee-donald", "kisee-linus")
	ensure(t, s, "administrators", "admin-x", "adminx")
	add(t, s, "administrators", "kisee-linus")
	add(t, s, "admin.staff", "kisee-margaret", "kisee-barbara")
	add(t, s, "admin.developers.staff", "kisee-barbara")
	add(t, s, "adminx", "kisee-barbara")

	adminTree := []string{"admin", "admin.developers", "admin.developers.staff", "admin.sales", "admin.sales.staff", "admin.staff"}
	for _, tc := range []struct {
		name, user string
		want       []string
	}{
		{"a member of staff sees every group", grace, allGroups(t, s)},
		{"a member of admin.staff sees the admin subtree, sibling subtrees included", "kisee-margaret", adminTree},
		{"a member of admin.developers.staff sees admin.developers and its staff only", "kisee-john",
			[]string{"admin.developers", "admin.developers.staff"}},
		{"a developer sees admin.developers only (Alan)", "kisee-alan", []string{"admin.developers"}},
		{"a developer sees admin.developers only (Ada)", "kisee-ada", []string{"admin.developers"}},
		{"a developer sees admin.developers only (Donald)", "kisee-donald", []string{"admin.developers"}},
		{"a member of unrelated groups sees both", "kisee-linus", []string{"admin.developers", "administrators"}},
		{"nested administration is listed once, with direct memberships", "kisee-barbara", append(adminTree[:6:6], "adminx")},
		{"an unknown user sees nothing", "kisee-nobody", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.VisibleGroups(ctx, tc.user, "", 200)
			must(t, err)
			equal(t, "visible groups", got, tc.want)
		})
	}
	t.Run("John does not see the sibling admin.sales nor admin", func(t *testing.T) {
		got, err := s.VisibleGroups(ctx, "kisee-john", "", 200)
		must(t, err)
		for _, g := range []string{"admin", "admin.staff", "admin.sales", "admin.sales.staff"} {
			if slices.Contains(got, g) {
				t.Errorf("John sees %s", g)
			}
		}
	})
	t.Run("admin staff do not see administrators, admin-x or adminx", func(t *testing.T) {
		got, err := s.VisibleGroups(ctx, "kisee-margaret", "", 200)
		must(t, err)
		for _, g := range []string{"administrators", "administrators.staff", "admin-x", "admin-x.staff", "adminx", "adminx.staff"} {
			if slices.Contains(got, g) {
				t.Errorf("admin.staff member sees %s", g)
			}
		}
	})
	for _, tc := range []struct {
		name, user, after string
		limit             int
		want              []string
	}{
		{"a page starts after after, inside a subtree", "kisee-margaret", "admin.developers", 2,
			[]string{"admin.developers.staff", "admin.sales"}},
		{"a page may span a subtree and a direct membership", "kisee-barbara", "admin.sales.staff", 10,
			[]string{"admin.staff", "adminx"}},
		{"after the last visible group the page is empty", "kisee-margaret", "admin.staff", 10, nil},
		{"the limit cuts the page", "kisee-john", "", 1, []string{"admin.developers"}},
		{"pages of a staff member follow byte order", grace, "admin.sales.staff", 2, []string{"admin.staff", "administrators"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.VisibleGroups(ctx, tc.user, tc.after, tc.limit)
			must(t, err)
			equal(t, "page", got, tc.want)
		})
	}
	t.Run("walking the pages returns every visible group once", func(t *testing.T) {
		want, err := s.VisibleGroups(ctx, "kisee-barbara", "", 200)
		must(t, err)
		var got []string
		after := ""
		for {
			page, err := s.VisibleGroups(ctx, "kisee-barbara", after, 2)
			must(t, err)
			got = append(got, page...)
			if len(page) < 2 {
				break
			}
			after = page[len(page)-1]
		}
		equal(t, "walked", got, want)
	})
	t.Run("losing the staff membership loses the subtree at once", func(t *testing.T) {
		must(t, s.RemoveMember(ctx, "kisee-grace", "admin.developers.staff", "kisee-john", at(0)))
		got, err := s.VisibleGroups(ctx, "kisee-john", "", 200)
		must(t, err)
		equal(t, "visible groups", got, nil)
	})
}
