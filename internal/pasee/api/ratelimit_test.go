package api_test

import (
	"fmt"
	"strings"
	"sync"
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

// TestLockoutThroughPaseeOnDefaults: Kisee and Pasee on their default
// settings (no trusted_proxies, default rate limits), clients at distinct
// loopback addresses. Kisee must count the end clients Pasee forwards, not
// Pasee: an attacker's failures, for one account or for many, lock out
// the attacker's address only. And Kisee believes no X-Forwarded-For from
// a client.
func TestLockoutThroughPaseeOnDefaults(t *testing.T) {
	k := kiseetest.Start(t, "")
	p := paseetest.Start(t, paseetest.SQLite, paseetest.KiseeProvider("kisee", k.URL))
	login := p.URL + "/tokens/?idp=kisee"
	wrong := func(name string) string { return `{"login":"` + name + `","password":"wrong guess"}` }
	right := `{"login":"alice","password":"` + alicePassword + `"}`

	// One attacker, one account: 30 wrong passwords at once from
	// 127.0.0.2. At most 20 reach Kisee's password check.
	got := ParallelFrom(t, 30, "127.0.0.2", login, func(int) string { return wrong("alice") })
	t.Logf("30 parallel wrong logins for alice through Pasee: %v", got)
	if got[403] > 20 || got[403]+got[429] != 30 {
		t.Errorf("30 parallel wrong logins: %v; want at most 20 × 403, the rest 429", got)
	}
	if s := PostFrom(t, "127.0.0.2", login, right); s != 429 {
		t.Errorf("the attacker's address with the right password: %d, want 429", s)
	}
	if s := PostFrom(t, "127.0.0.3", login, right); s != 201 {
		t.Errorf("alice from 127.0.0.3 after an attack from 127.0.0.2: %d, want 201 (Kisee counted Pasee, not the client)", s)
	}

	// One attacker, many accounts: 110 wrong logins with fresh names from
	// 127.0.0.4 pass Kisee's address threshold (100) for that address only.
	got = ParallelFrom(t, 110, "127.0.0.4", login, func(i int) string { return wrong(fmt.Sprint("nobody", i)) })
	t.Logf("110 wrong logins for fresh names through Pasee: %v", got)
	if got[429] == 0 {
		t.Errorf("110 failures for many accounts from one address: %v; want the address locked", got)
	}
	bob := `{"login":"bob","password":"` + bobPassword + `"}`
	if s := PostFrom(t, "127.0.0.5", login, bob); s != 201 {
		t.Errorf("bob from 127.0.0.5 after a stuffing attack from 127.0.0.4: %d, want 201", s)
	}
	if s := PostFrom(t, "127.0.0.3", login, right); s != 201 {
		t.Errorf("alice from 127.0.0.3 after a stuffing attack from 127.0.0.4: %d, want 201", s)
	}

	// A forged X-Forwarded-For straight to Kisee from a client is not
	// believed: the attempts count against the client's own address.
	kjwt := k.URL + "/jwt/"
	kwrong := `{"username":"carol","password":"wrong guess"}`
	var wg sync.WaitGroup
	for i := range 25 {
		wg.Go(func() {
			PostFrom(t, "127.0.0.6", kjwt, kwrong, "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
		})
	}
	wg.Wait()
	if s := PostFrom(t, "127.0.0.6", kjwt, kwrong); s != 429 {
		t.Errorf("127.0.0.6 after 25 failures under forged X-Forwarded-For: %d, want 429 (its own address is locked)", s)
	}
}

// TestKiseeWarnsOfAnUntrustedProxy: when Kisee trusts no proxy
// (trusted_proxies = []), every login Pasee forwards comes from Pasee's
// address; once that address has failed for many accounts Kisee says, in
// its log, that Pasee may need to be listed in trusted_proxies.
func TestKiseeWarnsOfAnUntrustedProxy(t *testing.T) {
	k := kiseetest.Start(t, "[server]\ntrusted_proxies = []\n")
	p := paseetest.Start(t, paseetest.SQLite, paseetest.KiseeProvider("kisee", k.URL))
	var wg sync.WaitGroup
	for c := range 4 {
		ip := fmt.Sprintf("127.0.0.%d", 10+c)
		wg.Go(func() {
			ParallelFrom(t, 30, ip, p.URL+"/tokens/?idp=kisee", func(i int) string {
				return fmt.Sprintf(`{"login":"nobody%s-%d","password":"wrong guess"}`, ip, i)
			})
		})
	}
	wg.Wait()
	if logs := k.Logs(); !strings.Contains(logs, "failed logins for many accounts") || !strings.Contains(logs, "trusted_proxies") {
		t.Errorf("no warning about trusted_proxies after 120 failures from Pasee's address; Kisee's log:\n%s", logs)
	}
}

// A password longer than 1 KiB sent to Pasee is refused as a failed login
// without reaching Kisee's password hashing.
func TestLongPasswordThroughPasee(t *testing.T) {
	k := kiseetest.Start(t, "")
	p := paseetest.Start(t, paseetest.SQLite, paseetest.KiseeProvider("kisee", k.URL))
	hashes := func() string {
		for line := range strings.Lines(string(Do(t, "GET", k.URL+"/metrics", nil).Body)) {
			if v, ok := strings.CutPrefix(line, "kisee_password_hash_seconds_count "); ok {
				return strings.TrimSpace(v)
			}
		}
		return "absent"
	}
	before := hashes()
	long := strings.Repeat("correct horse battery ", 2800)
	for _, login := range []string{"alice", "mallory"} {
		Do(t, "POST", p.URL+"/tokens/?idp=kisee", map[string]string{"login": login, "password": long}).WantProblem(t, 403, "Can not authenticate on kisee")
	}
	if after := hashes(); after != before {
		t.Errorf("Kisee hashed long passwords sent to Pasee: kisee_password_hash_seconds_count %s → %s", before, after)
	}
}
