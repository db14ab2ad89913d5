package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// serve runs s through Serve on a real listener, as the binaries do.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, time.Second) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// rawRequest writes req on a new connection and returns the response.
func rawRequest(t *testing.T, addr, req string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// The errors net/http answers before any handler (an unparsable request
// line) are problem documents too.
func TestMalformedRequestLineIsAProblem(t *testing.T) {
	s, err := New(Config{Name: "raw", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s.Route(http.MethodGet, "/ok", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	addr := serve(t, s)
	resp := rawRequest(t, addr, "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n")
	body, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != ProblemContentType || json.Unmarshal(body, &doc) != nil || doc["title"] != "Bad Request" || doc["status"] != float64(400) {
		t.Fatalf("GET /%%zz: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	// Handlers' answers pass untouched.
	ok := rawRequest(t, addr, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
	if b, _ := io.ReadAll(ok.Body); ok.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("GET /ok: %d %s", ok.StatusCode, b)
	}
}

// Every resource that answers GET answers HEAD, without a body; a HEAD on
// a POST-only resource is a 405 problem.
func TestHeadWhereverGet(t *testing.T) {
	_, srv, logs := testServer(t, Config{})
	for _, path := range []string{"/ip", "/metrics", "/health"} {
		resp, err := http.Head(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		get, _ := http.Get(srv.URL + path)
		get.Body.Close()
		if resp.StatusCode != get.StatusCode || resp.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
			t.Errorf("HEAD %s: %d %q, GET: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), get.StatusCode, get.Header.Get("Content-Type"))
		}
	}
	resp, err := http.Head(srv.URL + "/echo/")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 405 {
		t.Errorf("HEAD /echo/: %d", resp.StatusCode)
	}
	if !strings.Contains(logs.String(), `"method":"HEAD"`) {
		t.Error("the access log does not say HEAD")
	}
}

// A wrong JSON type is described in English ("an array", not "a array").
func TestJSONTypeErrorsInWords(t *testing.T) {
	_, srv, _ := testServer(t, Config{})
	for body, want := range map[string]string{
		`{"username": ["a"]}`: `Field "username" must be a string, not an array.`,
		`{"age": "x"}`:        `Field "age" must be a number, not a string.`,
		`[1]`:                 `Expected a JSON object, got an array.`,
	} {
		_, doc := do(t, "POST", srv.URL+"/echo/", strings.NewReader(body))
		if doc["detail"] != want {
			t.Errorf("%s: detail %q, want %q", body, doc["detail"], want)
		}
	}
}

// Durations are logged as strings, and lines logged with a request's
// context carry its request id.
func TestLoggerDurationsAndRequestIDs(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger("test", "json", "info", &buf)
	l.InfoContext(WithRequestID(context.Background(), "rid-1"), "x", "took", 1500*time.Millisecond)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line["took"] != "1.5s" || line["request_id"] != "rid-1" {
		t.Fatalf("line %s", buf.Bytes())
	}
}

// The transport of outgoing calls sends the id of the request being served.
func TestRequestIDPropagated(t *testing.T) {
	got := make(chan string, 1)
	up, _, _ := testServer(t, Config{})
	up.Route(http.MethodGet, "/seen", func(c echo.Context) error {
		got <- c.Request().Header.Get(echo.HeaderXRequestID)
		return c.NoContent(http.StatusNoContent)
	})
	upstream := serve(t, up)
	s, srv, _ := testServer(t, Config{})
	client := &http.Client{Transport: PropagateRequestID(nil)}
	s.Route(http.MethodGet, "/call", func(c echo.Context) error {
		req, _ := http.NewRequestWithContext(c.Request().Context(), http.MethodGet, "http://"+upstream+"/seen", nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return c.NoContent(http.StatusNoContent)
	})
	do(t, "GET", srv.URL+"/call", nil, "X-Request-Id", "login-42")
	if id := <-got; id != "login-42" {
		t.Fatalf("upstream saw request id %q", id)
	}
}

// /health reports the backend and each provider; it is red when the
// database or the backend fails, or when no provider can serve a login.
func TestHealthReport(t *testing.T) {
	ok := func(context.Context) error { return nil }
	ko := func(context.Context) error { return errors.New("down") }
	cases := []struct {
		name   string
		hc     HealthChecks
		status int
		want   string
	}{
		{"all well", HealthChecks{Database: ok, Backend: ok}, 200, `"status":"green","database":"OK","backend":"OK"`},
		{"backend down", HealthChecks{Database: ok, Backend: ko}, 503, `"status":"red","database":"OK","backend":"KO"`},
		{"one provider down", HealthChecks{Database: ok, Providers: map[string]func(context.Context) error{"kisee": ko, "corp": ok}}, 200, `"providers":{"corp":"OK","kisee":"KO"}`},
		{"every provider down", HealthChecks{Database: ok, Providers: map[string]func(context.Context) error{"kisee": ko}}, 503, `"status":"red","database":"OK","providers":{"kisee":"KO"}`},
		{"unchecked provider", HealthChecks{Database: ok, Providers: map[string]func(context.Context) error{"kisee": ko, "github": nil}}, 200, `"providers":{"github":"unchecked","kisee":"KO"}`},
		{"database down", HealthChecks{Database: ko, Providers: map[string]func(context.Context) error{"kisee": ok}}, 503, `"status":"red","database":"KO"`},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, srv, _ := testServer(t, Config{})
			path := fmt.Sprintf("/h%d", i)
			s.Route(http.MethodGet, path, s.HealthReport("1", tc.hc))
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
				t.Fatalf("%d %s, want %d ...%s...", resp.StatusCode, b, tc.status, tc.want)
			}
		})
	}
}
