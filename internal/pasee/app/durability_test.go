package app_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/internal/pgtest"
)

// Pasee answers a refresh once its rotation is committed; with
// synchronous_commit = off PostgreSQL acknowledges commits it may lose in a
// crash, and the operator must hear of it at start.
func TestStartWarnsWhenCommitsMayBeLost(t *testing.T) {
	for _, tc := range []struct {
		param string
		warns bool
	}{
		{"&synchronous_commit=on", false},
		{"&synchronous_commit=off", true},
	} {
		t.Run(strings.TrimPrefix(tc.param, "&"), func(t *testing.T) {
			url := pgtest.URL(t) + tc.param
			p := paseetest.Start(t, paseetest.Postgres, fmt.Sprintf("[storage]\nurl = %q\n", url)+paseetest.KiseeProvider("kisee", "http://127.0.0.1:1"))
			if got := strings.Contains(p.Logs(), "synchronous_commit is off"); got != tc.warns {
				t.Fatalf("warning logged: %v, want %v; logs:\n%s", got, tc.warns, p.Logs())
			}
		})
	}
}
