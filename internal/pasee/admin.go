package pasee

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// The rules of groups and users and of who administers them. Every method
// takes the caller's name and reads the caller's rights from the store,
// never from a token: a removed administrator loses rights at once.

// IsStaff reports whether user belongs to the root group "staff".
func (s *Service) IsStaff(ctx context.Context, user string) (bool, error) {
	return s.store.IsMemberOfAny(ctx, user, []string{StaffGroup})
}

// CanAdminister reports whether user administers group: a member of
// "staff", or of A.staff for A the group or one of its ancestors.
func (s *Service) CanAdminister(ctx context.Context, user, group string) (bool, error) {
	return s.store.IsMemberOfAny(ctx, user, AdministratorGroups(group))
}

func (s *Service) requireAdmin(ctx context.Context, user, group, detail string) error {
	ok, err := s.CanAdminister(ctx, user, group)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s", ErrForbidden, detail)
	}
	return nil
}

func (s *Service) requireStaff(ctx context.Context, user string) error {
	ok, err := s.IsStaff(ctx, user)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: only members of staff may do this", ErrForbidden)
	}
	return nil
}

func validGroup(name string) error {
	if err := ValidateGroupName(name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidName, err)
	}
	return nil
}

// CreateGroup creates name (and name.staff, with caller in it). Creating a
// root group needs staff; a subgroup needs to administer its parent.
func (s *Service) CreateGroup(ctx context.Context, caller, name string) error {
	if err := validGroup(name); err != nil {
		return err
	}
	if IsStaffGroup(name) {
		return fmt.Errorf("%w: a group named staff is created with its parent, never alone", ErrInvalidName)
	}
	parent := GroupParent(name)
	if parent == "" {
		if err := s.requireStaff(ctx, caller); err != nil {
			return fmt.Errorf("%w (root groups are created by staff)", err)
		}
	} else if err := s.requireAdmin(ctx, caller, parent, "you do not administer "+parent); err != nil {
		return err
	}
	return s.store.CreateGroup(ctx, caller, name, caller, s.now())
}

// DeleteGroup deletes name and its subtree; it needs to administer the
// parent (root groups: staff).
func (s *Service) DeleteGroup(ctx context.Context, caller, name string) error {
	if err := validGroup(name); err != nil {
		return err
	}
	if name == StaffGroup {
		return fmt.Errorf("%w: the staff group cannot be deleted", ErrForbidden)
	}
	parent := GroupParent(name)
	if parent == "" {
		if err := s.requireStaff(ctx, caller); err != nil {
			return err
		}
	} else if IsStaffGroup(name) {
		return fmt.Errorf("%w: %s is deleted with %s", ErrForbidden, name, parent)
	} else if err := s.requireAdmin(ctx, caller, parent, "deleting "+name+" needs to administer "+parent); err != nil {
		return err
	}
	return s.store.DeleteGroup(ctx, caller, name, s.now())
}

// AddMember adds user to group, which caller must administer.
func (s *Service) AddMember(ctx context.Context, caller, group, user string) error {
	if err := validGroup(group); err != nil {
		return err
	}
	if err := s.ValidateUserName(user); err != nil {
		return err
	}
	if err := s.requireAdmin(ctx, caller, group, "you do not administer "+group); err != nil {
		return err
	}
	return s.store.AddMember(ctx, caller, group, user, s.now())
}

// RemoveMember removes user from group, which caller must administer.
func (s *Service) RemoveMember(ctx context.Context, caller, group, user string) error {
	if err := validGroup(group); err != nil {
		return err
	}
	if err := s.requireAdmin(ctx, caller, group, "you do not administer "+group); err != nil {
		return err
	}
	return s.store.RemoveMember(ctx, caller, group, user, s.now())
}

// Members lists the members of group to its administrators and members.
// Others get ErrForbidden whether or not the group exists.
func (s *Service) Members(ctx context.Context, caller, group, after string, limit int) ([]string, error) {
	if err := validGroup(group); err != nil {
		return nil, err
	}
	// Administrators and members may read: one query asks for either.
	allowed, err := s.store.IsMemberOfAny(ctx, caller, append(AdministratorGroups(group), group))
	if err != nil {
		return nil, err
	}
	if !allowed {
		return nil, fmt.Errorf("%w: you neither administer nor belong to %s", ErrForbidden, group)
	}
	return s.store.Members(ctx, group, after, limit) // ErrGroupNotFound for an unknown group
}

// Groups lists the groups caller administers or belongs to (all of them
// for staff).
func (s *Service) Groups(ctx context.Context, caller, after string, limit int) ([]string, error) {
	staff, err := s.IsStaff(ctx, caller)
	if err != nil {
		return nil, err
	}
	if staff {
		return s.store.ListGroups(ctx, after, limit)
	}
	return s.store.VisibleGroups(ctx, caller, after, limit)
}

