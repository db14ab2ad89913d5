package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Wire sends the requests of the refresh levels, the cheapest of all, on
// one keep-alive HTTP/1.1 connection per virtual user and server, without
// net/http's Transport: no connection pool, no reader and writer
// goroutines per connection and no channel hand-offs per request. The
// request is written in one piece; the answer is read by net/http's own
// parser (http.ReadResponse). The load generator shares the cores with the
// servers and PostgreSQL: through the Transport it cost about 0.13 ms of
// processor time per refresh, as much as a third of Pasee's.
//
// A Wire is used by one worker at a time (RunLoad calls a worker's
// requests one after the other).
type Wire struct {
	conns map[string]*wireConn // by host:port
	buf   []byte
}

type wireConn struct {
	c  net.Conn
	br *bufio.Reader
}

// NewWires returns one Wire per virtual user.
func NewWires(n int) []*Wire {
	w := make([]*Wire, n)
	for i := range w {
		w[i] = &Wire{conns: map[string]*wireConn{}}
	}
	return w
}

// Close closes the connections.
func (w *Wire) Close() {
	for k, c := range w.conns {
		_ = c.c.Close()
		delete(w.conns, k)
	}
}

// Post sends POST rawURL with the given headers (name, value, ...) and
// body, and returns the status and body of the answer.
func (w *Wire) Post(ctx context.Context, rawURL string, body []byte, headers ...string) (int, []byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, nil, err
	}
	for attempt := 0; ; attempt++ {
		status, b, reused, err := w.post(ctx, u, body, headers)
		// A kept-alive connection the server closed meanwhile: once more
		// on a new one, as net/http does.
		if err != nil && reused && attempt == 0 && ctx.Err() == nil {
			continue
		}
		return status, b, err
	}
}

func (w *Wire) post(ctx context.Context, u *url.URL, body []byte, headers []string) (status int, b []byte, reused bool, err error) {
	c, ok := w.conns[u.Host]
	if !ok {
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return 0, nil, false, err
		}
		c = &wireConn{c: nc, br: bufio.NewReaderSize(nc, 8192)}
		w.conns[u.Host] = c
	}
	drop := func() {
		_ = c.c.Close()
		delete(w.conns, u.Host)
	}
	deadline := time.Now().Add(60 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.c.SetDeadline(deadline)
	req := append(w.buf[:0], "POST "...)
	req = append(req, u.RequestURI()...)
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, u.Host...)
	for i := 0; i+1 < len(headers); i += 2 {
		req = append(req, "\r\n"...)
		req = append(req, headers[i]...)
		req = append(req, ": "...)
		req = append(req, headers[i+1]...)
	}
	req = fmt.Appendf(req, "\r\nContent-Length: %d\r\n\r\n", len(body))
	req = append(req, body...)
	w.buf = req
	if _, err := c.c.Write(req); err != nil {
		drop()
		return 0, nil, ok, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		drop()
		return 0, nil, ok, err
	}
	b, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		drop()
	}
	return resp.StatusCode, b, false, err
}
