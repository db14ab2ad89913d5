package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/pgtest"
	"github.com/kisee-pasee/suite/pkg/token"
)

var bins map[string]string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "e2e-bin-")
	if err != nil {
		panic(err)
	}
	bins, err = Build(dir, "kisee", "pasee")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// suite is a Kisee and a Pasee running as processes.
type suite struct {
	dir                string
	kisee, pasee       *Process
	kiseeURL, paseeURL string
	paseeSettings      string
}

func startSuite(t *testing.T, storeURL string) *suite {
	dir := t.TempDir()
	kp, pp := FreePort(t), FreePort(t)
	s := &suite{dir: dir, kiseeURL: fmt.Sprintf("http://127.0.0.1:%d", kp), paseeURL: fmt.Sprintf("http://127.0.0.1:%d", pp)}
	out, err := Run(context.Background(), dir, bins["kisee"], "", "keygen")
	if err != nil {
		t.Fatal(out)
	}
	kiseeSettings := fmt.Sprintf(`[server]
port = %d
[identity_backend]
class = "test"
[[identity_backend.options.users]]
username = "alice"
password = "alice password"
email = "alice@example.com"
[[identity_backend.options.users]]
username = "john"
password = "john password"
[[identity_backend.options.users]]
username = "ada"
password = "ada password"
[storage]
url = "sqlite:kisee.db"
[jwt]
private_key = '''%s'''
`, kp, out)
	write(t, filepath.Join(dir, "kisee.toml"), kiseeSettings)
	out, err = Run(context.Background(), dir, bins["pasee"], "", "keygen", "--alg", "EdDSA")
	if err != nil {
		t.Fatal(out)
	}
	s.paseeSettings = filepath.Join(dir, "pasee.toml")
	write(t, s.paseeSettings, fmt.Sprintf(`port = %d
[jwt]
private_key = '''%s'''
refresh_reuse_grace = "0s"
[storage]
url = %q
[[identity_providers]]
name = "kisee"
protocol = "kisee"
endpoint = %q
[identity_providers.settings]
claims = ["email"]
`, pp, out, storeURL, s.kiseeURL+"/"))
	s.kisee = Start(t, "kisee", bins["kisee"], dir, s.kiseeURL, nil, "--settings", "kisee.toml")
	s.pasee = Start(t, "pasee", bins["pasee"], dir, s.paseeURL, nil, "--settings-file", s.paseeSettings)
	return s
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (s *suite) login(t *testing.T, user string) (access, refresh string) {
	t.Helper()
	r := Do(t, "POST", s.paseeURL+"/tokens/?idp=kisee", map[string]string{"login": user, "password": user + " password"}).WantStatus(t, 201)
	return r.JSON["access_token"].(string), r.JSON["refresh_token"].(string)
}

func (s *suite) claims(t *testing.T, raw string) *token.Claims {
	t.Helper()
	v := token.NewVerifier(token.NewRemoteKeySet(s.paseeURL+"/jwks.json", token.RemoteOptions{}), token.WithTypes(token.TypeAccess), token.WithIssuer(s.paseeURL))
	c, err := v.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("access token does not verify with Pasee's /jwks.json: %v", err)
	}
	return c
}

func (s *suite) pasee_(t *testing.T, args ...string) string {
	t.Helper()
	out, err := Run(context.Background(), s.dir, bins["pasee"], "", append([]string{"--settings-file", s.paseeSettings}, args...)...)
	if err != nil {
		t.Fatalf("pasee %v: %v\n%s", args, err, out)
	}
	return out
}

