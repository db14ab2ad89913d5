package api_test

import (
	"strings"
	"testing"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
)

// administered returns the "administered" flag of each group of a
// GET /groups/ answer.
func administered(t *testing.T, r *Response) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, g := range r.JSON["groups"].([]any) {
		item := g.(map[string]any)
		flag, ok := item["administered"].(bool)
		if !ok {
			t.Fatalf("group without a boolean administered: %s", r.Body)
		}
		out[item["group"].(string)] = flag
	}
	return out
}

func sameFlags(t *testing.T, who string, got, want map[string]bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: groups %v, want %v", who, got, want)
	}
	for g, w := range want {
		if v, ok := got[g]; !ok || v != w {
			t.Fatalf("%s: groups %v, want %v", who, got, want)
		}
	}
}

// GET /groups/ tells the caller which groups it administers, so that a
// client (the admin page) shows controls only there; the SPEC scenario.
func TestGroupsSayWhichTheCallerAdministers(t *testing.T) {
	forEachStore(t, func(t *testing.T, store paseetest.Store) {
		s, tok := startPeople(t, store)
		s.walk(t, tok, []step{
			{"you", "POST", "/groups/", group("admin"), 201, ""},
			{"you", "POST", "/groups/", group("admin.developers"), 201, ""},
			{"you", "POST", "/groups/admin.developers.staff/", user("john"), 201, ""},
			{"john", "POST", "/groups/admin.developers/", user("ada"), 201, ""},
			{"john", "POST", "/groups/", group("admin.developers.web"), 201, ""},
		})
		list := func(who, query string) map[string]bool {
			return administered(t, Do(t, "GET", s.pasee.URL+"/groups/"+query, nil, Bearer(tok[who])...).WantStatus(t, 200))
		}
		// Staff administer every group.
		sameFlags(t, "you", list("you", ""), map[string]bool{
			"admin": true, "admin.staff": true, "admin.developers": true, "admin.developers.staff": true,
			"admin.developers.web": true, "admin.developers.web.staff": true, "staff": true,
		})
		// John administers admin.developers and below, not admin (which he does not see).
		sameFlags(t, "john", list("john", ""), map[string]bool{
			"admin.developers": true, "admin.developers.staff": true, "admin.developers.web": true, "admin.developers.web.staff": true,
		})
		// Ada only belongs to admin.developers.
		sameFlags(t, "ada", list("ada", ""), map[string]bool{"admin.developers": false})
		// ?user= says it too: John administers Ada's group; Ada, reading her own, does not.
		sameFlags(t, "john about ada", list("john", "?user=kisee-ada"), map[string]bool{"admin.developers": true})
		sameFlags(t, "ada about herself", list("ada", "?user=kisee-ada"), map[string]bool{"admin.developers": false})
		// Rights come from the store at each request: removed from the
		// staff group, John no longer administers anything.
		s.walk(t, tok, []step{{"you", "DELETE", "/groups/admin.developers.staff/kisee-john/", nil, 204, ""}})
		sameFlags(t, "john removed", list("john", ""), map[string]bool{"admin.developers.web.staff": true, "admin.developers.web": true})
	})
}

// DELETE /users/{username}/sessions ends a user's sessions without
// banning: staff only.
func TestRevokeUserSessions(t *testing.T) {
	forEachStore(t, func(t *testing.T, store paseetest.Store) {
		s, tok := startPeople(t, store)
		first := s.login(t, "alan", "alan password")
		second := s.login(t, "alan", "alan password")
		u := s.pasee.URL + "/users/kisee-alan/sessions"

		Do(t, "DELETE", u, nil).WantProblem(t, 401, "Missing token")
		Do(t, "DELETE", u, nil, Bearer(tok["ada"])...).WantProblem(t, 403, "Not authorized to revoke sessions")
		Do(t, "DELETE", s.pasee.URL+"/users/kisee-nobody/sessions", nil, Bearer(tok["you"])...).WantProblem(t, 404, "User does not exist")

		// Alan logged in three times (startPeople, then twice here).
		r := Do(t, "DELETE", u, nil, Bearer(tok["you"])...).WantStatus(t, 200)
		if r.JSON["username"] != "kisee-alan" || r.JSON["revoked"] != float64(3) {
			t.Fatalf("revoke: %s", r.Body)
		}
		for _, p := range []pair{first, second} {
			Do(t, "POST", s.pasee.URL+"/tokens/?refresh", nil, Bearer(p.refresh)...).WantProblem(t, 401, "Session revoked")
			r := Do(t, "POST", s.pasee.URL+"/tokens/introspect", map[string]string{"token": p.access}, paseetest.IntrospectionAuth()...).WantStatus(t, 200)
			if r.JSON["active"] != false {
				t.Fatalf("an access token of a revoked session is introspected as active: %s", r.Body)
			}
		}
		// Alan is not banned: he logs in again, and his new session lives.
		again := s.login(t, "alan", "alan password")
		Do(t, "POST", s.pasee.URL+"/tokens/?refresh", nil, Bearer(again.refresh)...).WantStatus(t, 201)
		// Revoking again finds nothing more than the new session.
		r = Do(t, "DELETE", u+"/", nil, Bearer(tok["you"])...).WantStatus(t, 200)
		if r.JSON["revoked"] != float64(1) {
			t.Fatalf("second revoke: %s", r.Body)
		}

		log := string(Do(t, "GET", s.pasee.URL+"/audit/?limit=200", nil, Bearer(tok["you"])...).WantStatus(t, 200).Body)
		for _, want := range []string{
			`"actor":"kisee-you","action":"session.revoke","target":"kisee-alan","detail":"3 sessions revoked"`,
			`"actor":"kisee-you","action":"session.revoke","target":"kisee-alan","detail":"1 sessions revoked"`,
		} {
			if !strings.Contains(log, want) {
				t.Errorf("audit log lacks %s", want)
			}
		}
	})
}
