// Package demo is the "demo" backend: users in memory, starting with a
// superuser "root" whose random password is shown once at start. It has
// every capability, and forgets everything when the process ends.
package demo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/password"
)

type entry struct {
	user kisee.User
	hash string
}

// Backend keeps users in memory. It implements kisee.Backend, Registerer,
// UserFinder and PasswordSetter.
type Backend struct {
	hasher *password.Hasher
	mu     sync.RWMutex
	users  map[string]*entry // by username
}

var (
	_ kisee.Backend        = (*Backend)(nil)
	_ kisee.Registerer     = (*Backend)(nil)
	_ kisee.UserFinder     = (*Backend)(nil)
	_ kisee.PasswordSetter = (*Backend)(nil)
)

// NewEmpty returns a backend without users.
func NewEmpty(hasher *password.Hasher) *Backend {
	return &Backend{hasher: hasher, users: map[string]*entry{}}
}

// New returns a backend holding root, and root's random password.
func New(ctx context.Context, hasher *password.Hasher) (*Backend, string, error) {
	b := NewEmpty(hasher)
	pw := rand.Text()
	if _, err := b.Add(ctx, kisee.User{ID: "root", Username: "root", IsSuperuser: true}, pw); err != nil {
		return nil, "", err
	}
	return b, pw, nil
}

// Add stores u with password pw.
func (b *Backend) Add(ctx context.Context, u kisee.User, pw string) (kisee.User, error) {
	if u.ID == "" {
		u.ID = u.Username
	}
	hash, err := b.hasher.Hash(ctx, pw)
	if err != nil {
		return kisee.User{}, fmt.Errorf("add user: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.users {
		if strings.EqualFold(e.user.Username, u.Username) || (u.Email != "" && strings.EqualFold(e.user.Email, u.Email)) {
			return kisee.User{}, kisee.ErrUserExists
		}
	}
	b.users[u.Username] = &entry{user: u, hash: hash}
	return u, nil
}

// Identify implements kisee.Backend.
func (b *Backend) Identify(ctx context.Context, username, pw string) (kisee.User, error) {
	b.mu.RLock()
	e, ok := b.users[username]
	var hash string
	var u kisee.User
	if ok {
		hash, u = e.hash, e.user
	}
	b.mu.RUnlock()
	if !ok {
		b.hasher.Dummy(ctx, pw)
		return kisee.User{}, kisee.ErrInvalidCredentials
	}
	if _, err := b.hasher.Verify(ctx, hash, pw); err != nil {
		if errors.Is(err, password.ErrMismatch) {
			return kisee.User{}, kisee.ErrInvalidCredentials
		}
		return kisee.User{}, fmt.Errorf("identify: %w", err)
	}
	return u, nil
}

// Register implements kisee.Registerer.
func (b *Backend) Register(ctx context.Context, nu kisee.NewUser) (kisee.User, error) {
	return b.Add(ctx, kisee.User{ID: nu.Username, Username: nu.Username, Email: nu.Email}, nu.Password)
}

// FindByUsername implements kisee.UserFinder.
func (b *Backend) FindByUsername(_ context.Context, username string) (kisee.User, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if e, ok := b.users[username]; ok {
		return e.user, nil
	}
	return kisee.User{}, kisee.ErrUserNotFound
}

// FindByEmail implements kisee.UserFinder.
func (b *Backend) FindByEmail(_ context.Context, email string) (kisee.User, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, e := range b.users {
		if e.user.Email != "" && strings.EqualFold(e.user.Email, email) {
			return e.user, nil
		}
	}
	return kisee.User{}, kisee.ErrUserNotFound
}

// SetPassword implements kisee.PasswordSetter.
func (b *Backend) SetPassword(ctx context.Context, username, pw string) error {
	hash, err := b.hasher.Hash(ctx, pw)
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.users[username]
	if !ok {
		return kisee.ErrUserNotFound
	}
	e.hash = hash
	return nil
}