// The walk of issue 4: login through Pasee, the CLI making alice staff
// while the server runs, the group scenario, refresh rotation, reuse
// detection and a ban — on SQLite and on PostgreSQL.
func TestSuiteEndToEnd(t *testing.T) {
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			url := "sqlite:pasee.db"
			if store == "postgres" {
				url = pgtest.URL(t)
			}
			s := startSuite(t, url)

			access, _ := s.login(t, "alice")
			c := s.claims(t, access)
			if g, _ := c.Strings("groups"); c.Subject != "kisee-alice" || len(g) != 0 {
				t.Fatalf("first token: sub %q groups %v", c.Subject, g)
			}
			if email, _ := c.String("email"); email != "alice@example.com" {
				t.Fatalf("email claim %q", email)
			}

			if out := s.pasee_(t, "append", "--groups", "staff", "kisee-alice"); !strings.Contains(out, "added kisee-alice to staff") {
				t.Fatalf("append: %s", out)
			}
			if out := s.pasee_(t, "groups", "kisee-alice"); strings.TrimSpace(out) != "staff" {
				t.Fatalf("groups: %q", out)
			}
			// The administration commands need the store, not the signing key:
			// they work with a settings file whose key cannot be read.
			noKey := filepath.Join(s.dir, "admin.toml")
			text, _ := os.ReadFile(s.paseeSettings)
			start := strings.Index(string(text), "private_key = '''")
			end := start + len("private_key = '''") + strings.Index(string(text)[start+len("private_key = '''"):], "'''") + 3
			write(t, noKey, string(text[:start])+"private_key_file = \"/nonexistent/key.pem\"\n"+string(text[end:]))
			if out, err := Run(context.Background(), s.dir, bins["pasee"], "", "--settings-file", noKey, "append", "--groups", "readers", "kisee-alice"); err != nil {
				t.Fatalf("append without a readable key: %v %s", err, out)
			}
			if out, err := Run(context.Background(), s.dir, bins["pasee"], "", "--settings-file", noKey, "append", "--groups", "readers", "alice"); err == nil || !strings.Contains(out, "did you mean kisee-alice") {
				t.Fatalf("append of a user without provider: %v %s", err, out)
			}
			alice, aliceRefresh := s.login(t, "alice")
			if g, _ := s.claims(t, alice).Strings("groups"); !slices.Equal(g, []string{"readers", "staff"}) {
				t.Fatalf("after append: groups %v", g)
			}

			john, _ := s.login(t, "john")
			ada, adaRefresh := s.login(t, "ada")
			steps := []struct {
				tok, method, path string
				body              any
				status            int
			}{
				{alice, "POST", "/groups/", `{"group":"admin"}`, 201},
				{alice, "POST", "/groups/", `{"group":"admin.developers"}`, 201},
				{alice, "POST", "/groups/admin.developers.staff/", `{"username":"kisee-john"}`, 201},
				{john, "POST", "/groups/admin.developers/", `{"username":"kisee-ada"}`, 201},
				{john, "POST", "/groups/admin.developers/", `{"username":"kisee-alan"}`, 201},
				{john, "POST", "/groups/", `{"group":"admin.other"}`, 403},
				{ada, "POST", "/groups/admin.developers/", `{"username":"kisee-donald"}`, 403},
				{ada, "GET", "/groups/admin.developers/", nil, 200},
			}
			for i, st := range steps {
				Do(t, st.method, s.paseeURL+st.path, st.body, Bearer(st.tok)...).WantStatus(t, st.status)
				_ = i
			}

			// Refresh rotation: ada's groups appear in the refreshed token.
			r := Do(t, "POST", s.paseeURL+"/tokens/?refresh", nil, Bearer(adaRefresh)...).WantStatus(t, 201)
			if g, _ := s.claims(t, r.JSON["access_token"].(string)).Strings("groups"); !slices.Equal(g, []string{"admin.developers"}) {
				t.Fatalf("refreshed groups %v", g)
			}
			next := r.JSON["refresh_token"].(string)
			// Reuse of the spent token revokes the session.
			Do(t, "POST", s.paseeURL+"/tokens/?refresh", nil, Bearer(adaRefresh)...).WantProblem(t, 401, "Refresh token reused")
			Do(t, "POST", s.paseeURL+"/tokens/?refresh", nil, Bearer(next)...).WantProblem(t, 401, "Session revoked")

			// A ban revokes alice's... no: alice bans ada; ada is locked out at once.
			_, adaRefresh = s.login(t, "ada")
			Do(t, "PATCH", s.paseeURL+"/users/kisee-ada", `{"is_banned": true}`, Bearer(alice)...).WantStatus(t, 204)
			Do(t, "POST", s.paseeURL+"/tokens/?refresh", nil, Bearer(adaRefresh)...).WantProblem(t, 401, "Session revoked")
			Do(t, "POST", s.paseeURL+"/tokens/?idp=kisee", `{"login":"ada","password":"ada password"}`).WantProblem(t, 403, "User is banned")
			Do(t, "POST", s.paseeURL+"/tokens/?refresh", nil, Bearer(aliceRefresh)...).WantStatus(t, 201)

			// Health probes for containers, without curl.
			for _, cmd := range [][]string{{bins["kisee"], "--settings", "kisee.toml", "healthcheck"}, {bins["pasee"], "--settings-file", s.paseeSettings, "healthcheck"}} {
				if out, err := Run(context.Background(), s.dir, cmd[0], "", cmd[1:]...); err != nil || !strings.Contains(out, "healthy") {
					t.Fatalf("%v: %v %s", cmd, err, out)
				}
			}

			// SIGTERM: both stop cleanly.
			s.pasee.Stop(t)
			s.kisee.Stop(t)
			if out, err := Run(context.Background(), s.dir, bins["kisee"], "", "--settings", "kisee.toml", "healthcheck"); err == nil {
				t.Fatalf("healthcheck of a stopped Kisee succeeded: %s", out)
			}
		})
	}
}
