package api_test

import (
	"testing"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
)

// Pasee counts failures per account and address itself, and passes the
// client's address to Kisee, whose own protection then counts the client
// rather than Pasee.
func TestBruteForceThroughPasee(t *testing.T) {
	k := kiseetest.Start(t, "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n[rate_limit]\nmax_failures = 3\n")
	p := paseetest.Start(t, paseetest.SQLite, "trusted_proxies = [\"127.0.0.1\"]\n[rate_limit]\nmax_failures = 5\n"+paseetest.KiseeProvider("kisee", k.URL))
	from := func(addr string) []string { return []string{"X-Forwarded-For", addr} }
	u := p.URL + "/tokens/?idp=kisee"
	wrong := `{"login":"alice","password":"wrong"}`
	right := `{"login":"alice","password":"` + alicePassword + `"}`
	for range 3 {
		Do(t, "POST", u, wrong, from("203.0.113.1")...).WantProblem(t, 403, "Can not authenticate on kisee")
	}
	// Kisee locked (alice, 203.0.113.1): Pasee passes its 429 on.
	r := Do(t, "POST", u, right, from("203.0.113.1")...).WantProblem(t, 429, "Too many attempts")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	// Another address is not locked, at Kisee nor at Pasee.
	Do(t, "POST", u, right, from("198.51.100.7")...).WantStatus(t, 201)

	// Pasee's own counter locks at its threshold even if Kisee would not.
	k2 := kiseetest.Start(t, "")
	p2 := paseetest.Start(t, paseetest.SQLite, "trusted_proxies = [\"127.0.0.1\"]\n[rate_limit]\nmax_failures = 2\n"+paseetest.KiseeProvider("kisee", k2.URL))
	for range 2 {
		Do(t, "POST", p2.URL+"/tokens/?idp=kisee", wrong, from("203.0.113.9")...).WantProblem(t, 403, "Can not authenticate on kisee")
	}
	Do(t, "POST", p2.URL+"/tokens/?idp=kisee", right, from("203.0.113.9")...).WantProblem(t, 429, "Too many attempts")
	Do(t, "POST", p2.URL+"/tokens/?idp=kisee", right, from("203.0.113.10")...).WantStatus(t, 201)
}
