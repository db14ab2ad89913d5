// Package backendtest is the conformance suite every Kisee backend passes,
// for the capabilities it has (Dex's storage/conformance, for backends).
package backendtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/password"
)

// User is a user every fixture must hold.
type User struct {
	Username string
	Password string
	Email    string
}

// Users are the users a fixture is seeded with.
var Users = []User{
	{Username: "alice", Password: "correct horse battery", Email: "alice@example.com"},
	{Username: "bob", Password: "Tr0ub4dor&3 ünïcode ✓", Email: "bob@example.com"},
}

// FastParams are argon2id parameters cheap enough for tests; use them for
// the hasher of backends under test.
var FastParams = password.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// Factory returns a fresh backend holding Users (and only them).
type Factory func(t *testing.T) kisee.Backend

// Run runs the suite on backends made by newBackend.
func Run(t *testing.T, newBackend Factory) {
	t.Run("Identify", func(t *testing.T) { t.Parallel(); testIdentify(t, newBackend(t)) })
	t.Run("ConcurrentIdentify", func(t *testing.T) { t.Parallel(); testConcurrentIdentify(t, newBackend(t)) })
	t.Run("Register", func(t *testing.T) {
		t.Parallel()
		b := newBackend(t)
		r, ok := b.(kisee.Registerer)
		if !ok {
			t.Skip("backend cannot register users")
		}
		testRegister(t, b, r)
	})
	t.Run("FindUser", func(t *testing.T) {
		t.Parallel()
		f, ok := newBackend(t).(kisee.UserFinder)
		if !ok {
			t.Skip("backend cannot find users")
		}
		testFind(t, f)
	})
	t.Run("SetPassword", func(t *testing.T) {
		t.Parallel()
		b := newBackend(t)
		s, ok := b.(kisee.PasswordSetter)
		if !ok {
			t.Skip("backend cannot set passwords")
		}
		testSetPassword(t, b, s)
	})
	t.Run("Health", func(t *testing.T) {
		t.Parallel()
		h, ok := newBackend(t).(kisee.HealthChecker)
		if !ok {
			t.Skip("backend has no health check")
		}
		if err := h.Health(context.Background()); err != nil {
			t.Fatalf("healthy backend reports %v", err)
		}
	})
}

func testIdentify(t *testing.T, b kisee.Backend) {
	ctx := context.Background()
	for _, u := range Users {
		got, err := b.Identify(ctx, u.Username, u.Password)
		if err != nil {
			t.Fatalf("%s with the right password: %v", u.Username, err)
		}
		if got.Username != u.Username || got.ID == "" {
			t.Fatalf("%s identified as %+v", u.Username, got)
		}
		if got.Email != "" && !strings.EqualFold(got.Email, u.Email) {
			t.Fatalf("%s: email %q, want %q", u.Username, got.Email, u.Email)
		}
	}
	cases := []struct{ name, username, password string }{
		{"wrong password", "alice", "correct horse batterY"},
		{"other user's password", "alice", Users[1].Password},
		{"empty password", "alice", ""},
		{"unknown user", "mallory", "correct horse battery"},
		{"empty username", "", "correct horse battery"},
		{"SQL in username", "alice' OR '1'='1", "x"},
		{"SQL in password", "alice", "' OR '1'='1"},
		{"LDAP filter in username", "*)(uid=*", "x"},
		{"NUL byte", "alice\x00", "correct horse battery"},
		{"password with trailing space", "alice", "correct horse battery "},
		// Longer than kisee.MaxPasswordBytes: refused before any hashing
		// or bind, for a known and an unknown user.
		{"60 KB password", "alice", strings.Repeat("correct horse battery ", 2800)},
		{"60 KB password, unknown user", "mallory", strings.Repeat("x", 60_000)},
	}
	for _, tc := range cases {
		_, err := b.Identify(ctx, tc.username, tc.password)
		if !errors.Is(err, kisee.ErrInvalidCredentials) {
			t.Errorf("%s: err = %v, want ErrInvalidCredentials", tc.name, err)
		}
	}
}

