package settings

import (
	"fmt"

	"github.com/kisee-pasee/suite/pkg/token"
)

// Keys are the signing-key settings both services share ([jwt] table).
type Keys struct {
	PrivateKey         string   `toml:"private_key"`
	PrivateKeyFile     string   `toml:"private_key_file"`
	PublicKey          string   `toml:"public_key"`
	PublicKeyFile      string   `toml:"public_key_file"`
	PreviousPublicKeys []string `toml:"previous_public_keys"`
	NextPublicKeys     []string `toml:"next_public_keys"`
}

// KeyRing loads k, found at prefix ("jwt"), into a token.KeyRing. A
// settings file must give the private key (private_key_file has already
// been read into private_key by Decode); with no settings file at all, a
// key is generated once into defaultFile and reused (generated reports it).
func (s *Source) KeyRing(prefix string, k Keys, defaultFile, command string) (ring token.KeyRing, generated bool, err error) {
	key := func(name string) string { return join(prefix, name) }
	switch {
	case k.PrivateKey != "" && k.PrivateKeyFile != "":
		// Read from private_key_file by Decode: the error is that key's.
		if ring.Current, err = token.ParsePrivateKeyPEM([]byte(k.PrivateKey)); err != nil {
			return ring, false, s.Errorf(key("private_key_file"), "%s: %v", k.PrivateKeyFile, err)
		}
	case k.PrivateKey != "":
		if ring.Current, err = token.ParsePrivateKeyPEM([]byte(k.PrivateKey)); err != nil {
			return ring, false, s.Errorf(key("private_key"), "%v", err)
		}
	case s.File != DefaultsName:
		return ring, false, s.Errorf(key("private_key"), "missing signing key: set private_key (PEM) or private_key_file; `%s keygen` prints a fresh key", command)
	default:
		if ring.Current, generated, err = token.LoadOrCreateKeyFile(defaultFile); err != nil {
			return ring, false, s.Errorf(key("private_key_file"), "%v", err)
		}
	}
	if k.PublicKey != "" {
		pubKey := key("public_key")
		if k.PublicKeyFile != "" {
			pubKey = key("public_key_file")
		}
		pub, err := token.ParsePublicKeyPEM([]byte(k.PublicKey))
		if err != nil {
			return ring, false, s.Errorf(pubKey, "%v", err)
		}
		if !pub.Equal(ring.Current.Public()) {
			return ring, false, s.Errorf(pubKey, "does not match the private key (it may be left out: it is derived from the private key)")
		}
	}
	for i, p := range k.PreviousPublicKeys {
		pk, err := token.ParsePublicKeyPEM([]byte(p))
		if err != nil {
			return ring, false, s.Errorf(fmt.Sprintf("%s[%d]", key("previous_public_keys"), i), "%v", err)
		}
		ring.Previous = append(ring.Previous, pk)
	}
	for i, p := range k.NextPublicKeys {
		pk, err := token.ParsePublicKeyPEM([]byte(p))
		if err != nil {
			return ring, false, s.Errorf(fmt.Sprintf("%s[%d]", key("next_public_keys"), i), "%v", err)
		}
		ring.Next = append(ring.Next, pk)
	}
	return ring, generated, nil
}

// Log is the [log] table both services share.
type Log struct {
	Format string `toml:"format"` // "text" (default) or "json"
	Level  string `toml:"level"`  // "debug", "info" (default), "warn", "error"
}

// Check validates l, found at key.
func (s *Source) CheckLog(key string, l Log) error {
	switch l.Format {
	case "", "text", "json":
	default:
		return s.Errorf(join(key, "format"), "must be \"text\" or \"json\", not %q", l.Format)
	}
	switch l.Level {
	case "", "debug", "info", "warn", "error":
	default:
		return s.Errorf(join(key, "level"), "must be debug, info, warn or error, not %q", l.Level)
	}
	return nil
}

// RateLimit is the [rate_limit] table both services share.
type RateLimit struct {
	MaxFailures int      `toml:"max_failures"`
	Window      Duration `toml:"window"`
	Store       string   `toml:"store"` // "memory" (default), "redis://...", or "sql"
}
