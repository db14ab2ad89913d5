// Package kiseetest starts a real Kisee — the same wiring as the kisee
// command, on a real listener — for the tests of Kisee and of what runs
// above it (Pasee, remote backends).
package kiseetest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kisee-pasee/suite/docs/openapi"
	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/kisee/app"
	"github.com/kisee-pasee/suite/internal/kisee/backend/backendtest"
	"github.com/kisee-pasee/suite/internal/openapitest"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/pkg/token"
)

// Server is a running Kisee.
type Server struct {
	URL  string
	App  *app.App
	Key  *token.PrivateKey
	logs *syncWriter
}

// Logs returns what the server logged so far.
func (s *Server) Logs() string {
	s.logs.mu.Lock()
	defer s.logs.mu.Unlock()
	return s.logs.b.String()
}

// Users is the [identity_backend] of a test backend holding the users of
// backendtest.Users; Start uses it when settings name no backend.
func Users() string {
	var b strings.Builder
	b.WriteString("[identity_backend]\nclass = \"test\"\n")
	for _, u := range backendtest.Users {
		fmt.Fprintf(&b, "[[identity_backend.options.users]]\nusername = %q\npassword = %q\nemail = %q\n", u.Username, u.Password, u.Email)
	}
	return b.String()
}

// Start runs Kisee with the given settings (TOML, without [server] and
// [jwt] private_key, which Start provides) until the test ends. Tokens are
// kept in a SQLite file of t.TempDir() unless settings say otherwise.
func Start(t testing.TB, extra string) *Server {
	t.Helper()
	key, err := token.GenerateKey(token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	pemKey, _ := key.MarshalPEM()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	doc := ""
	if strings.Contains(extra, "[server]") {
		extra = strings.Replace(extra, "[server]", fmt.Sprintf("[server]\nhostname = %q", url), 1)
	} else {
		doc = fmt.Sprintf("[server]\nhostname = %q\n", url)
	}
	if !strings.Contains(extra, "[storage]") {
		doc += fmt.Sprintf("[storage]\nurl = %q\n", "sqlite:"+filepath.Join(t.TempDir(), "kisee.db"))
	}
	if !strings.Contains(extra, "[identity_backend]") {
		doc += Users()
	}
	if !strings.Contains(extra, "private_key") {
		if strings.Contains(extra, "[jwt]") {
			extra = strings.Replace(extra, "[jwt]", "[jwt]\nprivate_key = '''"+string(pemKey)+"'''", 1)
		} else {
			doc += "[jwt]\nprivate_key = '''" + string(pemKey) + "'''\n"
		}
	}
	doc += extra
	src, err := settings.Parse("kisee-test.toml", []byte(doc), "")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := app.FromSource(src)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncWriter{b: &strings.Builder{}}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(context.Background(), cfg, app.Options{Version: "test", Logger: logger, HashParams: &backendtest.FastParams})
	if err != nil {
		t.Fatal(err)
	}
	// Every response of the test server must match the OpenAPI description.
	v, err := openapitest.New(openapi.Kisee())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(v.Wrap(t, a.Server))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() { srv.Close(); a.Close() })
	return &Server{URL: url, App: a, Key: cfg.Keys.Current, logs: logs}
}

// SQLBackend is the [identity_backend] of Kisee's own sql backend, which
// has every capability: registration, password recovery, password change.
const SQLBackend = "[identity_backend]\nclass = \"sql\"\n"

// StartSQL is Start with the sql backend (in the test's SQLite file),
// holding the users of backendtest.Users besides root.
func StartSQL(t testing.TB, extra string) *Server {
	t.Helper()
	s := Start(t, SQLBackend+extra)
	r, ok := s.App.Service.Backend().(kisee.Registerer)
	if !ok {
		t.Fatal("kiseetest: the sql backend cannot register users")
	}
	for _, u := range backendtest.Users {
		if _, err := r.Register(context.Background(), kisee.NewUser{Username: u.Username, Email: u.Email, Password: u.Password}); err != nil {
			t.Fatalf("kiseetest: register %s: %v", u.Username, err)
		}
	}
	return s
}
