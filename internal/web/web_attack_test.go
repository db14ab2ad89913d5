package web

import (
	"strings"
	"testing"
)

// Headers beyond MaxHeaderBytes get a 431 problem document from the
// handlers (Go's server would answer a plain-text 431); a request just
// under the limit is served.
func TestHeaderLimit(t *testing.T) {
	_, srv, _ := testServer(t, Config{})
	resp, doc := do(t, "GET", srv.URL+"/ip", nil, "Authorization", "Bearer "+strings.Repeat("a", 64<<10))
	wantProblem(t, resp, doc, 431, "Request headers too large")
	resp, _ = do(t, "GET", srv.URL+"/ip", nil, "X-Pad", strings.Repeat("a", MaxHeaderBytes-1024))
	if resp.StatusCode != 200 {
		t.Fatalf("a request under the limit: %d", resp.StatusCode)
	}
}

// A browser request with an unsafe method from an origin that is not
// allowed is refused before it runs; the allowed origin, the server's own
// origin and requests without Origin (curl, services) pass, and safe
// methods are never refused (CORS keeps their answers from the page).
func TestCrossOriginUnsafeRequests(t *testing.T) {
	_, srv, _ := testServer(t, Config{CORS: CORSConfig{AllowedOrigins: []string{"https://app.example.com"}}})
	body := func() *strings.Reader { return strings.NewReader(`{"username":"x"}`) }
	for _, hdr := range [][]string{
		{"Origin", "https://evil.example", "Content-Type", "text/plain"},
		{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"},
		{"Origin", "null", "Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "cross-site"},
		{"Origin", "https://app.example.com.evil.example"},
	} {
		resp, doc := do(t, "POST", srv.URL+"/echo/", body(), hdr...)
		wantProblem(t, resp, doc, 403, "Origin not allowed")
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("%v: CORS headers on a refusal", hdr)
		}
	}
	for _, hdr := range [][]string{
		nil,
		{"Origin", "https://app.example.com", "Sec-Fetch-Site", "cross-site"},
		{"Origin", srv.URL},
		{"Origin", "https://anything.example", "Sec-Fetch-Site", "same-origin"},
		{"Sec-Fetch-Site", "none"},
	} {
		if resp, doc := do(t, "POST", srv.URL+"/echo/", body(), hdr...); resp.StatusCode != 201 {
			t.Fatalf("%v: %d %v", hdr, resp.StatusCode, doc)
		}
	}
	if resp, _ := do(t, "GET", srv.URL+"/ip", nil, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("cross-origin GET: %d %v", resp.StatusCode, resp.Header)
	}
	// "*" allows every origin, unsafe methods included.
	_, any, _ := testServer(t, Config{CORS: CORSConfig{AllowedOrigins: []string{"*"}}})
	if resp, doc := do(t, "POST", any.URL+"/echo/", body(), "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); resp.StatusCode != 201 {
		t.Fatalf("with *: %d %v", resp.StatusCode, doc)
	}
}
