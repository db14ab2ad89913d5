package oauthtest

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// Authorize plays the browser at the provider: it follows authURL (the
// address a client sent the browser to) and returns the query the
// provider sent back to the client's redirect_uri (code and state, or
// error and state). The server must not be Interactive.
func Authorize(t testing.TB, authURL string) url.Values {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(authURL)
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("authorize: Location: %v", err)
	}
	return loc.Query()
}
