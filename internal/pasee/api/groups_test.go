package api_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
)

type step struct {
	who, method, path string
	body              any
	status            int
	title             string
}

func (s *suite) walk(t *testing.T, tokens map[string]string, steps []step) {
	t.Helper()
	for i, st := range steps {
		r := Do(t, st.method, s.pasee.URL+st.path, st.body, Bearer(tokens[st.who])...)
		if st.title != "" {
			if r.StatusCode != st.status || r.JSON["title"] != st.title {
				t.Fatalf("step %d: %s %s %s: %d %s, want %d %q", i, st.who, st.method, st.path, r.StatusCode, r.Body, st.status, st.title)
			}
			continue
		}
		if r.StatusCode != st.status {
			t.Fatalf("step %d: %s %s %s: %d %s, want %d", i, st.who, st.method, st.path, r.StatusCode, r.Body, st.status)
		}
	}
}

func user(name string) map[string]string  { return map[string]string{"username": "kisee-" + name} }
func group(name string) map[string]string { return map[string]string{"group": name} }
func members(t *testing.T, r *Response) []string {
	var out []string
	for _, m := range r.JSON["members"].([]any) {
		out = append(out, m.(map[string]any)["username"].(string))
	}
	return out
}

// The scenario of SPEC section 3, then the mixed cases around it.
func TestGroupScenario(t *testing.T) {
	forEachStore(t, func(t *testing.T, store paseetest.Store) {
		s, tok := startPeople(t, store)
		s.walk(t, tok, []step{
			// You (staff) create admin, then admin.developers; John joins its staff.
			{"you", "POST", "/groups/", group("admin"), 201, ""},
			{"you", "POST", "/groups/", group("admin.developers"), 201, ""},
			{"you", "POST", "/groups/admin.developers.staff/", user("john"), 201, ""},
			// John adds Alan, Ada and Donald to admin.developers.
			{"john", "POST", "/groups/admin.developers/", user("alan"), 201, ""},
			{"john", "POST", "/groups/admin.developers/", user("ada"), 201, ""},
			{"john", "POST", "/groups/admin.developers/", user("donald"), 201, ""},
			{"john", "POST", "/groups/admin.developers/", user("ada"), 400, "User already in group"},
			// John administers admin.developers and its subtree, not admin.
			{"john", "POST", "/groups/", group("admin.developers.backend"), 201, ""},
			{"john", "POST", "/groups/admin.developers.staff/", user("alan"), 201, ""},
			{"john", "DELETE", "/groups/admin.developers.staff/kisee-alan/", nil, 204, ""},
			{"john", "POST", "/groups/", group("admin.sales"), 403, "Not authorized to create group"},
			{"john", "POST", "/groups/admin/", user("bob"), 403, "Not authorized to manage this group"},
			{"john", "POST", "/groups/admin.staff/", user("john"), 403, "Not authorized to manage this group"},
			{"john", "GET", "/groups/admin/", nil, 403, "Not authorized to read this group"},
			{"john", "DELETE", "/groups/admin.developers/", nil, 403, "Not authorized to delete group"},
			{"john", "DELETE", "/groups/admin.developers.backend/", nil, 204, ""},
			{"john", "POST", "/groups/", group("root2"), 403, "Not authorized to create group"},
			// Ada is a member, not staff: she reads her group, changes nothing.
			{"ada", "GET", "/groups/admin.developers/", nil, 200, ""},
			{"ada", "POST", "/groups/admin.developers/", user("bob"), 403, "Not authorized to manage this group"},
			{"ada", "DELETE", "/groups/admin.developers/kisee-alan/", nil, 403, "Not authorized to manage this group"},
			{"ada", "POST", "/groups/", group("admin.developers.ada"), 403, "Not authorized to create group"},
			{"ada", "GET", "/groups/admin.developers.staff/", nil, 403, "Not authorized to read this group"},
			// You, staff of admin, administer the whole subtree by cascade.
			{"you", "POST", "/groups/admin.developers/", user("bob"), 201, ""},
			{"you", "DELETE", "/groups/admin.developers/kisee-bob/", nil, 204, ""},
			{"you", "DELETE", "/groups/admin.developers/kisee-bob/", nil, 404, "User does not exist in group"},
			// Staff of a sibling tree has no right here.
			{"you", "POST", "/groups/", group("sales"), 201, ""},
			{"you", "POST", "/groups/sales.staff/", user("bob"), 201, ""},
			{"bob", "POST", "/groups/admin.developers/", user("bob"), 403, "Not authorized to manage this group"},
			{"bob", "POST", "/groups/", group("sales.emea"), 201, ""},
			{"bob", "POST", "/groups/", group("admin.bob"), 403, "Not authorized to create group"},
			// 403 before 404 for those who may not know; 404 for administrators.
			{"bob", "GET", "/groups/nowhere/", nil, 403, "Not authorized to read this group"},
			{"you", "GET", "/groups/nowhere/", nil, 404, "Group does not exist"},
			{"you", "POST", "/groups/", group("nowhere.child"), 404, "Parent group does not exist"},
			{"you", "POST", "/groups/", group("admin"), 409, "Group already exists"},
			{"you", "POST", "/groups/nowhere/", user("ada"), 404, "Group does not exist"},
		})

		r := Do(t, "GET", s.pasee.URL+"/groups/admin.developers/", nil, Bearer(tok["john"])...).WantStatus(t, 200)
		if got := members(t, r); !slices.Equal(got, []string{"kisee-ada", "kisee-alan", "kisee-donald"}) {
			t.Fatalf("admin.developers members: %v", got)
		}
		listed := func(who string) []string {
			r := Do(t, "GET", s.pasee.URL+"/groups/", nil, Bearer(tok[who])...).WantStatus(t, 200)
			var out []string
			for _, g := range r.JSON["groups"].([]any) {
				out = append(out, g.(map[string]any)["group"].(string))
			}
			return out
		}
		if got := listed("ada"); !slices.Equal(got, []string{"admin.developers"}) {
			t.Fatalf("ada sees %v", got)
		}
		if got := listed("john"); !slices.Equal(got, []string{"admin.developers", "admin.developers.staff"}) {
			t.Fatalf("john sees %v", got)
		}
		if got := listed("you"); !slices.Contains(got, "sales.emea") || !slices.Contains(got, "staff") {
			t.Fatalf("staff sees %v", got)
		}
		// The new token of a member carries its groups; rights are not read from it.
		ada := s.login(t, "ada", "ada password")
		if g, _ := s.claims(t, ada.access, "at+jwt").Strings("groups"); !slices.Equal(g, []string{"admin.developers"}) {
			t.Fatalf("ada's groups claim %v", g)
		}

		// A removed administrator loses rights at once, token or not.
		s.walk(t, tok, []step{
			{"you", "DELETE", "/groups/admin.developers.staff/kisee-john/", nil, 204, ""},
			{"john", "POST", "/groups/admin.developers/", user("bob"), 403, "Not authorized to manage this group"},
			// Deleting a group takes its subtree and memberships.
			{"you", "DELETE", "/groups/admin/", nil, 204, ""},
			{"ada", "GET", "/groups/admin.developers/", nil, 403, "Not authorized to read this group"},
			{"you", "GET", "/groups/admin.developers/", nil, 404, "Group does not exist"},
			{"you", "DELETE", "/groups/staff/", nil, 403, "Not authorized to delete group"},
		})
		if g, _ := s.claims(t, s.login(t, "ada", "ada password").access, "at+jwt").Strings("groups"); len(g) != 0 {
			t.Fatalf("ada keeps groups after deletion: %v", g)
		}
	})
}