// UserGroups lists user's groups: all of them to the user and to staff;
// to anyone else, only those they administer.
func (s *Service) UserGroups(ctx context.Context, caller, user, after string, limit int) ([]string, error) {
	all, err := s.store.UserGroups(ctx, user)
	if err != nil {
		return nil, err
	}
	// Which of them caller may see is decided from caller's memberships,
	// read once (Administered), not with a query per group.
	var administered []bool
	if caller != user {
		if administered, err = s.Administered(ctx, caller, all); err != nil {
			return nil, err
		}
	}
	out := make([]string, 0, len(all))
	seen := false
	for i, g := range all {
		if administered != nil && !administered[i] {
			continue
		}
		seen = true
		if g <= after && after != "" {
			continue
		}
		out = append(out, g)
		if len(out) == limit {
			break
		}
	}
	if !seen && caller != user {
		// A user without groups and one whose groups caller does not
		// administer get the same refusal, so that the answer does not
		// tell whether user belongs to any group; staff see anyone's.
		staff, err := s.IsStaff(ctx, caller)
		if err != nil {
			return nil, err
		}
		if !staff {
			return nil, fmt.Errorf("%w: you administer none of %s's groups", ErrForbidden, user)
		}
	}
	return out, nil
}

// Administered reports, for each of groups, whether caller administers it.
// It reads caller's memberships once and decides from their staff groups
// alone (staff administer every group), so that a listing of any length
// costs one query more, not one per group.
func (s *Service) Administered(ctx context.Context, caller string, groups []string) ([]bool, error) {
	out := make([]bool, len(groups))
	if len(groups) == 0 {
		return out, nil
	}
	mine, err := s.store.UserGroups(ctx, caller)
	if err != nil {
		return nil, err
	}
	staffOf := map[string]bool{}
	for _, g := range mine {
		if IsStaffGroup(g) {
			staffOf[g] = true
		}
	}
	for i, g := range groups {
		for _, a := range AdministratorGroups(g) {
			if staffOf[a] {
				out[i] = true
				break
			}
		}
	}
	return out, nil
}

// UserView is what GET /users/{name} shows.
type UserView struct {
	User
	Groups []string
}

// GetUser shows user to itself and to staff.
func (s *Service) GetUser(ctx context.Context, caller, user string) (UserView, error) {
	if caller != user {
		if err := s.requireStaff(ctx, caller); err != nil {
			return UserView{}, err
		}
	}
	u, err := s.store.GetUser(ctx, user)
	if err != nil {
		return UserView{}, err
	}
	groups, err := s.store.UserGroups(ctx, user)
	if err != nil {
		return UserView{}, err
	}
	return UserView{User: u, Groups: groups}, nil
}

// ListUsers lists users to staff.
func (s *Service) ListUsers(ctx context.Context, caller, after string, limit int) ([]User, error) {
	if err := s.requireStaff(ctx, caller); err != nil {
		return nil, err
	}
	return s.store.ListUsers(ctx, after, limit)
}

// SetBanned bans (revoking every session at once) or unbans user; staff only.
func (s *Service) SetBanned(ctx context.Context, caller, user string, banned bool) error {
	if err := s.requireStaff(ctx, caller); err != nil {
		return err
	}
	if banned && caller == user {
		return fmt.Errorf("%w: you cannot ban yourself", ErrForbidden)
	}
	return s.store.SetBanned(ctx, caller, user, banned, s.now())
}

// RevokeUserSessions revokes every live session of user without banning
// it, and returns how many it revoked; staff only. The user's refresh
// tokens are refused at once and introspection calls its access tokens
// inactive; the access tokens themselves stay valid until they expire (at
// most access_ttl), as after a logout.
func (s *Service) RevokeUserSessions(ctx context.Context, caller, user string) (int, error) {
	if err := s.requireStaff(ctx, caller); err != nil {
		return 0, err
	}
	return s.store.RevokeUserSessions(ctx, caller, user, s.now())
}

// DeleteUser removes user, its memberships and sessions; staff only.
func (s *Service) DeleteUser(ctx context.Context, caller, user string) error {
	if err := s.requireStaff(ctx, caller); err != nil {
		return err
	}
	return s.store.DeleteUser(ctx, caller, user, s.now())
}

// Audit returns the audit log to staff.
func (s *Service) Audit(ctx context.Context, caller string, before int64, limit int) ([]AuditEvent, error) {
	if err := s.requireStaff(ctx, caller); err != nil {
		return nil, err
	}
	return s.store.Audit(ctx, before, limit)
}

// IsForbidden reports whether err is a refusal for lack of rights.
func IsForbidden(err error) bool { return errors.Is(err, ErrForbidden) }

// trimmed is used by the CLI to split --groups lists.
func trimmed(list string) []string {
	var out []string
	for _, g := range strings.Split(list, ",") {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	return out
}

// SplitGroups splits a comma-separated --groups value.
func SplitGroups(list string) []string { return trimmed(list) }
