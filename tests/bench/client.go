package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Client is a keep-alive HTTP client for the servers under test.
type Client struct {
	http *http.Client
}

// NewClient returns a client keeping up to conns idle connections per
// server, so that each worker reuses its own.
func NewClient(conns int) *Client {
	t := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4 * conns,
		MaxIdleConnsPerHost: conns + 4,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &Client{http: &http.Client{Transport: t, Timeout: 60 * time.Second}}
}

// Close drops the idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Do sends a request with an optional JSON body and bearer token and
// returns the status and body.
func (c *Client) Do(ctx context.Context, method, url string, body []byte, bearer string) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, b, nil
}

// Expect sends a request and fails unless it answers want.
func (c *Client) Expect(ctx context.Context, want int, method, url string, body []byte, bearer string) ([]byte, error) {
	status, b, err := c.Do(ctx, method, url, body, bearer)
	if err != nil {
		return nil, err
	}
	if status != want {
		return nil, fmt.Errorf("%s %s: status %d, want %d: %.200s", method, stripQuery(url), status, want, b)
	}
	return b, nil
}

// stripQuery hides a URL's query string (it may hold codes) in errors.
func stripQuery(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

// Pair is the token pair Pasee answers.
type Pair struct {
	Access, Refresh string
}

// jsonString extracts the string value of "key" from a flat JSON object
// without decoding the whole document: the load generator must cost the
// machine as little as possible. It falls back to encoding/json when the
// value holds escapes.
func jsonString(body []byte, key string) (string, bool) {
	needle := []byte(`"` + key + `":"`)
	i := bytes.Index(body, needle)
	if i < 0 {
		return jsonStringSlow(body, key)
	}
	rest := body[i+len(needle):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
		return jsonStringSlow(body, key)
	}
	return string(rest[:j]), true
}

// jsonStringSlow is jsonString through encoding/json.
func jsonStringSlow(body []byte, key string) (string, bool) {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return "", false
	}
	s, ok := m[key].(string)
	return s, ok
}

// parsePair reads Pasee's answer to a login or a refresh.
func parsePair(body []byte) (Pair, error) {
	a, ok1 := jsonString(body, "access_token")
	r, ok2 := jsonString(body, "refresh_token")
	if !ok1 || !ok2 || a == "" || r == "" {
		return Pair{}, fmt.Errorf("no token pair in %.200s", body)
	}
	return Pair{Access: a, Refresh: r}, nil
}

// loginBody is the JSON of a login, for Kisee and Pasee alike.
func loginBody(user, password string) []byte {
	b, _ := json.Marshal(map[string]string{"username": user, "login": user, "password": password})
	return b
}
