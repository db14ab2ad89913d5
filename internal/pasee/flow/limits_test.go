package flow_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/oauthtest"
	"github.com/kisee-pasee/suite/internal/pasee/flow"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/internal/pgtest"
	"github.com/kisee-pasee/suite/internal/sqldb"
	"github.com/kisee-pasee/suite/migrations"
)

// startFrom asks url from the loopback address ip without following the
// redirect, and returns the status.
func startFrom(t *testing.T, ip, url string) int {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c := &http.Client{
		Transport:     &http.Transport{DialContext: d.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// Each GET /tokens/?idp=<oauth2> writes a state row: an address may start
// 30 flows in 10 minutes, then gets 429; other addresses are not affected.
func TestFlowStartsAreLimitedPerAddress(t *testing.T) {
	gh := oauthtest.Start(t, oauthtest.Options{Shape: oauthtest.GitHub})
	p := paseetest.Start(t, paseetest.SQLite, fmt.Sprintf(`
[[identity_providers]]
name = "github"
protocol = "oauth2"
[identity_providers.settings]
preset = "github"
app_id = %q
app_secret = %q
auth_url = %q
token_url = %q
userinfo_url = %q
`, gh.ClientID(), gh.ClientSecret(), gh.AuthURL(), gh.TokenURL(), gh.UserinfoURL()))
	start := p.URL + "/tokens/?idp=github"
	for i := range flow.StartsPerAddress {
		if s := startFrom(t, "127.0.0.2", start); s != http.StatusFound {
			t.Fatalf("flow start %d: %d, want 302", i+1, s)
		}
	}
	if s := startFrom(t, "127.0.0.2", start); s != http.StatusTooManyRequests {
		t.Errorf("flow start %d from one address: %d, want 429", flow.StartsPerAddress+1, s)
	}
	if s := startFrom(t, "127.0.0.3", start); s != http.StatusFound {
		t.Errorf("flow start from another address: %d, want 302", s)
	}
}

// The pending states are capped whatever the addresses: beyond the cap a
// new state is refused, until older ones expire.
func TestPendingStatesAreCapped(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		s, err := flow.OpenStorage(context.Background(), "sqlite::memory:")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		testPendingCap(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		ctx := context.Background()
		u := pgtest.URL(t)
		db, err := sqldb.OpenPostgres(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		fsys, err := migrations.Pasee(string(sqldb.Postgres))
		if err != nil {
			t.Fatal(err)
		}
		if err := sqldb.Migrate(ctx, db, sqldb.Postgres, fsys, migrations.PaseeTable, nil); err != nil {
			t.Fatal(err)
		}
		testPendingCap(t, flow.NewSQLStorage(db))
	})
}

func testPendingCap(t *testing.T, s *flow.SQLStorage) {
	ctx := context.Background()
	s.MaxPending = 3
	now := time.Now().Truncate(time.Second)
	state := func(i int, at time.Time) flow.State {
		return flow.State{ID: fmt.Sprint("state", i), IDP: "github", Verifier: "v", Nonce: "n", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	}
	for i := range 3 {
		if err := s.SaveState(ctx, state(i, now)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveState(ctx, state(3, now)); !errors.Is(err, flow.ErrTooManyPending) {
		t.Errorf("4th pending state with a cap of 3: %v, want ErrTooManyPending", err)
	}
	if err := s.SaveState(ctx, state(4, now.Add(2*time.Hour))); err != nil {
		t.Errorf("a state once the others expired: %v", err)
	}
}
