// Package password hashes passwords with argon2id and verifies the formats
// users bring from elsewhere: argon2id, bcrypt, PBKDF2-SHA256 (Django) and
// SHA-256/SHA-512-crypt. Hashing is memory- and CPU-hungry, so a Hasher caps
// how many run at once: memory stays bounded under load, and requests
// queue for a slot instead of thrashing.
package password

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/GehirnInc/crypt"
	"github.com/GehirnInc/crypt/sha256_crypt"
	"github.com/GehirnInc/crypt/sha512_crypt"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Params are argon2id parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // iterations
	Threads uint8
	SaltLen int
	KeyLen  uint32
}

// OWASP is the OWASP Password Storage Cheat Sheet's first argon2id
// configuration: 19 MiB, 2 iterations, 1 degree of parallelism.
var OWASP = Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// ErrMismatch is returned when a password does not match its hash.
var ErrMismatch = errors.New("password does not match")

// ErrUnknownFormat is returned for a stored hash of no supported format.
var ErrUnknownFormat = errors.New("unsupported password hash format")

// Hasher hashes and verifies passwords, at most Concurrency at a time.
type Hasher struct {
	params Params
	slots  chan struct{}
	// dummy is a hash of the current parameters, made at the first
	// Dummy call rather than at start (it costs a full hash).
	dummyOnce sync.Once
	dummy     string
	// Observe, when set, receives the duration of each hash computation.
	Observe func(time.Duration)

	idle    time.Duration
	release func()
	mu      sync.Mutex
	timer   *time.Timer
}

// ReleaseMemoryWhenIdle makes the hasher hand the memory of its hashes back
// to the operating system (release, normally debug.FreeOSMemory) once no
// hash has run for d. Each argon2id hash takes Params.Memory KiB (19 MiB
// with OWASP's parameters), which the Go runtime otherwise keeps for
// minutes: a login server idles at a fraction of its peak this way.
func (h *Hasher) ReleaseMemoryWhenIdle(d time.Duration, release func()) {
	h.mu.Lock()
	h.idle, h.release = d, release
	h.mu.Unlock()
}

// hashed restarts the idle countdown after a hash.
func (h *Hasher) hashed() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.idle <= 0 || h.release == nil {
		return
	}
	if h.timer == nil {
		h.timer = time.AfterFunc(h.idle, h.release)
		return
	}
	h.timer.Reset(h.idle)
}

// NewHasher returns a hasher with params, running at most concurrency
// hashes at once (0: one per CPU).
func NewHasher(params Params, concurrency int) *Hasher {
	if concurrency <= 0 {
		concurrency = runtime.GOMAXPROCS(0)
	}
	h := &Hasher{params: params, slots: make(chan struct{}, concurrency)}
	return h
}

// Params returns the hasher's argon2id parameters.
func (h *Hasher) Params() Params { return h.params }

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for a hashing slot: %w", ctx.Err())
	}
}

func (h *Hasher) releaseSlot() {
	<-h.slots
	h.hashed()
}

// MaxBytes is the longest password hashed or verified. Longer ones are
// refused before any work: SHA-crypt costs the square of the password's
// length (a 60 KB password took seconds of CPU), and no one types 1 KiB.
const MaxBytes = 1024

// ErrTooLong is returned by Hash for a password longer than MaxBytes.
var ErrTooLong = fmt.Errorf("password longer than %d bytes", MaxBytes)

// Hash returns the PHC-format argon2id hash of password.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if len(password) > MaxBytes {
		return "", ErrTooLong
	}
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.releaseSlot()
	return h.encode(salt, []byte(password)), nil
}

