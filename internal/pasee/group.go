package pasee

import (
	"fmt"
	"strings"
)

// Group name limits (see ValidateGroupName) and the staff names.
const (
	MaxGroupDepth  = 16
	MaxGroupLength = 255
	MaxSegmentLen  = 64
	StaffGroup     = "staff" // the root group whose members administer everything
	staffSegment   = "staff"
	groupSeparator = "."
)

// ValidateGroupName checks name: dot-separated segments of [a-z0-9_-],
// 1 to 64 characters each, at most 16 levels and 255 characters — 15 and
// 249 for a group that is not a staff group, whose staff group must fit.
func ValidateGroupName(name string) error {
	if name == "" {
		return fmt.Errorf("group name is empty")
	}
	if len(name) > MaxGroupLength {
		return fmt.Errorf("group name is longer than %d characters", MaxGroupLength)
	}
	segments := strings.Split(name, groupSeparator)
	if len(segments) > MaxGroupDepth {
		return fmt.Errorf("group name has more than %d levels", MaxGroupDepth)
	}
	for _, s := range segments {
		if s == "" {
			return fmt.Errorf("group name %q has an empty segment", name)
		}
		if len(s) > MaxSegmentLen {
			return fmt.Errorf("group segment %q is longer than %d characters", s, MaxSegmentLen)
		}
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
				return fmt.Errorf("group name %q: segments may only hold a-z, 0-9, '_' and '-'", name)
			}
		}
	}
	// Every group but a staff group comes with its staff group, name.staff
	// (CreateGroup, EnsureGroup), which must be within the limits too.
	// Otherwise a group of 16 levels or of more than 249 characters would
	// be accepted, and its staff group, created with it, refused by every
	// route, so that its members could not be managed.
	if !IsStaffGroup(name) {
		if len(segments) >= MaxGroupDepth {
			return fmt.Errorf("group name has more than %d levels (its staff group takes the %dth)", MaxGroupDepth-1, MaxGroupDepth)
		}
		if len(name)+len(groupSeparator+staffSegment) > MaxGroupLength {
			return fmt.Errorf("group name is longer than %d characters (its staff group adds %q)", MaxGroupLength-len(groupSeparator+staffSegment), groupSeparator+staffSegment)
		}
	}
	return nil
}

// GroupParent returns the parent of name ("" for a root group).
func GroupParent(name string) string {
	i := strings.LastIndex(name, groupSeparator)
	if i < 0 {
		return ""
	}
	return name[:i]
}

// GroupAncestors returns name and its ancestors, nearest first:
// "a.b.c" → ["a.b.c", "a.b", "a"].
func GroupAncestors(name string) []string {
	out := []string{name}
	for p := GroupParent(name); p != ""; p = GroupParent(p) {
		out = append(out, p)
	}
	return out
}

// IsStaffGroup reports whether name is a staff group: "staff" or "X.staff".
func IsStaffGroup(name string) bool {
	return name == StaffGroup || strings.HasSuffix(name, groupSeparator+staffSegment)
}

// StaffOf returns the staff group of name: "admin" → "admin.staff".
func StaffOf(name string) string { return name + groupSeparator + staffSegment }

// AdministratorGroups returns the groups whose members administer name:
// "staff", and A.staff for A = name and each of its ancestors. For a staff
// group X.staff, the administrators are those of X.
func AdministratorGroups(name string) []string {
	if name == StaffGroup {
		return []string{StaffGroup}
	}
	target := name
	if IsStaffGroup(name) {
		target = GroupParent(name)
	}
	out := []string{StaffGroup}
	for _, a := range GroupAncestors(target) {
		out = append(out, StaffOf(a))
	}
	return out
}

// IsInSubtree reports whether name is root or below it.
func IsInSubtree(name, root string) bool {
	return name == root || strings.HasPrefix(name, root+groupSeparator)
}
