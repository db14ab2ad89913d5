// Package httptestutil has the small HTTP client helpers the API tests of
// both services share: a request, its decoded body, and problem checks.
package httptestutil

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// Response is a response read in full.
type Response struct {
	*http.Response
	Body []byte
	JSON map[string]any
}

// Do sends a request with an optional body (string, []byte or a value
// encoded as JSON) and headers given as name, value pairs.
func Do(t testing.TB, method, url string, body any, headers ...string) *Response {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = bytes.NewBufferString(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := &Response{Response: resp, Body: raw}
	_ = json.Unmarshal(raw, &out.JSON)
	return out
}

// Bearer returns the Authorization header pair for a bearer token.
func Bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// WantStatus fails the test unless r has status.
func (r *Response) WantStatus(t testing.TB, status int) *Response {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", r.Request.Method, r.Request.URL.Path, r.StatusCode, status, r.Body)
	}
	return r
}

// WantProblem fails the test unless r is a problem document with status
// and title.
func (r *Response) WantProblem(t testing.TB, status int, title string) *Response {
	t.Helper()
	r.WantStatus(t, status)
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s %s: Content-Type %q, want application/problem+json", r.Request.Method, r.Request.URL.Path, ct)
	}
	if r.JSON["title"] != title || r.JSON["status"] != float64(status) {
		t.Fatalf("%s %s: problem %s, want title %q", r.Request.Method, r.Request.URL.Path, r.Body, title)
	}
	if d, _ := r.JSON["detail"].(string); d == "" {
		t.Fatalf("%s %s: problem without detail: %s", r.Request.Method, r.Request.URL.Path, r.Body)
	}
	return r
}
