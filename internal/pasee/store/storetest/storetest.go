// Package storetest is the conformance suite of pasee.Store. Every
// implementation runs it from its own tests, so the SQLite and PostgreSQL
// stores behave identically, down to the order of pages and the sentinel
// errors the API maps to statuses:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) pasee.Store { return openTestStore(t) })
//	}
//
// Times given to stores are whole seconds, so a store may keep seconds or
// milliseconds.
package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee"
)

// Run runs every behaviour of pasee.Store against stores made by open. open
// must return a fresh, migrated store holding nothing but the root group
// "staff", and close it when t ends; it is called once per top-level
// subtest, and those run in parallel.
func Run(t *testing.T, open func(t *testing.T) pasee.Store) {
	suites := []struct {
		name string
		run  func(t *testing.T, s pasee.Store)
	}{
		{"CreateGroup", testCreateGroup},
		{"EnsureGroup", testEnsureGroup},
		{"DeleteGroup", testDeleteGroup},
		{"ListGroups", testListGroups},
		{"VisibleGroups", testVisibleGroups},
		{"AddMember", testAddMember},
		{"RemoveMember", testRemoveMember},
		{"Members", testMembers},
		{"UserGroups", testUserGroups},
		{"IsMemberOfAny", testIsMemberOfAny},
		{"RecordLoginAndGetUser", testRecordLogin},
		{"ListUsers", testListUsers},
		{"SetBanned", testSetBanned},
		{"RevokeUserSessions", testRevokeUserSessions},
		{"CallerStatus", testCallerStatus},
		{"DeleteUser", testDeleteUser},
		{"Sessions", testSessions},
		{"Rotate", testRotate},
		{"ExpiredSessionsArePurged", testExpiredSessionsArePurged},
		{"RotateAndReadGroups", testRotateAndReadGroups},
		{"Audit", testAudit},
		{"AuditLogPaging", testAuditPaging},
		{"ConcurrentMembershipChanges", testConcurrentMembers},
		{"ConcurrentRotations", testConcurrentRotate},
		{"ConcurrentRotationsOfManySessions", testConcurrentManySessions},
		{"ConcurrentFirstLogins", testConcurrentLogins},
		{"ConcurrentGroupCreation", testConcurrentCreate},
		{"SubgroupCreationRacingParentDeletion", testCreateRacingDelete},
		{"Ping", testPing},
	}
	for _, sc := range suites {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.run(t, open(t))
		})
	}
}

// epoch is the suite's "now", 2025-03-14T15:09:26Z: whole seconds.
const epoch = 1741964966

// at returns the suite's now plus d, in UTC.
func at(d time.Duration) time.Time { return time.Unix(epoch, 0).UTC().Add(d) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

func equal[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s:\n got %#v\nwant %#v", what, got, want)
	}
}

func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func exists(t *testing.T, s pasee.Store, group string) bool {
	t.Helper()
	ok, err := s.GroupExists(t.Context(), group)
	must(t, err)
	return ok
}

func allGroups(t *testing.T, s pasee.Store) []string {
	t.Helper()
	g, err := s.ListGroups(t.Context(), "", 10000)
	must(t, err)
	return g
}

func members(t *testing.T, s pasee.Store, group string) []string {
	t.Helper()
	m, err := s.Members(t.Context(), group, "", 10000)
	must(t, err)
	return m
}

func userGroups(t *testing.T, s pasee.Store, user string) []string {
	t.Helper()
	g, err := s.UserGroups(t.Context(), user)
	must(t, err)
	return g
}

func ensure(t *testing.T, s pasee.Store, groups ...string) {
	t.Helper()
	for _, g := range groups {
		must(t, s.EnsureGroup(t.Context(), "cli", g, at(0)))
	}
}

func add(t *testing.T, s pasee.Store, group string, users ...string) {
	t.Helper()
	for _, u := range users {
		must(t, s.AddMember(t.Context(), "cli", group, u, at(0)))
	}
}

// lastAuditID returns the id of the newest audit event (0 if none).
func lastAuditID(t *testing.T, s pasee.Store) int64 {
	t.Helper()
	ev, err := s.Audit(t.Context(), 0, 1)
	must(t, err)
	if len(ev) == 0 {
		return 0
	}
	return ev[0].ID
}

// auditSince returns the events after id since, oldest first.
func auditSince(t *testing.T, s pasee.Store, since int64) []pasee.AuditEvent {
	t.Helper()
	var out []pasee.AuditEvent
	before := int64(0)
	for {
		page, err := s.Audit(t.Context(), before, 100)
		must(t, err)
		for _, e := range page {
			if e.ID <= since {
				slices.Reverse(out)
				return out
			}
			out = append(out, e)
		}
		if len(page) < 100 {
			slices.Reverse(out)
			return out
		}
		before = page[len(page)-1].ID
	}
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return out
}
