package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// fakeSentry is a Sentry ingestion endpoint that keeps the envelopes it receives.
type fakeSentry struct {
	mu        sync.Mutex
	envelopes []string
}

func (f *fakeSentry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err == nil {
			body = gz
		}
	}
	b, _ := io.ReadAll(body)
	f.mu.Lock()
	f.envelopes = append(f.envelopes, string(b))
	f.mu.Unlock()
	w.WriteHeader(200)
}

func (f *fakeSentry) all() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.envelopes, "\n")
}

const leakedToken = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl"

func TestSentryReportsServerErrorsWithoutSecrets(t *testing.T) {
	ingest := &fakeSentry{}
	is := httptest.NewServer(ingest)
	defer is.Close()
	dsn := "http://publickey@" + strings.TrimPrefix(is.URL, "http://") + "/42"
	s, err := New(Config{Name: "test", Version: "26.11.0", SentryDSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	s.Route(http.MethodGet, "/panic", func(c echo.Context) error { panic("boom with " + leakedToken) })
	s.Route(http.MethodGet, "/fail", func(c echo.Context) error { return NewProblem(500, "x", "y").WithCause(io.ErrUnexpectedEOF) })
	s.Route(http.MethodGet, "/bad", func(c echo.Context) error { return BadRequest("Bad", "client error") })
	srv := httptest.NewServer(s)
	defer srv.Close()
	ids := []string{}
	for _, p := range []string{"/panic", "/fail", "/bad"} {
		req, _ := http.NewRequest("GET", srv.URL+p+"?code=secretcode", bytes.NewReader(nil))
		req.Header.Set("Authorization", "Bearer "+leakedToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ids = append(ids, resp.Header.Get("X-Request-Id"))
	}
	s.sentry.Flush(5 * time.Second)
	got := ingest.all()
	for _, want := range []string{ids[0], ids[1], "boom with [token]", "unexpected EOF", `"route":"/panic"`} {
		if !strings.Contains(got, want) {
			t.Errorf("Sentry did not receive %q:\n%s", want, got)
		}
	}
	for _, secret := range []string{leakedToken, "secretcode", "Bearer", ids[2]} {
		if strings.Contains(got, secret) {
			t.Errorf("Sentry received %q", secret)
		}
	}
}

// Only the DSN given in Config counts: the server reads no environment.
func TestNoSentryWithoutDSN(t *testing.T) {
	t.Setenv("SENTRY_DSN", "https://public@sentry.example.invalid/1")
	s, err := New(Config{Name: "test"})
	if err != nil || s.sentry != nil {
		t.Fatalf("sentry without a DSN: %v %v", s.sentry, err)
	}
	if _, err := New(Config{Name: "test", SentryDSN: "not a dsn"}); err == nil {
		t.Fatal("invalid DSN accepted")
	}
}
