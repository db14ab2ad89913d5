package api_test

import (
	"testing"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
)

// A name holding a literal "%" is addressed by its percent-encoding, once:
// /users/kisee-a%2541 is the user "kisee-a%41", not "kisee-aA". Found by
// the attack suite's double-encoded traversals: path parameters were
// unescaped twice, so that a request could name another user than the one
// its path encodes (and reach PostgreSQL with a NUL: 500).
func TestPathParametersAreUnescapedOnce(t *testing.T) {
	forEachStore(t, func(t *testing.T, store paseetest.Store) {
		s, tok := startPeople(t, store)
		you := Bearer(tok["you"])
		Do(t, "POST", s.pasee.URL+"/groups/", group("pct"), you...).WantStatus(t, 201)
		Do(t, "POST", s.pasee.URL+"/groups/pct/", map[string]string{"username": "kisee-a%41"}, you...).WantStatus(t, 201)
		Do(t, "POST", s.pasee.URL+"/groups/pct/", map[string]string{"username": "kisee-aA"}, you...).WantStatus(t, 201)
		r := Do(t, "GET", s.pasee.URL+"/users/kisee-a%2541", nil, you...).WantStatus(t, 200)
		if r.JSON["username"] != "kisee-a%41" {
			t.Fatalf("/users/kisee-a%%2541 is %v, want kisee-a%%41", r.JSON["username"])
		}
		Do(t, "DELETE", s.pasee.URL+"/groups/pct/kisee-a%2541/", nil, you...).WantStatus(t, 204)
		r = Do(t, "GET", s.pasee.URL+"/groups/pct/", nil, you...).WantStatus(t, 200)
		if m := members(t, r); len(m) != 1 || m[0] != "kisee-aA" {
			t.Fatalf("after removing kisee-a%%41, members %v", m)
		}
		// A slash, encoded, is part of the name; a NUL names nobody.
		Do(t, "GET", s.pasee.URL+"/users/kisee-a%2Fb", nil, you...).WantProblem(t, 404, "User does not exist")
		Do(t, "GET", s.pasee.URL+"/users/kisee-a%00", nil, you...).WantProblem(t, 400, "Invalid path")
		Do(t, "GET", s.pasee.URL+"/groups/?after=%00", nil, you...).WantProblem(t, 400, "Invalid pagination")
	})
}
