package openid_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee/app"
	"github.com/kisee-pasee/suite/internal/pasee/openid"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
)

func openStorage(t *testing.T, store paseetest.Store) *openid.Storage {
	t.Helper()
	ctx := context.Background()
	u := store.URL(t)
	st, err := app.OpenStore(ctx, u, true, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := openid.OpenStorage(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Codes work once and for their 60 s; requests are taken once; a replayed
// code tells the session it opened; on both stores.
func TestStorage(t *testing.T) {
	forEachStore(t, func(t *testing.T, store paseetest.Store) {
		s := openStorage(t, store)
		ctx := context.Background()
		now := time.Now()
		code := openid.Code{Hash: "h1", ClientID: "app", RedirectURI: "http://app.test/cb", Scope: "openid", SSO: "sso1", IDP: "kisee", Subject: "alice",
			Claims: map[string]any{"email": "alice@example.com"}, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(openid.DefaultCodeTTL)}
		if err := s.SaveCode(ctx, code); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SpendCode(ctx, "h1", now.Add(openid.DefaultCodeTTL+time.Millisecond)); !errors.Is(err, openid.ErrExpired) {
			t.Fatalf("an expired code: %v", err)
		}
		got, err := s.SpendCode(ctx, "h1", now.Add(time.Second))
		if err != nil || got.Claims["email"] != "alice@example.com" || got.ClientID != "app" {
			t.Fatalf("spend: %+v %v", got, err)
		}
		if err := s.CodeOpened(ctx, got, "session-1"); err != nil {
			t.Fatal(err)
		}
		replay, err := s.SpendCode(ctx, "h1", now.Add(2*time.Second))
		if !errors.Is(err, openid.ErrUsed) || replay.SessionID != "session-1" {
			t.Fatalf("replay: %+v %v", replay, err)
		}
		if _, err := s.SpendCode(ctx, "unknown", now); !errors.Is(err, openid.ErrNotFound) {
			t.Fatalf("unknown code: %v", err)
		}
		req := openid.Request{ID: "r1", CSRF: "c", ClientID: "app", RedirectURI: "http://app.test/cb", Scope: "openid", MaxAge: -1, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
		if err := s.SaveRequest(ctx, req); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetRequest(ctx, "r1", now.Add(2*time.Minute)); !errors.Is(err, openid.ErrExpired) {
			t.Fatalf("expired request: %v", err)
		}
		if _, err := s.TakeRequest(ctx, "r1", now); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TakeRequest(ctx, "r1", now); !errors.Is(err, openid.ErrUsed) {
			t.Fatalf("request taken twice: %v", err)
		}
		sso := openid.SSO{Hash: "s1", User: "kisee-alice", IDP: "kisee", Subject: "alice", SessionID: "own", AuthTime: now, ExpiresAt: now.Add(time.Hour)}
		if err := s.SaveSSO(ctx, sso); err != nil {
			t.Fatal(err)
		}
		if err := s.CodeOpened(ctx, openid.Code{Hash: "none", SSO: "s1"}, "child"); err != nil {
			t.Fatal(err)
		}
		ids, err := s.EndSSO(ctx, "s1", now)
		if err != nil || len(ids) != 2 || ids[0] != "own" || ids[1] != "child" {
			t.Fatalf("end: %v %v", ids, err)
		}
		if _, err := s.GetSSO(ctx, "s1", now); !errors.Is(err, openid.ErrNotFound) {
			t.Fatalf("an ended SSO session lives: %v", err)
		}
	})
}
