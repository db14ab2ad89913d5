package api_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
)

// Brute-force protection on POST /jwt/ and on Basic auth: 429 with
// Retry-After once an account fails max_failures times from an address,
// while the same account still logs in from an address that did not fail.
func TestBruteForceLockout(t *testing.T) {
	k := kiseetest.Start(t, "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n[rate_limit]\nmax_failures = 4\nwindow = \"10m\"\n")
	from := func(addr string) []string { return []string{"X-Forwarded-For", addr} }
	wrong := `{"username":"alice","password":"wrong"}`
	right := `{"username":"alice","password":"` + alicePassword + `"}`
	for range 4 {
		Do(t, "POST", k.URL+"/jwt/", wrong, from("203.0.113.1")...).WantProblem(t, 403, "Failed identification")
	}
	for _, body := range []string{wrong, right} {
		r := Do(t, "POST", k.URL+"/jwt/", body, from("203.0.113.1")...).WantProblem(t, 429, "Too many attempts")
		secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if err != nil || secs < 1 || secs > 600 {
			t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
		}
	}
	// The attacker's failures do not lock alice out from elsewhere.
	Do(t, "POST", k.URL+"/jwt/", right, from("198.51.100.7")...).WantStatus(t, 201)
	// Nor other accounts from the attacker's address (below the address threshold).
	Do(t, "POST", k.URL+"/jwt/", `{"username":"bob","password":"`+bobPassword+`"}`, from("203.0.113.1")...).WantStatus(t, 201)

	// Basic auth is a credential entry point too.
	for range 4 {
		Do(t, "GET", k.URL+"/jwt/x", nil, append(basic("bob", "wrong"), from("203.0.113.2")...)...).WantProblem(t, 401, "Failed identification")
	}
	Do(t, "GET", k.URL+"/jwt/x", nil, append(basic("bob", bobPassword), from("203.0.113.2")...)...).WantProblem(t, 429, "Too many attempts")

	m := Do(t, "GET", k.URL+"/metrics", nil)
	if !strings.Contains(string(m.Body), `kisee_logins_total{result="locked"} 3`) {
		t.Errorf("locked logins not counted:\n%s", m.Body)
	}
}

// TestParallelBurstAtKisee: 200 wrong passwords sent at once for one
// account from one address, on default settings: at most max_failures (20)
// of them reach the password check, the right password from that address
// is locked out next, and the account still logs in from another address.
func TestParallelBurstAtKisee(t *testing.T) {
	k := kiseetest.Start(t, "")
	got := ParallelFrom(t, 200, "127.0.0.2", k.URL+"/jwt/", func(int) string {
		return `{"username":"alice","password":"wrong guess"}`
	})
	t.Logf("200 wrong passwords at once: %v (verified: %d of 200)", got, got[403])
	if got[403] > 20 || got[403]+got[429] != 200 {
		t.Errorf("200 parallel attempts: %v; want at most 20 verified (403), the rest 429", got)
	}
	right := `{"username":"alice","password":"` + alicePassword + `"}`
	if s := PostFrom(t, "127.0.0.2", k.URL+"/jwt/", right); s != 429 {
		t.Errorf("the right password from the attacker's address after the burst: %d, want 429", s)
	}
	if s := PostFrom(t, "127.0.0.3", k.URL+"/jwt/", right); s != 201 {
		t.Errorf("alice from another address: %d, want 201", s)
	}
}

// Registrations are limited per client address (10 an hour), before any
// password is hashed; other addresses are not affected, and Pasee
// forwards its clients' addresses so that Kisee counts them, not Pasee.
func TestRegistrationIsRateLimited(t *testing.T) {
	k := kiseetest.StartSQL(t, "[registration]\nenabled = true\n")
	p := paseetest.Start(t, paseetest.SQLite, paseetest.KiseeProvider("kisee", k.URL))
	body := func(ip string, i int) string {
		return fmt.Sprintf(`{"username":"user%s-%d","email":"user%d-%s@example.com","password":"a long enough password"}`, strings.ReplaceAll(ip, ".", ""), i, i, ip)
	}
	for _, c := range []struct{ via, attacker, other string }{
		{k.URL, "127.0.0.2", "127.0.0.3"},
		{p.URL, "127.0.0.4", "127.0.0.5"},
	} {
		for i := range 10 {
			if s := PostFrom(t, c.attacker, c.via+"/users/", body(c.attacker, i)); s != 201 {
				t.Fatalf("registration %d from %s via %s: %d, want 201", i+1, c.attacker, c.via, s)
			}
		}
		if s := PostFrom(t, c.attacker, c.via+"/users/", body(c.attacker, 10)); s != 429 {
			t.Errorf("11th registration from %s via %s: %d, want 429", c.attacker, c.via, s)
		}
		if s := PostFrom(t, c.other, c.via+"/users/", body(c.other, 0)); s != 201 {
			t.Errorf("registration from %s via %s after another address's 10: %d, want 201", c.other, c.via, s)
		}
	}
}