func TestGroupInputRefusals(t *testing.T) {
	s, tok := startPeople(t, paseetest.SQLite)
	Do(t, "POST", s.pasee.URL+"/groups/", group("admin"), Bearer(tok["you"])...).WantStatus(t, 201)
	for _, name := range []string{
		"Admin", "a..b", "a.", ".a", "a b", "аdmin" /* Cyrillic а */, "admin'; DROP TABLE pasee_groups; --",
		"../etc", "a/b", strings.Repeat("a", 65), strings.Repeat("a.", 16) + "a", strings.Repeat("abcdefgh.", 28) + "a", "admin.staff", "x.staff", "staff",
	} {
		r := Do(t, "POST", s.pasee.URL+"/groups/", group(name), Bearer(tok["you"])...)
		if r.StatusCode != 400 || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("group %q: %d %s, want 400", name, r.StatusCode, r.Body)
		}
	}
	for _, body := range []string{`{}`, `{"group": 5}`, `{"group": ""}`, `[`, `null`} {
		r := Do(t, "POST", s.pasee.URL+"/groups/", body, Bearer(tok["you"])...)
		if r.StatusCode != 400 {
			t.Errorf("body %s: %d %s", body, r.StatusCode, r.Body)
		}
	}
	for _, u := range []string{"alice", "github-x", "kisee-", "kisee-a b", "kisee-\u0000", "-x", "kisee-" + strings.Repeat("x", 300)} {
		r := Do(t, "POST", s.pasee.URL+"/groups/admin/", map[string]string{"username": u}, Bearer(tok["you"])...)
		if r.StatusCode != 400 || r.JSON["title"] != "Invalid name" {
			t.Errorf("user %q: %d %s", u, r.StatusCode, r.Body)
		}
	}
	// Path traversal and escapes in {g} and {username} stay names.
	for _, p := range []string{"/groups/..%2F..%2Fetc/", "/groups/%2e%2e/", "/groups/admin/..%2Fkisee-you/"} {
		r := Do(t, "GET", s.pasee.URL+p, nil, Bearer(tok["you"])...)
		if r.StatusCode < 400 || r.StatusCode >= 500 {
			t.Errorf("%s: %d %s", p, r.StatusCode, r.Body)
		}
	}
	// Unknown users named in a group are created.
	Do(t, "POST", s.pasee.URL+"/groups/admin/", user("newcomer"), Bearer(tok["you"])...).WantStatus(t, 201)
	Do(t, "GET", s.pasee.URL+"/users/kisee-newcomer", nil, Bearer(tok["you"])...).WantStatus(t, 200)
	// Missing or wrong tokens.
	Do(t, "GET", s.pasee.URL+"/groups/", nil).WantProblem(t, 401, "Missing token")
	Do(t, "GET", s.pasee.URL+"/groups/", nil, Bearer("x.y.z")...).WantProblem(t, 401, "Invalid token")
}

