// Package paseetest starts a real Pasee — the same wiring as the pasee
// command, on a real listener — for tests.
package paseetest

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kisee-pasee/suite/docs/openapi"
	"github.com/kisee-pasee/suite/internal/openapitest"
	"github.com/kisee-pasee/suite/internal/pasee/app"
	"github.com/kisee-pasee/suite/internal/pgtest"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/pkg/token"
)

// Server is a running Pasee.
type Server struct {
	URL    string
	App    *app.App
	Key    *token.PrivateKey
	Config *app.Config
	logs   *syncWriter
}

// Logs returns what the server logged so far.
func (s *Server) Logs() string {
	s.logs.mu.Lock()
	defer s.logs.mu.Unlock()
	return s.logs.b.String()
}

// Store names a store for Start: SQLite in a temporary file, or a fresh
// PostgreSQL schema.
type Store string

// The stores tests run on.
const (
	SQLite   Store = "sqlite"
	Postgres Store = "postgres"
)

// Stores are both stores, for table-driven tests.
var Stores = []Store{SQLite, Postgres}

// URL returns a storage URL of kind s for t.
func (s Store) URL(t testing.TB) string {
	if s == Postgres {
		return pgtest.URL(t)
	}
	return "sqlite:" + filepath.Join(t.TempDir(), "pasee.db")
}

// KiseeProvider is the [[identity_providers]] entry of a Kisee at url.
func KiseeProvider(name, url string, extra ...string) string {
	return fmt.Sprintf("[[identity_providers]]\nname = %q\nprotocol = \"kisee\"\nendpoint = %q\nregistration = true\n[identity_providers.settings]\nclaims = [\"email\"]\n%s\n",
		name, url, strings.Join(extra, "\n"))
}

// Start runs Pasee with settings doc (without host, port, hostname,
// private_key and [storage], which Start provides) on store until the
// test ends.
func Start(t testing.TB, store Store, doc string) *Server {
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
	head := fmt.Sprintf("hostname = %q\nprivate_key = '''%s'''\n", url, pemKey)
	if !strings.Contains(doc, "[storage]") {
		doc += fmt.Sprintf("\n[storage]\nurl = %q\n", store.URL(t))
	}
	src, err := settings.Parse("pasee-test.toml", []byte(head+doc), "")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := app.FromSource(src)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncWriter{b: &strings.Builder{}}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(context.Background(), cfg, app.Options{Version: "test", Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	// Every response of the test server must match the OpenAPI description.
	v, err := openapitest.New(openapi.Pasee())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(v.Wrap(t, a.Server))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() { srv.Close(); a.Close() })
	return &Server{URL: url, App: a, Key: cfg.Keys.Current, Config: cfg, logs: logs}
}

type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// The confidential client of IntrospectionClient.
const (
	IntrospectionClientID     = "resource-server"
	IntrospectionClientSecret = "resource-server-secret-0123456789"
)

// IntrospectionClient is a [[clients]] entry for tests that call
// POST /tokens/introspect, which requires client authentication; send
// IntrospectionAuth with the request.
const IntrospectionClient = `
[[clients]]
id = "` + IntrospectionClientID + `"
secret = "` + IntrospectionClientSecret + `"
redirect_uris = ["http://resource-server.test/unused"]
`

// IntrospectionAuth is the Authorization header (name, value) of
// IntrospectionClient.
func IntrospectionAuth() []string {
	return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(IntrospectionClientID+":"+IntrospectionClientSecret))}
}
