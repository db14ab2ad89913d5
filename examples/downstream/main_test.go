package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
)

// The example service, started in-process by run as main starts it, in
// front of a real Kisee and Pasee: each route with the callers it admits
// and refuses.
func TestDownstream(t *testing.T) {
	k := kiseetest.Start(t, "") // users alice and bob
	p := paseetest.Start(t, paseetest.SQLite, paseetest.KiseeProvider("kisee", k.URL))
	ctx := context.Background()
	for user, group := range map[string]string{"kisee-alice": "articles.writers", "kisee-bob": "staff"} {
		if err := p.App.Store.EnsureGroup(ctx, "test", group, time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
		if err := p.App.Store.AddMember(ctx, "test", group, user, time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
	}
	alice := login(t, p.URL, "alice", "correct horse battery")
	bob := login(t, p.URL, "bob", "Tr0ub4dor&3 ünïcode ✓")

	base, logs, stop := start(t, "-pasee", p.URL, "-listen", "127.0.0.1:0")

	for _, c := range []struct {
		path, token string
		status      int
		want        string // in the body
	}{
		{"/public", "", 200, "Anyone can read this."},
		{"/public", "garbage", 200, "Anyone can read this."},
		{"/me", "", 401, `"title":"Missing token"`},
		{"/me", "garbage", 401, `"title":"Invalid token"`},
		{"/me", alice, 200, `"user":"kisee-alice"`},
		{"/me", bob, 200, `"groups":["staff"]`},
		{"/articles", "", 401, `"title":"Missing token"`},
		{"/articles", alice, 200, `"can_write":true`},
		{"/articles", bob, 403, `"title":"Missing group"`},
		{"/admin", "", 401, `"title":"Missing token"`},
		{"/admin", bob, 200, `"message":"Welcome, kisee-bob."`},
		{"/admin", alice, 403, `"title":"Missing group"`},
	} {
		status, header, body := get(t, base+c.path, c.token)
		if status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("GET %s (token %.10q): %d %s, want %d with %s", c.path, c.token, status, body, c.status, c.want)
		}
		if status == 401 && header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` {
			t.Errorf("GET %s: 401 without the bearer challenge: %v", c.path, header)
		}
		if status >= 400 && header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s: %d as %q, want a problem document", c.path, status, header.Get("Content-Type"))
		}
	}

	if err := stop(); err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
	out := logs.String()
	if !strings.Contains(out, "downstream listening") || !strings.Contains(out, "user=kisee-bob") {
		t.Errorf("logs:\n%s", out)
	}
	if strings.Contains(out, alice) || strings.Contains(out, bob) {
		t.Error("a token was logged")
	}
}

func TestFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"-pasee", "https://auth.example.com/"}, io.Discard)
	if err != nil || cfg.jwksURL != "https://auth.example.com/jwks.json" || cfg.issuer != "https://auth.example.com" {
		t.Errorf("parseFlags = %+v, %v", cfg, err)
	}
	cfg, err = parseFlags([]string{"-jwks-url", "http://pasee:8150/jwks.json", "-issuer", "https://auth.example.com"}, io.Discard)
	if err != nil || cfg.jwksURL != "http://pasee:8150/jwks.json" || cfg.issuer != "https://auth.example.com" {
		t.Errorf("parseFlags = %+v, %v", cfg, err)
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	if _, err := parseFlags([]string{"extra"}, io.Discard); err == nil {
		t.Error("an extra argument was accepted")
	}
	if err := run(context.Background(), []string{"-pasee", "not a url"}, io.Discard, nil); err == nil {
		t.Error("run accepted a Pasee URL that is not one")
	}
}

// start runs the service with args until stop, which returns run's error.
func start(t *testing.T, args ...string) (base string, logs *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs = &syncBuffer{}
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, logs, func(a net.Addr) { addr <- a }) }()
	select {
	case a := <-addr:
		base = "http://" + a.String()
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("the service did not start")
	}
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { _ = stop() })
	return base, logs, stop
}

func login(t *testing.T, pasee, user, password string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"login": user, "password": password})
	resp, err := http.Post(pasee+"/tokens/?idp=kisee", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var pair struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&pair); err != nil || resp.StatusCode != 201 {
		t.Fatalf("login %s: %d %v", user, resp.StatusCode, err)
	}
	return pair.AccessToken
}

func get(t *testing.T, url, token string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
