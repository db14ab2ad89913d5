package static_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/kisee/backend/backendtest"
	"github.com/kisee-pasee/suite/internal/kisee/backend/static"
	"github.com/kisee-pasee/suite/internal/password"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) kisee.Backend {
		var o static.Options
		for _, u := range backendtest.Users {
			o.Users = append(o.Users, static.User{Username: u.Username, Password: u.Password, Email: u.Email})
		}
		b, err := static.New(context.Background(), password.NewHasher(backendtest.FastParams, 0), o)
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func TestClaimsFromSettings(t *testing.T) {
	b, err := static.New(context.Background(), password.NewHasher(backendtest.FastParams, 0), static.Options{Users: []static.User{
		{Username: "alice", Password: "correct horse", Claims: map[string]any{"department": "research"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	u, err := b.Identify(context.Background(), "alice", "correct horse")
	if err != nil || u.Claims["department"] != "research" {
		t.Fatalf("%+v %v", u, err)
	}
}

func TestInvalidUsersRefused(t *testing.T) {
	h := password.NewHasher(backendtest.FastParams, 0)
	for name, users := range map[string][]static.User{
		"no password": {{Username: "alice"}},
		"duplicate":   {{Username: "alice", Password: "x"}, {Username: "Alice", Password: "y"}},
	} {
		_, err := static.New(context.Background(), h, static.Options{Users: users})
		if err == nil || !strings.Contains(err.Error(), "users[") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
