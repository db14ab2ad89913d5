package demo_test

import (
	"context"
	"testing"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/kisee/backend/backendtest"
	"github.com/kisee-pasee/suite/internal/kisee/backend/demo"
	"github.com/kisee-pasee/suite/internal/password"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) kisee.Backend {
		b := demo.NewEmpty(password.NewHasher(backendtest.FastParams, 0))
		for _, u := range backendtest.Users {
			if _, err := b.Add(context.Background(), kisee.User{Username: u.Username, Email: u.Email}, u.Password); err != nil {
				t.Fatal(err)
			}
		}
		return b
	})
}

func TestRootWithRandomPassword(t *testing.T) {
	h := password.NewHasher(backendtest.FastParams, 0)
	b1, pw1, err := demo.New(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	_, pw2, _ := demo.New(context.Background(), h)
	if len(pw1) < 20 || pw1 == pw2 {
		t.Fatalf("root passwords %q and %q are not random enough", pw1, pw2)
	}
	u, err := b1.Identify(context.Background(), "root", pw1)
	if err != nil || !u.IsSuperuser {
		t.Fatalf("root: %+v, %v", u, err)
	}
}
