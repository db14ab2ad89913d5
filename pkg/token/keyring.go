package token

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyRing is a service's keys over a rotation: the key it signs with, keys
// published ahead of use (Next), and keys it signed with before (Previous).
// All of them are published in its JWK Set and accepted by its verifiers.
type KeyRing struct {
	Current  *PrivateKey
	Next     []*PublicKey
	Previous []*PublicKey
}

// Published returns the public keys of the ring: current first.
func (r KeyRing) Published() []*PublicKey {
	keys := make([]*PublicKey, 0, 1+len(r.Next)+len(r.Previous))
	keys = append(keys, r.Current.Public())
	keys = append(keys, r.Next...)
	return append(keys, r.Previous...)
}

// KeySet returns the ring's published keys as a KeySet.
func (r KeyRing) KeySet() *StaticKeySet { return NewStaticKeySet(r.Published()...) }

// JWKS returns the JWK Set document of the ring.
func (r KeyRing) JWKS() ([]byte, error) { return MarshalJWKS(r.Published()...) }

// LoadOrCreateKeyFile reads the PEM private key at path, or, when no file
// exists there, generates an ES256 key and writes it with mode 0600. This is
// how a service started without settings keeps its key across restarts.
func LoadOrCreateKeyFile(path string) (key *PrivateKey, created bool, err error) {
	data, err := os.ReadFile(path)
	if err == nil {
		key, err := ParsePrivateKeyPEM(data)
		if err != nil {
			return nil, false, fmt.Errorf("key file %s: %w", path, err)
		}
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("read key file: %w", err)
	}
	key, err = GenerateKey(ES256)
	if err != nil {
		return nil, false, err
	}
	pemBytes, err := key.MarshalPEM()
	if err != nil {
		return nil, false, err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, false, fmt.Errorf("create key directory: %w", err)
		}
	}
	// Write a temporary file, then link it into place: the link fails if
	// another process created the key first, and nobody reads a half file.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*")
	if err != nil {
		return nil, false, fmt.Errorf("create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("create key file: %w", err)
	}
	if _, err := tmp.Write(pemBytes); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("write key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, false, fmt.Errorf("write key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) { // another process won the race: use its key
			return LoadOrCreateKeyFile(path)
		}
		return nil, false, fmt.Errorf("create key file: %w", err)
	}
	return key, true, nil
}
