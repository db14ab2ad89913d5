package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

type body struct {
	Username string `json:"username"`
	Age      int    `json:"age"`
}

func testServer(t *testing.T, cfg Config) (*Server, *httptest.Server, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	var mu sync.Mutex
	cfg.Logger = slog.New(slog.NewJSONHandler(lockedWriter{&logs, &mu}, nil))
	cfg.Name = "test"
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Route(http.MethodPost, "/echo/", func(c echo.Context) error {
		var b body
		if err := DecodeJSON(c, &b); err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, b)
	})
	s.Route(http.MethodGet, "/panic", func(c echo.Context) error { panic("boom") })
	s.Route(http.MethodGet, "/fail", func(c echo.Context) error { return errors.New("db password=hunter2 refused") })
	s.Route(http.MethodGet, "/metrics", s.Metrics.Handler())
	s.Route(http.MethodGet, "/health", s.HealthHandler("26.11.0", func(ctx context.Context) error { return errors.New("down") }))
	s.Route(http.MethodGet, "/ip", func(c echo.Context) error { return c.String(http.StatusOK, c.RealIP()) })
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv, &logs
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func do(t *testing.T, method, url string, body io.Reader, hdr ...string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp, m
}

func wantProblem(t *testing.T, resp *http.Response, doc map[string]any, status int, title string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d (%v)", resp.StatusCode, status, doc)
	}
	if ct := resp.Header.Get("Content-Type"); ct != ProblemContentType {
		t.Fatalf("Content-Type %q, want %s", ct, ProblemContentType)
	}
	if doc["title"] != title || doc["status"] != float64(status) || doc["type"] != "about:blank" || doc["_type"] != "error" {
		t.Fatalf("problem = %v, want title %q", doc, title)
	}
	if meta, _ := doc["_meta"].(map[string]any); meta["title"] != title {
		t.Fatalf("_meta = %v", doc["_meta"])
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Fatal("no X-Request-Id")
	}
}

// A configured body limit is the one enforced and the one the 413 names,
// whether the body announces its length or is streamed.
func TestConfiguredBodyLimit(t *testing.T) {
	_, srv, _ := testServer(t, Config{BodyLimit: 1000})
	body := `{"username":"` + strings.Repeat("a", 2000) + `"}`
	resp, doc := do(t, "POST", srv.URL+"/echo/", strings.NewReader(body))
	wantProblem(t, resp, doc, 413, "Request body too large")
	if doc["detail"] != "Request bodies are limited to 1000 bytes." {
		t.Errorf("with Content-Length: detail %q", doc["detail"])
	}
	pr, pw := io.Pipe()
	go func() { _, _ = pw.Write([]byte(body)); pw.Close() }()
	resp, doc = do(t, "POST", srv.URL+"/echo/", pr)
	wantProblem(t, resp, doc, 413, "Request body too large")
	if doc["detail"] != "Request bodies are limited to 1000 bytes." {
		t.Errorf("streamed: detail %q", doc["detail"])
	}
	small := `{"username":"` + strings.Repeat("a", 900) + `"}`
	if resp, _ := do(t, "POST", srv.URL+"/echo/", strings.NewReader(small)); resp.StatusCode != 201 {
		t.Errorf("a body under the limit: %d", resp.StatusCode)
	}
}

func TestBadBodies(t *testing.T) {
	_, srv, _ := testServer(t, Config{})
	cases := []struct {
		name, body string
		status     int
		title      string
		detail     string
	}{
		{"not JSON", `{"username":`, 400, "Invalid JSON", "truncated"},
		{"syntax", `{username: 1}`, 400, "Invalid JSON", "not valid JSON"},
		{"wrong type", `{"username": 42}`, 400, "Invalid JSON", `"username" must be a string`},
		{"array", `[1,2]`, 400, "Invalid JSON", "object"},
		{"empty", ``, 400, "Invalid JSON", "empty"},
		{"two values", `{} {}`, 400, "Invalid JSON", "more than one"},
		{"1 MiB", `{"username":"` + strings.Repeat("a", 1<<20) + `"}`, 413, "Request body too large", "65536"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, doc := do(t, "POST", srv.URL+"/echo/", strings.NewReader(tc.body))
			wantProblem(t, resp, doc, tc.status, tc.title)
			if d, _ := doc["detail"].(string); !strings.Contains(d, tc.detail) {
				t.Fatalf("detail %q does not say %q", d, tc.detail)
			}
		})
	}
	// A body streamed without Content-Length is cut at the limit too.
	pr, pw := io.Pipe()
	go func() { _, _ = pw.Write([]byte(`{"username":"` + strings.Repeat("a", 100<<10) + `"}`)); pw.Close() }()
	resp, doc := do(t, "POST", srv.URL+"/echo/", pr)
	wantProblem(t, resp, doc, 413, "Request body too large")
	if d, _ := doc["detail"].(string); !strings.Contains(d, "65536 bytes") {
		t.Errorf("streamed body: detail %q does not give the limit", d)
	}
	// Unknown fields are ignored, and form Content-Type does not matter.
	resp, doc = do(t, "POST", srv.URL+"/echo", strings.NewReader(`{"username":"ada","extra":true}`), "Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != 201 || doc["username"] != "ada" {
		t.Fatalf("valid body: %d %v", resp.StatusCode, doc)
	}
}