func testConcurrentIdentify(t *testing.T, b kisee.Backend) {
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := Users[i%len(Users)]
			pw := u.Password
			if i%3 == 0 {
				pw += "x"
			}
			_, err := b.Identify(context.Background(), u.Username, pw)
			if (i%3 == 0) != errors.Is(err, kisee.ErrInvalidCredentials) {
				errs <- fmt.Errorf("attempt %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testRegister(t *testing.T, b kisee.Backend, r kisee.Registerer) {
	ctx := context.Background()
	u, err := r.Register(ctx, kisee.NewUser{Username: "carol", Email: "carol@example.com", Password: "a long enough password"})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if u.Username != "carol" {
		t.Fatalf("registered %+v", u)
	}
	if _, err := b.Identify(ctx, "carol", "a long enough password"); err != nil {
		t.Fatalf("registered user cannot log in: %v", err)
	}
	for name, nu := range map[string]kisee.NewUser{
		"same username":            {Username: "carol", Email: "other@example.com", Password: "another password"},
		"same username, uppercase": {Username: "Carol", Email: "other2@example.com", Password: "another password"},
		"same email":               {Username: "carol2", Email: "carol@example.com", Password: "another password"},
		"same email, uppercase":    {Username: "carol3", Email: "CAROL@example.com", Password: "another password"},
		"existing seeded user":     {Username: "alice", Email: "new@example.com", Password: "another password"},
	} {
		if _, err := r.Register(ctx, nu); !errors.Is(err, kisee.ErrUserExists) {
			t.Errorf("%s: err = %v, want ErrUserExists", name, err)
		}
	}
	if _, err := b.Identify(ctx, "carol", "another password"); !errors.Is(err, kisee.ErrInvalidCredentials) {
		t.Fatalf("a refused registration changed carol's password: %v", err)
	}
}

func testFind(t *testing.T, f kisee.UserFinder) {
	ctx := context.Background()
	for _, u := range Users {
		got, err := f.FindByUsername(ctx, u.Username)
		if err != nil || got.Username != u.Username {
			t.Fatalf("find %s: %+v, %v", u.Username, got, err)
		}
		got, err = f.FindByEmail(ctx, strings.ToUpper(u.Email))
		if err != nil || got.Username != u.Username {
			t.Fatalf("find by email %s: %+v, %v", u.Email, got, err)
		}
	}
	if _, err := f.FindByUsername(ctx, "mallory"); !errors.Is(err, kisee.ErrUserNotFound) {
		t.Fatalf("unknown username: %v", err)
	}
	if _, err := f.FindByEmail(ctx, "mallory@example.com"); !errors.Is(err, kisee.ErrUserNotFound) {
		t.Fatalf("unknown email: %v", err)
	}
	if _, err := f.FindByEmail(ctx, ""); !errors.Is(err, kisee.ErrUserNotFound) {
		t.Fatalf("empty email: %v", err)
	}
}

func testSetPassword(t *testing.T, b kisee.Backend, s kisee.PasswordSetter) {
	ctx := context.Background()
	if err := s.SetPassword(ctx, "bob", "a brand new password"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Identify(ctx, "bob", Users[1].Password); !errors.Is(err, kisee.ErrInvalidCredentials) {
		t.Fatalf("old password still works: %v", err)
	}
	if _, err := b.Identify(ctx, "bob", "a brand new password"); err != nil {
		t.Fatalf("new password refused: %v", err)
	}
	if _, err := b.Identify(ctx, "alice", Users[0].Password); err != nil {
		t.Fatalf("another user's password changed: %v", err)
	}
	if err := s.SetPassword(ctx, "mallory", "whatever password"); !errors.Is(err, kisee.ErrUserNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
}