func TestGroupPagination(t *testing.T) {
	s, tok := startPeople(t, paseetest.SQLite)
	for _, g := range []string{"a", "b", "c"} {
		Do(t, "POST", s.pasee.URL+"/groups/", group(g), Bearer(tok["you"])...).WantStatus(t, 201)
	}
	// Groups: a, a.staff, b, b.staff, c, c.staff, staff.
	var seen []string
	next := s.pasee.URL + "/groups/?limit=2"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		r := Do(t, "GET", next, nil, Bearer(tok["you"])...).WantStatus(t, 200)
		for _, g := range r.JSON["groups"].([]any) {
			seen = append(seen, g.(map[string]any)["group"].(string))
		}
		next, _ = r.JSON["next"].(string)
	}
	if !slices.Equal(seen, []string{"a", "a.staff", "b", "b.staff", "c", "c.staff", "staff"}) {
		t.Fatalf("paged through %v", seen)
	}
	for _, bad := range []string{"0", "201", "x", "-1"} {
		Do(t, "GET", s.pasee.URL+"/groups/?limit="+url.QueryEscape(bad), nil, Bearer(tok["you"])...).WantProblem(t, 400, "Invalid pagination")
	}
	// ?user=: one's own groups, all of them; staff sees anyone's; others only what they administer.
	Do(t, "POST", s.pasee.URL+"/groups/a/", user("ada"), Bearer(tok["you"])...).WantStatus(t, 201)
	Do(t, "POST", s.pasee.URL+"/groups/b/", user("ada"), Bearer(tok["you"])...).WantStatus(t, 201)
	Do(t, "POST", s.pasee.URL+"/groups/b.staff/", user("john"), Bearer(tok["you"])...).WantStatus(t, 201)
	names := func(who string) []string {
		r := Do(t, "GET", s.pasee.URL+"/groups/?user=kisee-ada", nil, Bearer(tok[who])...)
		if r.StatusCode != 200 {
			return []string{r.JSON["title"].(string)}
		}
		var out []string
		for _, g := range r.JSON["groups"].([]any) {
			out = append(out, g.(map[string]any)["group"].(string))
		}
		return out
	}
	if got := names("ada"); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("ada's own groups: %v", got)
	}
	if got := names("you"); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("staff view of ada's groups: %v", got)
	}
	if got := names("john"); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("john (staff of b) sees %v of ada's groups", got)
	}
	if got := names("bob"); !slices.Equal(got, []string{"Not authorized to read these groups"}) {
		t.Fatalf("bob sees %v", got)
	}
	// "No groups" and "not allowed" are one answer to whoever may not know
	// which: it would tell any logged-in user whether someone has groups.
	for _, other := range []string{"kisee-ada", "kisee-nobody", "kisee-never-logged-in"} {
		Do(t, "GET", s.pasee.URL+"/groups/?user="+other, nil, Bearer(tok["bob"])...).WantProblem(t, 403, "Not authorized to read these groups")
	}
	if r := Do(t, "GET", s.pasee.URL+"/groups/?user=kisee-nobody", nil, Bearer(tok["you"])...).WantStatus(t, 200); len(r.JSON["groups"].([]any)) != 0 {
		t.Errorf("staff view of a user without groups: %s", r.Body)
	}
}
