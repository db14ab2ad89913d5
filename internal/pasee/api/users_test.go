package api_test

import (
	"strings"
	"testing"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
)

func TestUsersAdministration(t *testing.T) {
	forEachStore(t, func(t *testing.T, store paseetest.Store) {
		s, tok := startPeople(t, store)
		u := s.pasee.URL + "/users/"
		// Listing users is for staff only (fix: was an empty 200).
		r := Do(t, "GET", u, nil, Bearer(tok["you"])...).WantStatus(t, 200)
		if n := len(r.JSON["users"].([]any)); n != len(people) {
			t.Fatalf("%d users listed, want %d: %s", n, len(people), r.Body)
		}
		Do(t, "GET", u, nil, Bearer(tok["ada"])...).WantProblem(t, 403, "Not authorized to list users")

		// Self and staff read a user; others cannot.
		r = Do(t, "GET", u+"kisee-ada", nil, Bearer(tok["ada"])...).WantStatus(t, 200)
		if r.JSON["username"] != "kisee-ada" || r.JSON["is_banned"] != false || r.JSON["last_login_at"] == nil || r.JSON["created_at"] == "" {
			t.Fatalf("self view %s", r.Body)
		}
		Do(t, "GET", u+"kisee-ada", nil, Bearer(tok["you"])...).WantStatus(t, 200)
		Do(t, "GET", u+"kisee-ada", nil, Bearer(tok["bob"])...).WantProblem(t, 403, "Not authorized to read this user")
		Do(t, "GET", u+"kisee-nobody", nil, Bearer(tok["you"])...).WantProblem(t, 404, "User does not exist")

		// Banning: staff only, revokes sessions at once, refuses new tokens.
		bob := s.login(t, "bob", "bob password")
		Do(t, "PATCH", u+"kisee-bob", `{"is_banned": true}`, Bearer(tok["ada"])...).WantProblem(t, 403, "Not authorized to ban users")
		Do(t, "PATCH", u+"kisee-bob", `{"username": "kisee-robert"}`, Bearer(tok["you"])...).WantProblem(t, 400, "Username cannot be changed")
		Do(t, "PATCH", u+"kisee-bob", `{"is_banned": "yes"}`, Bearer(tok["you"])...).WantProblem(t, 400, "Invalid JSON")
		Do(t, "PATCH", u+"kisee-bob", `{}`, Bearer(tok["you"])...).WantProblem(t, 400, "Nothing to change")
		Do(t, "PATCH", u+"kisee-nobody", `{"is_banned": true}`, Bearer(tok["you"])...).WantProblem(t, 404, "User does not exist")
		Do(t, "PATCH", u+"kisee-bob", `{"is_banned": true}`, Bearer(tok["you"])...).WantStatus(t, 204)
		Do(t, "POST", s.pasee.URL+"/tokens/?refresh", nil, Bearer(bob.refresh)...).WantProblem(t, 401, "Session revoked")
		Do(t, "POST", s.pasee.URL+"/tokens/?idp=kisee", map[string]string{"login": "bob", "password": "bob password"}).WantProblem(t, 403, "User is banned")
		Do(t, "GET", s.pasee.URL+"/groups/", nil, Bearer(bob.access)...).WantProblem(t, 403, "User is banned")
		r = Do(t, "GET", u+"kisee-bob", nil, Bearer(tok["you"])...).WantStatus(t, 200)
		if r.JSON["is_banned"] != true {
			t.Fatalf("ban not shown: %s", r.Body)
		}
		Do(t, "PATCH", u+"kisee-bob", `{"is_banned": false}`, Bearer(tok["you"])...).WantStatus(t, 204)
		s.login(t, "bob", "bob password")

		// Deleting a user removes memberships and sessions.
		s.addToGroups(t, "kisee-donald", "club")
		donald := s.login(t, "donald", "donald password")
		Do(t, "DELETE", u+"kisee-donald", nil, Bearer(tok["ada"])...).WantProblem(t, 403, "Not authorized to delete users")
		Do(t, "DELETE", u+"kisee-donald", nil, Bearer(tok["you"])...).WantStatus(t, 204)
		Do(t, "POST", s.pasee.URL+"/tokens/?refresh", nil, Bearer(donald.refresh)...).WantProblem(t, 401, "Session revoked")
		r = Do(t, "GET", s.pasee.URL+"/groups/club/", nil, Bearer(tok["you"])...).WantStatus(t, 200)
		if len(r.JSON["members"].([]any)) != 0 {
			t.Fatalf("deleted user still a member: %s", r.Body)
		}

		// Every change is in the audit log, for staff.
		Do(t, "GET", s.pasee.URL+"/audit/", nil, Bearer(tok["ada"])...).WantProblem(t, 403, "Not authorized to read the audit log")
		r = Do(t, "GET", s.pasee.URL+"/audit/?limit=200", nil, Bearer(tok["you"])...).WantStatus(t, 200)
		log := string(r.Body)
		for _, want := range []string{`"action":"user.ban","target":"kisee-bob"`, `"action":"user.unban"`, `"action":"user.delete","target":"kisee-donald"`, `"actor":"kisee-you"`} {
			if !strings.Contains(log, want) {
				t.Errorf("audit log lacks %s", want)
			}
		}
	})
}

// Registration and recovery are forwarded unchanged to the provider with
// registration = true.
func TestForwarding(t *testing.T) {
	s := start(t, paseetest.SQLite, "")
	body := `{"username":"newuser","email":"new@example.com","password":"a long password"}`
	direct := Do(t, "POST", s.kisee.URL+"/users/", body)
	forwarded := Do(t, "POST", s.pasee.URL+"/users/", body)
	if forwarded.StatusCode != direct.StatusCode || forwarded.Header.Get("Content-Type") != direct.Header.Get("Content-Type") {
		t.Fatalf("forwarded %d %s, direct %d %s", forwarded.StatusCode, forwarded.Body, direct.StatusCode, direct.Body)
	}
	rec := `{"email":"nobody@example.com"}`
	d, f := Do(t, "POST", s.kisee.URL+"/password_recoveries/", rec), Do(t, "POST", s.pasee.URL+"/password_recoveries/", rec)
	if d.StatusCode != f.StatusCode {
		t.Fatalf("recovery forwarded %d, direct %d", f.StatusCode, d.StatusCode)
	}
	noReg := paseetest.Start(t, paseetest.SQLite, "[[identity_providers]]\nname = \"k\"\nprotocol = \"kisee\"\nendpoint = \""+s.kisee.URL+"\"\n")
	Do(t, "POST", noReg.URL+"/users/", body).WantProblem(t, 404, "Registration not available")
}
