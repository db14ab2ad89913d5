package password

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Hashes made by other implementations (the argon2 CLI, OpenSSL, Python's
// hashlib as Django uses it) of the password "correct horse".
var foreign = map[string]string{
	"argon2id (argon2 CLI)":         "$argon2id$v=19$m=16384,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$35mprqYvNcyCctp8/a+IOdumBgR2FyrE67ux6FZbd64",
	"SHA-512-crypt (openssl -6)":    "$6$saltsalt$hRM5XZ86KXEw9UOmjigeVqFgULtFB2sgpC9lXQDfMib3Zgw7mEiUvBJI2EplzfAqxL5Vvwp2scFtv/uamSo5z0",
	"SHA-256-crypt (openssl -5)":    "$5$saltsalt$myjXcpMpE2Ofk7fj9hqyNYSn6lmWG4Mqnjx.KIRRr4/",
	"PBKDF2-SHA256 (Django)":        "pbkdf2_sha256$260000$seasalt$htpQDYdyy5MZ7bxS8mQJ0sjrWSVIvZJLEHJYe2DWsYQ=",
	"bcrypt $2y$ (Apache htpasswd)": "$2y$05$LAxYPZdhjaP2jYd.Q/x5xeXDknmEAlMq43GQ51kd3sxpdjQ/1TAXi",
}

var fast = Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestVerifyForeignFormats(t *testing.T) {
	h := NewHasher(OWASP, 2)
	ctx := context.Background()
	for name, encoded := range foreign {
		t.Run(name, func(t *testing.T) {
			rehash, err := h.Verify(ctx, encoded, "correct horse")
			if err != nil {
				t.Fatalf("right password refused: %v", err)
			}
			if !rehash {
				t.Error("a hash not of the current parameters should be re-hashed")
			}
			if _, err := h.Verify(ctx, encoded, "correct horsf"); !errors.Is(err, ErrMismatch) {
				t.Fatalf("wrong password: %v, want ErrMismatch", err)
			}
		})
	}
}

func TestHashVerifyRoundTrip(t *testing.T) {
	h := NewHasher(fast, 0)
	ctx := context.Background()
	a, err := h.Hash(ctx, "pässwörd ✓")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := h.Hash(ctx, "pässwörd ✓")
	if a == b {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	if !strings.HasPrefix(a, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("hash %q is not PHC argon2id", a)
	}
	if rehash, err := h.Verify(ctx, a, "pässwörd ✓"); err != nil || rehash {
		t.Fatalf("own hash: rehash=%v err=%v", rehash, err)
	}
	if _, err := h.Verify(ctx, a, "passwörd ✓"); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong password: %v", err)
	}
	// A hash of weaker parameters verifies and asks to be upgraded.
	if rehash, err := NewHasher(OWASP, 1).Verify(ctx, a, "pässwörd ✓"); err != nil || !rehash {
		t.Fatalf("weaker params: rehash=%v err=%v", rehash, err)
	}
	bc, _ := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	if rehash, err := h.Verify(ctx, string(bc), "x"); err != nil || !rehash {
		t.Fatalf("bcrypt: rehash=%v err=%v", rehash, err)
	}
}

func TestVerifyRefusesMalformedAndAbusiveHashes(t *testing.T) {
	h := NewHasher(fast, 1)
	for _, encoded := range []string{
		"",
		"plaintext",
		"$1$saltsalt$md5cryptisnotaccepted",
		"$argon2id$v=19$m=1024,t=1,p=1$c2FsdA",
		"$argon2id$v=16$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=1024,t=1000,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"pbkdf2_sha256$999999999$salt$aGFzaA==",
		"pbkdf2_sha256$abc$salt$aGFzaA==",
		"$2b$04$tooshort",
	} {
		if _, err := h.Verify(context.Background(), encoded, "x"); !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("%q: err = %v, want ErrUnknownFormat", encoded, err)
		}
	}
}

func TestConcurrencyIsCapped(t *testing.T) {
	h := NewHasher(fast, 2)
	var running, peak atomic.Int32
	h.Observe = func(time.Duration) {}
	enc, _ := h.Hash(context.Background(), "x")
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.acquire(context.Background()); err != nil {
				t.Error(err)
				return
			}
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
			running.Add(-1)
			h.releaseSlot()
			_, _ = h.Verify(context.Background(), enc, "x")
		}()
	}
	wg.Wait()
	if peak.Load() > 2 {
		t.Fatalf("%d hashes ran at once with a cap of 2", peak.Load())
	}
	// A caller whose request is gone stops waiting for a slot.
	h1 := NewHasher(fast, 1)
	_ = h1.acquire(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h1.Hash(ctx, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked hash: %v", err)
	}
}

// BenchmarkHash is the raw hash rate Kisee's login throughput is measured against.
func BenchmarkHash(b *testing.B) {
	h := NewHasher(OWASP, 0)
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestReleasesMemoryWhenIdle(t *testing.T) {
	const idle = 200 * time.Millisecond
	h := NewHasher(fast, 1)
	released := make(chan time.Time, 10)
	h.ReleaseMemoryWhenIdle(idle, func() { released <- time.Now() })
	enc, _ := h.Hash(context.Background(), "x")
	var last time.Time
	for range 3 { // hashes in quick succession postpone the release
		_, _ = h.Verify(context.Background(), enc, "x")
		last = time.Now() // the countdown restarted before Verify returned
		time.Sleep(idle / 4)
	}
	select {
	case at := <-released:
		if at.Before(last.Add(idle / 2)) {
			t.Fatalf("released %s after the last hash, well before the %s idle delay", at.Sub(last), idle)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("memory never released")
	}
	select {
	case <-released:
		t.Fatal("released twice for one idle period")
	case <-time.After(2 * idle):
	}
}

func TestDummyHashIsMadeOnFirstUse(t *testing.T) {
	h := NewHasher(fast, 1)
	var hashes int
	h.Observe = func(time.Duration) { hashes++ }
	if hashes != 0 {
		t.Fatal("NewHasher hashed")
	}
	h.Dummy(context.Background(), "x")
	h.Dummy(context.Background(), "y")
	if hashes != 3 { // one to make the dummy, one verification each
		t.Fatalf("%d hash computations, want 3", hashes)
	}
}
