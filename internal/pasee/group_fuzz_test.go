package pasee

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// groupGrammar is SPEC's rule for group names, written independently of
// ValidateGroupName: dot-separated segments of [a-z0-9_-]{1,64}, at most
// 16 levels (the length bound is checked apart).
var groupGrammar = regexp.MustCompile(`^[a-z0-9_-]{1,64}(\.[a-z0-9_-]{1,64}){0,15}$`)

// FuzzValidateGroupName checks ValidateGroupName against the grammar, and
// what the rest of the package assumes of a valid name: its parent and
// ancestors are valid, it sits in their subtrees, and every group that
// administers it — its staff group above all, which CreateGroup makes with
// it — is a valid name too, so that the API can manage it.
func FuzzValidateGroupName(f *testing.F) {
	for _, seed := range []string{
		"staff", "admin", "admin.developers", "admin.developers.staff", "a-b_c.d0",
		"", ".", "a..b", "a.", ".a", "Admin", "a b", "a/b", "../etc", "a\x00b", "%00",
		"ѕtaff", "staff\u200d", "\u202estaff", "staff'; DROP TABLE pasee_groups;--",
		strings.Repeat("a", 64), strings.Repeat("a", 65),
		strings.Repeat("a.", 15) + "a", strings.Repeat("a.", 16) + "a",
		strings.Repeat("abcdefgh.", 27) + "abcdefgh", strings.Repeat("b", 64) + "." + strings.Repeat("c", 64) + "." + strings.Repeat("d", 64) + "." + strings.Repeat("e", 60),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateGroupName(name)
		grammar := groupGrammar.MatchString(name) && len(name) <= MaxGroupLength
		if err == nil && !grammar {
			t.Fatalf("ValidateGroupName accepts %q, which SPEC's grammar refuses", name)
		}
		if err != nil {
			if err.Error() == "" || !utf8.ValidString(err.Error()) {
				t.Fatalf("unusable error for %q: %q", name, err)
			}
			return
		}
		if parent := GroupParent(name); parent != "" {
			if perr := ValidateGroupName(parent); perr != nil {
				t.Fatalf("valid %q has an invalid parent %q: %v", name, parent, perr)
			}
		}
		ancestors := GroupAncestors(name)
		if len(ancestors) != strings.Count(name, ".")+1 || ancestors[0] != name {
			t.Fatalf("GroupAncestors(%q) = %q", name, ancestors)
		}
		for _, a := range ancestors {
			if !IsInSubtree(name, a) {
				t.Fatalf("%q is not in the subtree of its ancestor %q", name, a)
			}
		}
		if IsInSubtree(name, name+"x") || (GroupParent(name) != "" && IsInSubtree(GroupParent(name), name)) {
			t.Fatalf("subtree of %q is wrong", name)
		}
		if !IsStaffGroup(name) {
			// CreateGroup creates name.staff with name: it must be a name
			// the API accepts, or its members could never be managed.
			if serr := ValidateGroupName(StaffOf(name)); serr != nil {
				t.Fatalf("valid group %q has a staff group the API refuses: %v", name, serr)
			}
		}
		for _, g := range AdministratorGroups(name) {
			if gerr := ValidateGroupName(g); gerr != nil {
				t.Fatalf("administrators of %q are in %q, an invalid name: %v", name, g, gerr)
			}
		}
	})
}

// FuzzValidateSubject checks that an accepted subject is printable UTF-8
// without whitespace, slash or format characters, and within bounds.
func FuzzValidateSubject(f *testing.F) {
	for _, seed := range []string{"alice", "internals-ada", "12345", "José", "иван", "山田太郎", "yamada山田", "аlice", "alice\u200d",
		"\u202ealice", "a\x00", "%00", "a/b", "a b", "", strings.Repeat("x", 190), strings.Repeat("x", 191)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, sub string) {
		if ValidateSubject(sub) != nil {
			return
		}
		if !utf8.ValidString(sub) || sub == "" || len(sub) > MaxUserName-65 {
			t.Fatalf("accepted %q: empty, too long or not UTF-8", sub)
		}
		if strings.ContainsAny(sub, "/ \t\r\n\x00\u200b\u200c\u200d\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff") {
			t.Fatalf("accepted %q, which holds a slash, whitespace or an invisible/bidi character", sub)
		}
		if a, b, mixed := mixedScripts(sub); mixed {
			t.Fatalf("accepted %q, which mixes %s and %s", sub, a, b)
		}
	})
}
