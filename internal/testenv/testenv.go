// Package testenv is how a test that needs something of the machine
// (PostgreSQL, Redis, slapd, Chromium, nginx...) goes without it: it is
// skipped with a warning and listed in the one-line summary `make test`
// ends with, and under CI=true, where everything must run, it fails.
//
// `go test` without -v shows neither skips nor what tests print, so a skip
// would go unnoticed: Missing also appends a line to the file named by
// $TEST_SKIP_LOG, which the Makefile sets and summarises.
package testenv

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// SkipLogEnv names the environment variable holding the file skips are
// recorded in, one "suite<TAB>reason" line each.
const SkipLogEnv = "TEST_SKIP_LOG"

// CI reports whether the tests run under CI=true, where nothing may skip.
func CI() bool { return os.Getenv("CI") == "true" }

var warned sync.Map // suite → struct{}: one warning and one log line per process

// Missing stops t because what it needs is missing: suite names the tests
// that cannot run ("PostgreSQL", "LDAP (slapd)"), why says what is missing
// and how to get it. Under CI=true t fails; otherwise it is skipped, with
// one warning on stderr and one line in $TEST_SKIP_LOG per suite.
func Missing(t testing.TB, suite, why string) {
	t.Helper()
	msg := suite + " tests are SKIPPED: " + why
	if CI() {
		t.Fatalf("CI=true, so %s cannot be skipped: %s", suite, why)
	}
	if _, seen := warned.LoadOrStore(suite, struct{}{}); !seen {
		fmt.Fprintln(os.Stderr, "WARNING: "+msg)
		record(suite, why)
	}
	t.Skip(msg)
}

// record appends the skip to $TEST_SKIP_LOG. Each line is one write to a
// file opened for appending, so the test binaries of parallel packages do
// not mix their lines.
func record(suite, why string) {
	path := os.Getenv(SkipLogEnv)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "WARNING: cannot record the skip in %s: %v\n", path, err)
		return
	}
	defer f.Close()
	line := suite + "\t" + strings.NewReplacer("\n", " ", "\t", " ").Replace(why) + "\n"
	if _, err := f.WriteString(line); err != nil {
		fmt.Fprintf(os.Stderr, "WARNING: cannot record the skip in %s: %v\n", path, err)
	}
}
