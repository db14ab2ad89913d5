package storetest

import (
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee"
)

// wantEvent is an audit event expected among those a mutation wrote; an
// empty Detail is not checked.
type wantEvent struct {
	Actor, Action, Target, Detail string
}

func testAudit(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	const grace = 5 * time.Second
	newSession(t, s, "sid-revoked", "kisee-bob")
	newSession(t, s, "sid-reused", "kisee-carol")
	_, err := s.RecordLogin(ctx, "kisee-dave", at(0))
	must(t, err)
	when := at(time.Hour)

	for _, tc := range []struct {
		name string
		do   func() error
		want []wantEvent
	}{
		{
			name: "creating a group records the group, its staff group and the creator's membership",
			do:   func() error { return s.CreateGroup(ctx, "kisee-alice", "proj", "kisee-alice", when) },
			want: []wantEvent{
				{"kisee-alice", pasee.ActionGroupCreate, "proj", ""},
				{"kisee-alice", pasee.ActionGroupCreate, "proj.staff", ""},
				{"kisee-alice", pasee.ActionMemberAdd, "proj.staff", "kisee-alice"},
			},
		},
		{
			name: "ensuring a group records each group created",
			do:   func() error { return s.EnsureGroup(ctx, "cli", "ops.db", when) },
			want: []wantEvent{
				{"cli", pasee.ActionGroupCreate, "ops", ""},
				{"cli", pasee.ActionGroupCreate, "ops.staff", ""},
				{"cli", pasee.ActionGroupCreate, "ops.db", ""},
				{"cli", pasee.ActionGroupCreate, "ops.db.staff", ""},
			},
		},
		{
			name: "adding a member records the group and the member",
			do:   func() error { return s.AddMember(ctx, "kisee-alice", "proj", "kisee-bob", when) },
			want: []wantEvent{{"kisee-alice", pasee.ActionMemberAdd, "proj", "kisee-bob"}},
		},
		{
			name: "removing a member records the group and the member",
			do:   func() error { return s.RemoveMember(ctx, "kisee-alice", "proj", "kisee-bob", when) },
			want: []wantEvent{{"kisee-alice", pasee.ActionMemberRemove, "proj", "kisee-bob"}},
		},
		{
			name: "banning records the user",
			do:   func() error { return s.SetBanned(ctx, "kisee-root", "kisee-dave", true, when) },
			want: []wantEvent{{"kisee-root", pasee.ActionUserBan, "kisee-dave", ""}},
		},
		{
			name: "unbanning records the user",
			do:   func() error { return s.SetBanned(ctx, "kisee-root", "kisee-dave", false, when) },
			want: []wantEvent{{"kisee-root", pasee.ActionUserUnban, "kisee-dave", ""}},
		},
		{
			name: "revoking a session records the session",
			do:   func() error { return s.RevokeSession(ctx, "kisee-bob", "sid-revoked", when) },
			want: []wantEvent{{"kisee-bob", pasee.ActionSessionRevoke, "sid-revoked", ""}},
		},
		{
			name: "reuse detection records the session, by system",
			do: func() error {
				_, _, err := s.Rotate(ctx, "sid-reused", "stolen", pasee.NextTokens{RefreshJTI: "x", AccessJTI: "y", IssuedAt: when, ExpiresAt: when.Add(time.Hour)}, when, grace)
				return err
			},
			want: []wantEvent{{"system", pasee.ActionSessionReuse, "sid-reused", ""}},
		},
		{
			name: "revoking a user's sessions records the user and how many were live",
			do: func() error {
				_, err := s.RevokeUserSessions(ctx, "kisee-root", "kisee-dave", when)
				return err
			},
			want: []wantEvent{{"kisee-root", pasee.ActionSessionRevoke, "kisee-dave", "0 sessions revoked"}},
		},
		{
			name: "deleting a group records the group",
			do:   func() error { return s.DeleteGroup(ctx, "kisee-alice", "proj", when) },
			want: []wantEvent{{"kisee-alice", pasee.ActionGroupDelete, "proj", ""}},
		},
		{
			name: "deleting a user records the user",
			do:   func() error { return s.DeleteUser(ctx, "kisee-root", "kisee-bob", when) },
			want: []wantEvent{{"kisee-root", pasee.ActionUserDelete, "kisee-bob", ""}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			since := lastAuditID(t, s)
			must(t, tc.do())
			got := auditSince(t, s, since)
			for _, w := range tc.want {
				if !hasEvent(got, w) {
					t.Errorf("no audit event %+v among %+v", w, got)
				}
			}
			for _, e := range got {
				sameTime(t, "event time", e.At, when)
			}
		})
	}

	t.Run("a failed change writes no audit event", func(t *testing.T) {
		ensure(t, s, "team")
		add(t, s, "team", "kisee-erin")
		since := lastAuditID(t, s)
		for _, err := range []error{
			s.CreateGroup(ctx, "kisee-alice", "team", "kisee-alice", when),
			s.CreateGroup(ctx, "kisee-alice", "nope.child", "kisee-alice", when),
			s.AddMember(ctx, "kisee-alice", "team", "kisee-erin", when),
			s.AddMember(ctx, "kisee-alice", "nope", "kisee-erin", when),
			s.RemoveMember(ctx, "kisee-alice", "team", "kisee-nobody", when),
			s.DeleteGroup(ctx, "kisee-alice", "nope", when),
			s.DeleteGroup(ctx, "kisee-alice", "staff", when),
			s.SetBanned(ctx, "kisee-root", "kisee-nobody", true, when),
			s.DeleteUser(ctx, "kisee-root", "kisee-nobody", when),
			s.RevokeSession(ctx, "kisee-root", "nope", when),
			func() error { _, err := s.RevokeUserSessions(ctx, "kisee-root", "kisee-nobody", when); return err }(),
		} {
			if err == nil {
				t.Fatal("a change expected to fail succeeded")
			}
		}
		if got := auditSince(t, s, since); len(got) != 0 {
			t.Fatalf("audit events after failures: %+v", got)
		}
	})
}

