package pasee

import "testing"

// Pasee cannot know how loosely a provider matches logins (an LDAP-backed
// Kisee ignores case and spaces), so its brute-force counters fold them.
func TestLimiterAccountFoldsCaseAndSpaces(t *testing.T) {
	want := limiterAccount("kisee", "alice")
	for _, login := range []string{"Alice", "ALICE", " alice", "alice ", "\talice\n"} {
		if got := limiterAccount("kisee", login); got != want {
			t.Errorf("limiterAccount(%q) = %q, want %q", login, got, want)
		}
	}
	if limiterAccount("kisee", "alice") == limiterAccount("corp", "alice") {
		t.Error("providers share counters")
	}
	if limiterAccount("kisee", "john smith") != limiterAccount("kisee", "John  Smith") {
		t.Error("inner spaces not collapsed")
	}
}
