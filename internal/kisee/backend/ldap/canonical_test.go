package ldap_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/ratelimit"
	"github.com/kisee-pasee/suite/pkg/token"
)

// The directory matches uid without case or surrounding spaces, so the
// brute-force counters must too: 20 wrong passwords spread over "Alice",
// "ALICE", " alice" and "alice " from one address lock alice out from it.
func TestLimiterCountsTheDirectorysAccount(t *testing.T) {
	t.Parallel()
	s := startSlapd(t)
	b, _ := open(t, s.options())
	ctx := context.Background()
	if _, err := b.Identify(ctx, " ALICE ", alice.Password); err != nil {
		t.Fatalf("the directory does not match \" ALICE \" to alice (%v): the premise of this test is wrong", err)
	}
	key, err := token.GenerateKey(token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	svc := kisee.NewService(kisee.Config{Backend: b, Keys: token.KeyRing{Current: key}, Limiter: ratelimit.New(ratelimit.NewMemoryStore(0), ratelimit.Policy{DelayAfter: -1})})
	variants := []string{"Alice", "ALICE", " alice", "alice ", "aLiCe"}
	for i := range ratelimit.DefaultMaxFailures {
		if _, err := svc.Identify(ctx, variants[i%len(variants)], "wrong guess", "192.0.2.7"); !errors.Is(err, kisee.ErrInvalidCredentials) {
			t.Fatalf("attempt %d: %v, want ErrInvalidCredentials", i+1, err)
		}
	}
	var locked *kisee.LockedError
	if _, err := svc.Identify(ctx, "alice", alice.Password, "192.0.2.7"); !errors.As(err, &locked) {
		t.Errorf("alice after 20 failures under other spellings: %v, want locked out", err)
	}
	if _, err := svc.Identify(ctx, "alice", alice.Password, "192.0.2.8"); err != nil {
		t.Errorf("alice from another address: %v", err)
	}
}
