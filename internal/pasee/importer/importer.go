// Package importer moves an original (Python) Pasee's users, groups,
// memberships and bans into this Pasee's store, through the store's
// interface: `pasee import`.
//
// The import is idempotent (what is already there is left alone, so a
// second run changes nothing and writes nothing to the audit log),
// all-or-nothing (every name is checked before the first write, and a
// failure while writing undoes what this run wrote), and explicit about
// what it skips and why. Every change is audited with the actor "import".
package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee"
)

// Store is what the import needs of Pasee's store (pasee.Store has it).
type Store interface {
	GroupExists(ctx context.Context, name string) (bool, error)
	EnsureGroup(ctx context.Context, actor, name string, now time.Time) error
	DeleteGroup(ctx context.Context, actor, name string, now time.Time) error
	IsMemberOfAny(ctx context.Context, user string, groups []string) (bool, error)
	AddMember(ctx context.Context, actor, group, user string, now time.Time) error
	RemoveMember(ctx context.Context, actor, group, user string, now time.Time) error
	GetUser(ctx context.Context, name string) (pasee.User, error)
	RecordLogin(ctx context.Context, user string, now time.Time) (pasee.User, error)
	SetBanned(ctx context.Context, actor, user string, banned bool, now time.Time) error
	DeleteUser(ctx context.Context, actor, user string, now time.Time) error
}

var _ Store = pasee.Store(nil)

// Actor is who the audit log says made the import's changes.
const Actor = "import"

