// Package static is the "test" backend: a fixed list of users given in the
// settings, for tests and demos. Users cannot register or change their
// password; their passwords are hashed in memory at start, never kept in
// clear.
package static

import (
	"context"
	"fmt"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/kisee/backend/demo"
	"github.com/kisee-pasee/suite/internal/password"
)

// User is one [[identity_backend.options.users]] entry.
type User struct {
	Username string         `toml:"username"`
	Password string         `toml:"password"`
	Email    string         `toml:"email"`
	Claims   map[string]any `toml:"claims"`
}

// Options are the [identity_backend.options] of the test backend.
type Options struct {
	Users []User `toml:"users"`
}

// Backend is read-only: it implements kisee.Backend and kisee.UserFinder.
type Backend struct {
	users *demo.Backend
}

var (
	_ kisee.Backend    = (*Backend)(nil)
	_ kisee.UserFinder = (*Backend)(nil)
)

// New hashes the users' passwords and returns the backend.
func New(ctx context.Context, hasher *password.Hasher, o Options) (*Backend, error) {
	b := demo.NewEmpty(hasher)
	for i, u := range o.Users {
		if u.Username == "" || u.Password == "" {
			return nil, fmt.Errorf("users[%d]: username and password are required", i)
		}
		if _, err := b.Add(ctx, kisee.User{ID: u.Username, Username: u.Username, Email: u.Email, Claims: u.Claims}, u.Password); err != nil {
			return nil, fmt.Errorf("users[%d] (%s): %w", i, u.Username, err)
		}
	}
	return &Backend{users: b}, nil
}

// Identify implements kisee.Backend.
func (b *Backend) Identify(ctx context.Context, username, password string) (kisee.User, error) {
	return b.users.Identify(ctx, username, password)
}

// FindByUsername implements kisee.UserFinder.
func (b *Backend) FindByUsername(ctx context.Context, username string) (kisee.User, error) {
	return b.users.FindByUsername(ctx, username)
}

// FindByEmail implements kisee.UserFinder.
func (b *Backend) FindByEmail(ctx context.Context, email string) (kisee.User, error) {
	return b.users.FindByEmail(ctx, email)
}
