package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/pkg/token"
)

func TestRollingCounterForgetsAfterAnHour(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	r := NewRollingCounter(func() time.Time { return now })
	for range 3 {
		r.Inc()
	}
	now = now.Add(30 * time.Minute)
	r.Inc()
	if got := r.LastHour(); got != 4 {
		t.Fatalf("after 30 min: %d, want 4", got)
	}
	now = now.Add(31 * time.Minute)
	if got := r.LastHour(); got != 1 {
		t.Fatalf("after 61 min: %d, want 1 (the first three are over an hour old)", got)
	}
	now = now.Add(2 * time.Hour)
	r.Inc()
	if got := r.LastHour(); got != 1 {
		t.Fatalf("after a wrap-around: %d, want 1", got)
	}
}

func TestStatusPage(t *testing.T) {
	key, _ := token.GenerateKey(token.ES256)
	prev, _ := token.GenerateKey(token.EdDSA)
	file := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-72 * time.Hour)
	_ = os.Chtimes(file, old, old)
	logins := NewRollingCounter(nil)
	logins.Inc()
	logins.Inc()
	healthy := true
	page := &StatusPage{
		Title: "Kisee", Version: "26.11.0", Started: time.Now().Add(-90 * time.Minute),
		Checks: []StatusCheck{{Name: "database", Check: func(context.Context) error {
			if healthy {
				return nil
			}
			return errors.New("db password=hunter2 refused")
		}}},
		Keys:     []StatusKey{{Key: key.Public(), Role: "current", File: file}, {Key: prev.Public(), Role: "previous"}},
		Counters: []StatusCounter{{Name: "logins", Counter: logins}},
	}
	s, err := New(Config{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	s.Route(http.MethodGet, "/status", page.Handler())
	srv := httptest.NewServer(s)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/status?format=json")
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	_ = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if resp.StatusCode != 200 || !st.Healthy || st.LastHour["logins"] != 2 || len(st.Keys) != 2 || st.Keys[0].KID != key.KeyID() || st.Keys[0].Age != "3 days" || st.Keys[1].Age != "" {
		t.Fatalf("JSON status %d %+v", resp.StatusCode, st)
	}
	if !strings.HasPrefix(st.Uptime, "1h30m") {
		t.Fatalf("uptime %q", st.Uptime)
	}

	healthy = false
	req, _ := http.NewRequest("GET", srv.URL+"/status", nil)
	req.Header.Set("Accept", "text/html")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	html := string(body)
	if resp.StatusCode != 503 || !strings.Contains(html, "unhealthy") || !strings.Contains(html, key.KeyID()) || !strings.Contains(html, `lang="en"`) {
		t.Fatalf("HTML status %d:\n%s", resp.StatusCode, html)
	}
	if strings.Contains(html, "hunter2") {
		t.Fatal("a check's cause leaked into the page")
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "style-src 'sha256-") || strings.Contains(csp, "unsafe") {
		t.Fatalf("CSP %q", csp)
	}
}