// Options tune an import.
type Options struct {
	// Known reports whether a provider name is configured: users of
	// other providers are skipped, as the API refuses them.
	Known func(provider string) bool
	// DryRun reports what would change, and changes nothing.
	DryRun bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Kinds of imported things.
const (
	KindUser       = "user"
	KindGroup      = "group"
	KindMembership = "membership"
	KindBan        = "ban"
)

// Skip is something of the original not imported, and why.
type Skip struct {
	Kind, Name, Reason string
}

// Change is a change the import made (or, dry, would make).
type Change struct {
	Kind, Name, Detail string
}

// Report says what an import found, changed and skipped.
type Report struct {
	Source string
	DryRun bool
	// Found counts the original's users, groups, memberships and bans.
	Found     map[string]int
	Changes   []Change
	Unchanged int // things already present as the original has them
	Skipped   []Skip
}

// Write prints the report for a person.
func (r *Report) Write(w io.Writer) {
	verb := "imported"
	if r.DryRun {
		verb = "dry run, nothing written; would import"
	}
	fmt.Fprintf(w, "Original Pasee at %s: %d users, %d groups, %d memberships, %d bans.\n",
		r.Source, r.Found[KindUser], r.Found[KindGroup], r.Found[KindMembership], r.Found[KindBan])
	fmt.Fprintf(w, "%s: %d changes, %d already present, %d skipped.\n", verb, len(r.Changes), r.Unchanged, len(r.Skipped))
	for _, c := range r.Changes {
		fmt.Fprintf(w, "  %-10s %s: %s\n", c.Kind, c.Name, c.Detail)
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintln(w, "Skipped:")
		for _, s := range r.Skipped {
			fmt.Fprintf(w, "  %-10s %s: %s\n", s.Kind, s.Name, s.Reason)
		}
	}
}

// step is one planned write and its undo.
type step struct {
	change Change
	do     func(ctx context.Context, now time.Time) error
	undo   func(ctx context.Context, now time.Time) error
}

// Import copies o into st. On a write failure it undoes what it wrote and
// returns the error with the report of what was planned.
func Import(ctx context.Context, st Store, o *Original, opts Options) (*Report, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Known == nil {
		opts.Known = func(string) bool { return true }
	}
	r := &Report{Source: o.Source, DryRun: opts.DryRun, Found: map[string]int{
		KindUser: len(o.Users), KindGroup: len(o.Groups), KindMembership: len(o.Memberships) + countKind(o.Broken, KindMembership),
	}}
	r.Skipped = append(r.Skipped, o.Broken...)
	steps, err := plan(ctx, st, o, opts, r)
	if err != nil {
		return r, err
	}
	for _, s := range steps {
		r.Changes = append(r.Changes, s.change)
	}
	if opts.DryRun {
		return r, nil
	}
	now := opts.Now()
	for i, s := range steps {
		if err := s.do(ctx, now); err != nil {
			err = fmt.Errorf("import: %s %s: %w", s.change.Kind, s.change.Name, err)
			return r, errors.Join(err, rollback(ctx, steps[:i], now))
		}
	}
	return r, nil
}

// rollback undoes steps, newest first. The undo is audited too: the log
// shows the failed import and its reversal.
func rollback(ctx context.Context, steps []step, now time.Time) error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	for i := len(steps) - 1; i >= 0; i-- {
		if steps[i].undo == nil {
			continue
		}
		if err := steps[i].undo(ctx, now); err != nil && !errors.Is(err, pasee.ErrGroupNotFound) && !errors.Is(err, pasee.ErrNotMember) && !errors.Is(err, pasee.ErrUserNotFound) {
			errs = append(errs, fmt.Errorf("undo %s %s: %w", steps[i].change.Kind, steps[i].change.Name, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("rolling back left changes behind (run the import again to complete it): %w", errors.Join(errs...))
	}
	return nil
}

func countKind(skips []Skip, kind string) int {
	n := 0
	for _, s := range skips {
		if s.Kind == kind {
			n++
		}
	}
	return n
}

// plan checks every name against this Pasee's rules and compares the
// original with st, returning the writes to make. It writes nothing.
func plan(ctx context.Context, st Store, o *Original, opts Options, r *Report) ([]step, error) {
	var steps []step
	users := map[string]OriginalUser{}
	for _, u := range o.Users {
		if u.Banned {
			r.Found[KindBan]++
		}
		if err := pasee.ValidateUserName(u.Name, opts.Known); err != nil {
			r.Skipped = append(r.Skipped, Skip{KindUser, u.Name, "the name is refused here: " + err.Error()})
			continue
		}
		users[u.Name] = u
	}
	groups := map[string]bool{}
	for _, g := range o.Groups {
		if err := pasee.ValidateGroupName(g); err != nil {
			r.Skipped = append(r.Skipped, Skip{KindGroup, g, "the name is refused here: " + err.Error()})
			continue
		}
		groups[g] = true
	}

	// Groups, parents first (sorted names put "a" before "a.b"). Ensuring a
	// group also creates its missing ancestors and its staff group.
	planned := map[string]bool{}
	for _, g := range o.Groups {
		if !groups[g] {
			continue
		}
		var created []string
		chain := pasee.GroupAncestors(g)
		for i := len(chain) - 1; i >= 0; i-- {
			for _, c := range []string{chain[i], pasee.StaffOf(chain[i])} {
				if c == pasee.StaffOf(chain[i]) && pasee.IsStaffGroup(chain[i]) {
					continue
				}
				if planned[c] {
					continue
				}
				planned[c] = true
				exists, err := st.GroupExists(ctx, c)
				if err != nil {
					return nil, fmt.Errorf("import: read group %s: %w", c, err)
				}
				if !exists {
					created = append(created, c)
				}
			}
		}
		if len(created) == 0 {
			r.Unchanged++
			continue
		}
		detail := "create"
		if len(created) > 1 || created[0] != g {
			detail = fmt.Sprintf("create %v (missing ancestors and staff groups come with it)", created)
		}
		name := g
		steps = append(steps, step{
			change: Change{KindGroup, g, detail},
			do:     func(ctx context.Context, now time.Time) error { return st.EnsureGroup(ctx, Actor, name, now) },
			undo: func(ctx context.Context, now time.Time) error {
				for i := len(created) - 1; i >= 0; i-- {
					if pasee.IsStaffGroup(created[i]) && slices.Contains(created, pasee.GroupParent(created[i])) {
						continue // goes with its group
					}
					if created[i] == pasee.StaffGroup {
						continue
					}
					if err := st.DeleteGroup(ctx, Actor, created[i], now); err != nil && !errors.Is(err, pasee.ErrGroupNotFound) {
						return err
					}
				}
				return nil
			},
		})
	}

	// Users this run creates, so that undoing removes them.
	existing := map[string]bool{}
	userExists := func(name string) (bool, error) {
		if v, ok := existing[name]; ok {
			return v, nil
		}
		_, err := st.GetUser(ctx, name)
		switch {
		case err == nil:
			existing[name] = true
		case errors.Is(err, pasee.ErrUserNotFound):
			existing[name] = false
		default:
			return false, fmt.Errorf("import: read user %s: %w", name, err)
		}
		return existing[name], nil
	}
	inGroup := map[string]bool{}
	for _, m := range o.Memberships {
		name := m.User + " in " + m.Group
		if _, ok := users[m.User]; !ok {
			r.Skipped = append(r.Skipped, Skip{KindMembership, name, "the user is skipped or missing"})
			continue
		}
		if !groups[m.Group] {
			r.Skipped = append(r.Skipped, Skip{KindMembership, name, "the group is skipped"})
			continue
		}
		inGroup[m.User] = true
		member, err := st.IsMemberOfAny(ctx, m.User, []string{m.Group})
		if err != nil {
			return nil, fmt.Errorf("import: read membership %s: %w", name, err)
		}
		if member {
			r.Unchanged++
			continue
		}
		known, err := userExists(m.User)
		if err != nil {
			return nil, err
		}
		detail := "add"
		if !known {
			detail = "add (creates the user)"
			existing[m.User] = true
		}
		user, group, creates := m.User, m.Group, !known
		steps = append(steps, step{
			change: Change{KindMembership, name, detail},
			do:     func(ctx context.Context, now time.Time) error { return st.AddMember(ctx, Actor, group, user, now) },
			undo: func(ctx context.Context, now time.Time) error {
				if creates {
					return st.DeleteUser(ctx, Actor, user, now)
				}
				return st.RemoveMember(ctx, Actor, group, user, now)
			},
		})
	}

	// Bans. A banned user in no group is recorded so that the ban holds.
	for _, u := range o.Users {
		if _, ok := users[u.Name]; !ok {
			continue
		}
		known, err := userExists(u.Name)
		if err != nil {
			return nil, err
		}
		if !u.Banned {
			if !inGroup[u.Name] && !known {
				r.Skipped = append(r.Skipped, Skip{KindUser, u.Name, "in no group and not banned: nothing to keep; recorded at first login"})
			} else if !inGroup[u.Name] {
				r.Unchanged++
			}
			continue
		}
		if known {
			cur, err := st.GetUser(ctx, u.Name)
			if err != nil && !errors.Is(err, pasee.ErrUserNotFound) {
				return nil, fmt.Errorf("import: read user %s: %w", u.Name, err)
			}
			if err == nil && cur.IsBanned {
				r.Unchanged++
				continue
			}
		}
		name, creates := u.Name, !known
		detail := "ban (revokes every session)"
		if creates {
			detail = "record the user (in no group) and ban it"
		}
		steps = append(steps, step{
			change: Change{KindBan, name, detail},
			do: func(ctx context.Context, now time.Time) error {
				if creates {
					if _, err := st.RecordLogin(ctx, name, now); err != nil {
						return err
					}
				}
				return st.SetBanned(ctx, Actor, name, true, now)
			},
			undo: func(ctx context.Context, now time.Time) error {
				if creates {
					return st.DeleteUser(ctx, Actor, name, now)
				}
				return st.SetBanned(ctx, Actor, name, false, now)
			},
		})
	}
	return steps, nil
}
