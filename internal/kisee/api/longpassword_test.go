package api_test

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
)

// hashCount is how many passwords Kisee has hashed or verified
// (kisee_password_hash_seconds_count).
func hashCount(t *testing.T, k *kiseetest.Server) string {
	t.Helper()
	m := Do(t, "GET", k.URL+"/metrics", nil)
	sc := bufio.NewScanner(bytes.NewReader(m.Body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "kisee_password_hash_seconds_count "); ok {
			return v
		}
	}
	t.Fatalf("no kisee_password_hash_seconds_count in /metrics:\n%s", m.Body)
	return ""
}

// Passwords longer than 1 KiB are refused before any hashing at every
// entry point that checks or sets one: login (known and unknown user),
// Basic auth, password change, registration.
func TestLongPasswordsAreNeverHashed(t *testing.T) {
	k := kiseetest.StartSQL(t, "[registration]\nenabled = true\n")
	long := strings.Repeat("correct horse battery ", 2800) // 61,600 bytes
	mid := long[:20_000]                                   // base64 of it fits the 32 KiB header limit
	before := hashCount(t, k)
	Do(t, "POST", k.URL+"/jwt/", map[string]string{"username": "alice", "password": long}).WantProblem(t, 403, "Failed identification")
	Do(t, "POST", k.URL+"/jwt/", map[string]string{"username": "mallory", "password": long}).WantProblem(t, 403, "Failed identification")
	Do(t, "GET", k.URL+"/jwt/x", nil, basic("alice", mid)...).WantProblem(t, 401, "Failed identification")
	Do(t, "PATCH", k.URL+"/users/alice/", `[{"op":"replace","path":"/password","value":"a new long enough password"}]`,
		append(basic("alice", mid), "Content-Type", "application/json-patch+json")...).WantProblem(t, 401, "Failed identification")
	Do(t, "POST", k.URL+"/users/", map[string]string{"username": "carol", "email": "carol@example.com", "password": long}).WantStatus(t, 400)
	if after := hashCount(t, k); after != before {
		t.Errorf("long passwords were hashed: kisee_password_hash_seconds_count went from %s to %s", before, after)
	}
	// A right password still costs one verification (the metric moves).
	Do(t, "POST", k.URL+"/jwt/", map[string]string{"username": "alice", "password": alicePassword}).WantStatus(t, 201)
	if after := hashCount(t, k); after == before {
		t.Error("kisee_password_hash_seconds_count did not move for a real login: the test cannot see hashing")
	}
}
