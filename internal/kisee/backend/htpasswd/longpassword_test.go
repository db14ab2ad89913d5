package htpasswd_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/kisee"
)

// cpuTime is the CPU time (user + system) the process has used so far.
func cpuTime(t testing.TB) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A SHA-crypt hash costs the square of the password's length: a 60 KB
// password is refused before any hashing, whether the user has a
// SHA-crypt entry or does not exist (the dummy hash of a SHA-crypt file is
// SHA-crypt too). The bound is on CPU time, not on the wall clock.
func TestLongPasswordCostsNoHashing(t *testing.T) {
	b, _ := open(t, copyFixture(t, "formats.htpasswd"))
	long := strings.Repeat("x", 60_000)
	for _, user := range []string{"sha256", "sha512r", "nobody"} {
		before := cpuTime(t)
		_, err := b.Identify(context.Background(), user, long)
		used := cpuTime(t) - before
		t.Logf("60 KB password for %s: %v of CPU", user, used)
		if !errors.Is(err, kisee.ErrInvalidCredentials) {
			t.Errorf("%s with a 60 KB password: %v, want ErrInvalidCredentials", user, err)
		}
		if used > 100*time.Millisecond {
			t.Errorf("%s with a 60 KB password used %v of CPU; want no hashing (< 100ms)", user, used)
		}
	}
	// 1 KiB is still a password like any other.
	if _, err := b.Identify(context.Background(), "sha256", strings.Repeat("x", kisee.MaxPasswordBytes)); !errors.Is(err, kisee.ErrInvalidCredentials) {
		t.Errorf("1 KiB wrong password: %v, want ErrInvalidCredentials", err)
	}
}

// BenchmarkLongPasswordSHACrypt reports the CPU time of one login attempt
// with a 60 KB password on a SHA-crypt ($5$) htpasswd entry
// (cpu-ns/op).
func BenchmarkLongPasswordSHACrypt(b *testing.B) {
	be, _ := open(b, copyFixture(b, "formats.htpasswd"))
	long := strings.Repeat("x", 60_000)
	start := cpuTime(b)
	for b.Loop() {
		_, _ = be.Identify(context.Background(), "sha256", long)
	}
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}
