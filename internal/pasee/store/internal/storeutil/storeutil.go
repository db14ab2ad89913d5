// Package storeutil holds what the SQLite and PostgreSQL Pasee stores share
// apart from SQL: how times and claims are encoded in columns, how the
// groups visible to a user are planned as index ranges, and how a refresh
// token that is not the live one is classified. Keeping it in one place
// keeps the two stores' behaviour identical.
package storeutil

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee"
)

// Millis encodes t as the Unix milliseconds stored in BIGINT time columns.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// NullMillis encodes t for a nullable time column: nil (NULL) for the zero
// time, which has no sensible Unix value.
func NullMillis(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	v := t.UnixMilli()
	return &v
}

// Time decodes a time column, in UTC.
func Time(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// NullTime decodes a nullable time column: NULL is the zero time.
func NullTime(ms *int64) time.Time {
	if ms == nil {
		return time.Time{}
	}
	return Time(*ms)
}

// EncodeClaims encodes session claims as the JSON object stored in the
// claims column ("{}" when there are none).
func EncodeClaims(c map[string]any) (string, error) {
	if len(c) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	return string(b), nil
}

// DecodeClaims decodes the claims column; an empty object gives nil, so
// that a session created without claims reads back as it was written.
// Numbers come back as float64, as from any JSON token.
func DecodeClaims(s string) (map[string]any, error) {
	if s == "" || s == "{}" {
		return nil, nil
	}
	var c map[string]any
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return nil, fmt.Errorf("decode claims: %w", err)
	}
	if len(c) == 0 {
		return nil, nil
	}
	return c, nil
}

// Range is an open interval of group names: After < name < Before.
type Range struct {
	After, Before string
}

// SubtreeBelow returns the range of the groups strictly below x: names
// starting with "x.". Group names only hold [a-z0-9_-.], and '/' is the
// byte after '.', so the range is ("x.", "x/") in byte order, a range scan
// of the primary key.
func SubtreeBelow(x string) Range { return Range{After: x + ".", Before: x + "/"} }

// Visibility plans VisibleGroups from the groups a user belongs to.
type Visibility struct {
	// All is set when the user belongs to the root group "staff", whose
	// members administer, and so see, every group.
	All bool
	// Known are visible groups known to exist without reading the groups
	// table: the user's own groups outside the administered subtrees, and
	// the roots of those subtrees (a group X exists while X.staff does).
	// Sorted, all after the page's after.
	Known []string
	// Ranges are the parts of the administered subtrees below their roots
	// still to read, restricted to names after the page's after. They are
	// disjoint from each other and from Known.
	Ranges []Range
}

// PlanVisibility computes the Visibility of a user who belongs to
// memberships, for a page starting after after.
func PlanVisibility(memberships []string, after string) Visibility {
	var roots []string
	rootSet := map[string]bool{}
	for _, g := range memberships {
		if g == pasee.StaffGroup {
			return Visibility{All: true}
		}
		if pasee.IsStaffGroup(g) {
			r := pasee.GroupParent(g)
			if !rootSet[r] {
				rootSet[r] = true
				roots = append(roots, r)
			}
		}
	}
	// Keep the outermost roots: the subtree of admin covers admin.dev's.
	var kept []string
	for _, r := range roots {
		covered := false
		for _, a := range pasee.GroupAncestors(r)[1:] {
			if rootSet[a] {
				covered = true
				break
			}
		}
		if !covered {
			kept = append(kept, r)
		}
	}
	slices.Sort(kept)
	var v Visibility
	inKept := func(g string) bool {
		for _, r := range kept {
			if pasee.IsInSubtree(g, r) {
				return true
			}
		}
		return false
	}
	known := append([]string(nil), kept...)
	for _, g := range memberships {
		if !inKept(g) {
			known = append(known, g)
		}
	}
	slices.Sort(known)
	known = slices.Compact(known)
	for _, g := range known {
		if g > after {
			v.Known = append(v.Known, g)
		}
	}
	for _, r := range kept {
		rg := SubtreeBelow(r)
		if after > rg.After {
			rg.After = after
		}
		if rg.After < rg.Before {
			v.Ranges = append(v.Ranges, rg)
		}
	}
	return v
}

// Merge returns the first limit names of the union of v.Known and read
// (the names read from v.Ranges), in byte order.
func (v Visibility) Merge(read []string, limit int) []string {
	out := make([]string, 0, len(v.Known)+len(read))
	out = append(out, v.Known...)
	out = append(out, read...)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// ClassifySpent decides what a presented refresh token is when the
// conditional rotation (live token of a live, unexpired session of a user
// who is not banned) matched nothing. s is the session read in the same
// transaction; found is false when it does not exist (deleted with its
// user); banned is its user's ban. The sessions of a banned user are
// revoked by the ban, but one created while the ban was being written
// could still be live: it is refused all the same.
func ClassifySpent(s pasee.Session, found, banned bool, presented string, now time.Time, grace time.Duration) pasee.RotateOutcome {
	switch {
	case !found, banned, !s.RevokedAt.IsZero(), !now.Before(s.ExpiresAt):
		return pasee.SessionRevoked
	case presented == s.RefreshJTI:
		// Unreachable: the live token of a live session is rotated by the
		// conditional update in the same transaction. Fail safe.
		return pasee.SessionRevoked
	case presented != "" && presented == s.PreviousJTI && !s.RotatedAt.IsZero() && grace > 0 && now.Sub(s.RotatedAt) <= grace:
		return pasee.Replayed
	}
	return pasee.ReuseDetected
}

// GroupsDetail describes, for an audit event, the groups a deleted user
// was removed from.
func GroupsDetail(groups []string) string {
	if len(groups) == 0 {
		return ""
	}
	return "groups: " + strings.Join(groups, ",")
}
