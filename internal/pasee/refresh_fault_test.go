package pasee_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/store"
	"github.com/kisee-pasee/suite/pkg/token"
)

// flakyStore is a real store whose reads of users and groups, and
// rotations with their groups, fail while down is set, as when the
// database goes away in the middle of a request.
type flakyStore struct {
	pasee.Store
	down atomic.Bool
}

func (f *flakyStore) RotateAndReadGroups(ctx context.Context, id, presentedJTI string, next pasee.NextTokens, now time.Time, grace time.Duration) (pasee.RotateOutcome, pasee.Session, []string, error) {
	if f.down.Load() {
		return 0, pasee.Session{}, nil, fmt.Errorf("%w: rotate session: connection refused", pasee.ErrUnavailable)
	}
	return f.Store.RotateAndReadGroups(ctx, id, presentedJTI, next, now, grace)
}

func (f *flakyStore) GetUser(ctx context.Context, name string) (pasee.User, error) {
	if f.down.Load() {
		return pasee.User{}, fmt.Errorf("%w: read user: connection refused", pasee.ErrUnavailable)
	}
	return f.Store.GetUser(ctx, name)
}

func (f *flakyStore) UserGroups(ctx context.Context, user string) ([]string, error) {
	if f.down.Load() {
		return nil, fmt.Errorf("%w: read groups: connection refused", pasee.ErrUnavailable)
	}
	return f.Store.UserGroups(ctx, user)
}

type namedProvider string

func (p namedProvider) Name() string     { return string(p) }
func (p namedProvider) Protocol() string { return "test" }

// A refresh that fails because the database went away must leave the
// session as it was: the client is told 503 "retry shortly", and its retry
// with the same refresh token must work — not count as the reuse of a
// spent token, which revokes the session (here without a grace window,
// and after the outage a retry may come later than any grace window).
// Found by the PostgreSQL fault test's reasoning: Refresh rotated the
// session first and read the user and groups after.
func TestFailedRefreshLeavesTheSessionAsItWas(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "pasee.db"), slog.New(slog.DiscardHandler), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	key, err := token.GenerateKey(token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	flaky := &flakyStore{Store: st}
	svc := pasee.NewService(pasee.Config{Store: flaky, Providers: []pasee.Provider{namedProvider("kisee")}, Keys: token.KeyRing{Current: key},
		Issuer: "pasee.test", Logger: slog.New(slog.DiscardHandler)})
	pair, err := svc.LoginWithIdentity(ctx, "kisee", pasee.Identity{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	flaky.down.Store(true)
	if _, err := svc.Refresh(ctx, pair.RefreshToken); !errors.Is(err, pasee.ErrUnavailable) {
		t.Fatalf("refresh with the database down: %v, want ErrUnavailable", err)
	}
	flaky.down.Store(false)
	next, err := svc.Refresh(ctx, pair.RefreshToken)
	if err != nil {
		t.Fatalf("the retry of a refresh that failed: %v", err)
	}
	if _, err := svc.Refresh(ctx, next.RefreshToken); err != nil {
		t.Fatalf("the session after the retry: %v", err)
	}
	if _, err := svc.Refresh(ctx, pair.RefreshToken); !errors.Is(err, pasee.ErrReuseDetected) {
		t.Fatalf("the spent token reused: %v, want reuse detected", err)
	}
}