func TestUnexpectedErrorsAre500WithoutDetails(t *testing.T) {
	_, srv, logs := testServer(t, Config{})
	for _, path := range []string{"/panic", "/fail"} {
		resp, doc := do(t, "GET", srv.URL+path, nil)
		wantProblem(t, resp, doc, 500, "Internal error")
		raw, _ := json.Marshal(doc)
		if strings.Contains(string(raw), "hunter2") || strings.Contains(string(raw), "boom") {
			t.Fatalf("%s leaks its cause: %s", path, raw)
		}
		if !strings.Contains(logs.String(), resp.Header.Get("X-Request-Id")) {
			t.Fatalf("%s: request id not in the logs", path)
		}
	}
	// The server survived the panic.
	resp, _ := do(t, "GET", srv.URL+"/ip", nil)
	if resp.StatusCode != 200 {
		t.Fatal("server down after a panic")
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	_, srv, _ := testServer(t, Config{})
	resp, doc := do(t, "GET", srv.URL+"/nowhere", nil)
	wantProblem(t, resp, doc, 404, "Not found")
	resp, doc = do(t, "DELETE", srv.URL+"/echo/", nil)
	wantProblem(t, resp, doc, 405, "Method not allowed")
}

func TestSecurityHeaders(t *testing.T) {
	_, srv, _ := testServer(t, Config{})
	resp, _ := do(t, "GET", srv.URL+"/ip", nil)
	for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Cache-Control": "no-store"} {
		if resp.Header.Get(h) != want {
			t.Errorf("%s = %q, want %q", h, resp.Header.Get(h), want)
		}
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Error("no strict CSP")
	}
}

func TestRequestID(t *testing.T) {
	_, srv, _ := testServer(t, Config{})
	resp, _ := do(t, "GET", srv.URL+"/ip", nil, "X-Request-Id", "abc-123")
	if resp.Header.Get("X-Request-Id") != "abc-123" {
		t.Fatal("incoming request id not kept")
	}
	resp, _ = do(t, "GET", srv.URL+"/ip", nil, "X-Request-Id", "bad id\twith\"quotes")
	if id := resp.Header.Get("X-Request-Id"); id == "" || strings.ContainsAny(id, " \t\"") {
		t.Fatalf("unsafe request id echoed: %q", id)
	}
}

func TestCORS(t *testing.T) {
	_, srv, _ := testServer(t, Config{CORS: CORSConfig{AllowedOrigins: []string{"https://app.example.com"}}})
	resp, _ := do(t, "OPTIONS", srv.URL+"/echo/", nil, "Origin", "https://app.example.com", "Access-Control-Request-Method", "POST")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("allowed preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, doc := do(t, "OPTIONS", srv.URL+"/echo/", nil, "Origin", "https://evil.example.com", "Access-Control-Request-Method", "POST")
	wantProblem(t, resp, doc, 403, "Origin not allowed")
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("unlisted origin allowed")
	}
	resp, _ = do(t, "GET", srv.URL+"/ip", nil, "Origin", "https://evil.example.com")
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("unlisted origin given CORS headers")
	}
	if _, err := New(Config{CORS: CORSConfig{AllowedOrigins: []string{"*"}, AllowCredentials: true}}); err == nil {
		t.Fatal("* with credentials accepted")
	}
}

func TestTrustedProxies(t *testing.T) {
	_, direct, _ := testServer(t, Config{})
	req, _ := http.NewRequest("GET", direct.URL+"/ip", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	r, _ := http.DefaultClient.Do(req)
	ip, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if string(ip) != "127.0.0.1" {
		t.Fatalf("untrusted X-Forwarded-For believed: %s", ip)
	}
	_, proxied, _ := testServer(t, Config{TrustedProxies: []string{"127.0.0.1"}})
	req, _ = http.NewRequest("GET", proxied.URL+"/ip", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	r, _ = http.DefaultClient.Do(req)
	ip, _ = io.ReadAll(r.Body)
	r.Body.Close()
	if string(ip) != "203.0.113.9" {
		t.Fatalf("trusted proxy's X-Forwarded-For ignored: %s", ip)
	}
	if _, err := New(Config{TrustedProxies: []string{"not-an-ip"}}); err == nil {
		t.Fatal("bad trusted proxy accepted")
	}
}

func TestMetricsAndHealth(t *testing.T) {
	_, srv, _ := testServer(t, Config{})
	do(t, "GET", srv.URL+"/ip", nil)
	do(t, "GET", srv.URL+"/no/such/path/12345", nil)
	resp, doc := do(t, "GET", srv.URL+"/health", nil)
	if resp.StatusCode != 503 || doc["status"] != "red" || doc["database"] != "KO" || doc["version"] != "26.11.0" {
		t.Fatalf("health: %d %v", resp.StatusCode, doc)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(r.Body)
	r.Body.Close()
	for _, want := range []string{`test_http_requests_total{method="GET",route="/ip",status="200"} 1`, `route="unmatched"`, "test_http_request_duration_seconds_bucket", "go_goroutines"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(string(text), "12345") {
		t.Error("raw path used as a metric label")
	}
}

func TestServeDrainsInFlightRequests(t *testing.T) {
	s, err := New(Config{Name: "drain", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 10)
	s.Route(http.MethodGet, "/slow", func(c echo.Context) error {
		started <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		return c.String(http.StatusOK, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, 5*time.Second) }()
	var wg sync.WaitGroup
	results := make(chan string, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get("http://" + ln.Addr().String() + "/slow")
			if err != nil {
				results <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- string(b)
		}()
	}
	for range 10 {
		<-started
	}
	cancel() // SIGTERM while ten requests are in flight
	wg.Wait()
	close(results)
	for r := range results {
		if r != "done" {
			t.Errorf("in-flight request lost: %s", r)
		}
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/slow"); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}