func hasEvent(events []pasee.AuditEvent, w wantEvent) bool {
	for _, e := range events {
		if e.Actor == w.Actor && e.Action == w.Action && e.Target == w.Target && (w.Detail == "" || e.Detail == w.Detail) {
			return true
		}
	}
	return false
}

func testAuditPaging(t *testing.T, s pasee.Store) {
	ctx := t.Context()
	ensure(t, s, "team")
	users := names("kisee-u", 12)
	for i, u := range users {
		must(t, s.AddMember(ctx, "cli", "team", u, at(time.Duration(i)*time.Second)))
	}
	all, err := s.Audit(ctx, 0, 1000)
	must(t, err)
	if len(all) != 14 { // team, team.staff and 12 members
		t.Fatalf("%d events, want 14", len(all))
	}
	t.Run("events come newest first", func(t *testing.T) {
		for i := 1; i < len(all); i++ {
			if all[i].ID >= all[i-1].ID {
				t.Fatalf("ids not decreasing: %d then %d", all[i-1].ID, all[i].ID)
			}
		}
		if all[0].Detail != users[11] || !all[0].At.Equal(at(11*time.Second)) {
			t.Fatalf("newest event = %+v, want the last member added", all[0])
		}
	})
	ids := func(ev []pasee.AuditEvent) []int64 {
		var out []int64
		for _, e := range ev {
			out = append(out, e.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		before int64
		limit  int
		want   []pasee.AuditEvent
	}{
		{"the first page holds the newest", 0, 3, all[:3]},
		{"before is exclusive", all[2].ID, 2, all[3:5]},
		{"the last page is short", all[10].ID, 10, all[11:]},
		{"before the oldest the page is empty", all[13].ID, 10, nil},
		{"a zero limit gives nothing", 0, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Audit(ctx, tc.before, tc.limit)
			must(t, err)
			equal(t, "event ids", ids(got), ids(tc.want))
		})
	}
}
