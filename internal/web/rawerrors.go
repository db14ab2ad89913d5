package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
)

// problemListener wraps the connections of a listener so that the errors
// net/http writes itself, before any handler runs — a request line it
// cannot parse (GET /%zz), headers over the transport's hard limit, an
// unknown transfer encoding — go out as problem documents like every other
// error, not as text/plain.
type problemListener struct{ net.Listener }

func (l problemListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return problemConn{c}, nil
}

type problemConn struct{ net.Conn }

// Write passes responses through, except net/http's canned error
// responses, recognised by their fixed header block: handlers' responses
// always carry a Date header, and their headers are written in sorted
// order, so Content-Type never precedes Connection there.
func (c problemConn) Write(p []byte) (int, error) {
	if q, ok := cannedErrorAsProblem(p); ok {
		if _, err := c.Conn.Write(q); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

const cannedErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

func cannedErrorAsProblem(p []byte) ([]byte, bool) {
	const proto = "HTTP/1.1 "
	if !bytes.HasPrefix(p, []byte(proto)) || len(p) < len(proto)+3 {
		return nil, false
	}
	i := bytes.Index(p, []byte(cannedErrorHeaders))
	if i < 0 || bytes.Contains(p[:i], []byte("\r\n")) {
		return nil, false
	}
	code, err := strconv.Atoi(string(p[len(proto) : len(proto)+3]))
	if err != nil || code < 400 {
		return nil, false
	}
	detail := "The request could not be read: " + string(p[i+len(cannedErrorHeaders):]) + "."
	if code == http.StatusBadRequest {
		detail = "The request could not be parsed: its request line, path (an invalid %-escape such as %zz) or headers are malformed."
	}
	body, err := json.Marshal(NewProblem(code, http.StatusText(code), detail))
	if err != nil {
		return nil, false
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s%d %s\r\n", proto, code, http.StatusText(code))
	fmt.Fprintf(&b, "Content-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n", ProblemContentType, len(body))
	b.WriteString("X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n\r\n")
	b.Write(body)
	return b.Bytes(), true
}