func (h *Hasher) encode(salt, password []byte) string {
	start := time.Now()
	key := argon2.IDKey(password, salt, h.params.Time, h.params.Memory, h.params.Threads, h.params.KeyLen)
	if h.Observe != nil {
		h.Observe(time.Since(start))
	}
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, h.params.Memory, h.params.Time, h.params.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// Verify checks password against encoded. It returns nil on a match,
// ErrMismatch otherwise, and reports whether the hash should be replaced
// by one of the hasher's current format and parameters.
//
// A password longer than MaxBytes is ErrMismatch at once, without hashing.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (needsRehash bool, err error) {
	if len(password) > MaxBytes {
		return false, ErrMismatch
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.releaseSlot()
	start := time.Now()
	defer func() {
		if h.Observe != nil {
			h.Observe(time.Since(start))
		}
	}()
	switch {
	case strings.HasPrefix(encoded, "$argon2id$"):
		p, salt, key, err := decodeArgon2id(encoded)
		if err != nil {
			return false, err
		}
		got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
		if subtle.ConstantTimeCompare(got, key) != 1 {
			return false, ErrMismatch
		}
		return p.Memory != h.params.Memory || p.Time != h.params.Time || p.Threads != h.params.Threads, nil
	case strings.HasPrefix(encoded, "$2a$"), strings.HasPrefix(encoded, "$2b$"), strings.HasPrefix(encoded, "$2y$"):
		err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(password))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, ErrMismatch
		}
		if err != nil {
			return false, fmt.Errorf("%w: bcrypt: %v", ErrUnknownFormat, err)
		}
		return true, nil
	case strings.HasPrefix(encoded, "pbkdf2_sha256$"):
		return true, verifyDjangoPBKDF2(encoded, password)
	case strings.HasPrefix(encoded, "$6$"):
		return true, verifyCrypt(sha512_crypt.New().Verify(encoded, []byte(password)))
	case strings.HasPrefix(encoded, "$5$"):
		return true, verifyCrypt(sha256_crypt.New().Verify(encoded, []byte(password)))
	}
	return false, ErrUnknownFormat
}

// Dummy spends the time of a verification without a stored hash, so that
// an unknown user costs what a wrong password costs and timing does not
// tell one from the other.
//
// A password longer than MaxBytes costs nothing, as it does in Verify.
func (h *Hasher) Dummy(ctx context.Context, password string) {
	if len(password) > MaxBytes {
		return
	}
	h.dummyOnce.Do(func() {
		h.dummy = h.encode(make([]byte, h.params.SaltLen), []byte("dummy password for timing"))
	})
	_, _ = h.Verify(ctx, h.dummy, password)
}

func decodeArgon2id(encoded string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(encoded, "$") // "", argon2id, v=19, m=..,t=..,p=.., salt, key
	if len(parts) != 6 {
		return p, nil, nil, fmt.Errorf("%w: malformed argon2id hash", ErrUnknownFormat)
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, fmt.Errorf("%w: argon2id version %q", ErrUnknownFormat, parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, fmt.Errorf("%w: argon2id parameters %q", ErrUnknownFormat, parts[3])
	}
	if p.Memory > 1<<22 || p.Time > 64 || p.Threads == 0 { // refuse hashes that would take minutes or GiBs
		return p, nil, nil, fmt.Errorf("%w: argon2id parameters out of range", ErrUnknownFormat)
	}
	if salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil {
		return p, nil, nil, fmt.Errorf("%w: argon2id salt", ErrUnknownFormat)
	}
	if key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(key) < 16 {
		return p, nil, nil, fmt.Errorf("%w: argon2id key", ErrUnknownFormat)
	}
	return p, salt, key, nil
}

// verifyDjangoPBKDF2 checks Django's "pbkdf2_sha256$<iterations>$<salt>$<base64 hash>".
func verifyDjangoPBKDF2(encoded, password string) error {
	parts := strings.Split(encoded, "$")
	if len(parts) != 4 {
		return fmt.Errorf("%w: malformed pbkdf2_sha256 hash", ErrUnknownFormat)
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1 || iter > 10_000_000 {
		return fmt.Errorf("%w: pbkdf2_sha256 iterations %q", ErrUnknownFormat, parts[1])
	}
	want, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil || len(want) == 0 {
		return fmt.Errorf("%w: pbkdf2_sha256 hash", ErrUnknownFormat)
	}
	got, err := pbkdf2.Key(sha256.New, password, []byte(parts[2]), iter, len(want))
	if err != nil {
		return fmt.Errorf("pbkdf2: %w", err)
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}

func verifyCrypt(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, crypt.ErrKeyMismatch):
		return ErrMismatch
	}
	return fmt.Errorf("%w: %v", ErrUnknownFormat, err)
}
