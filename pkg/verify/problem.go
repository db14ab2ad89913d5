package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/kisee-pasee/suite/pkg/token"
)

// ErrNoToken is the cause of the Problem answered to a request without an
// "Authorization: Bearer" header: a request Optional lets through.
var ErrNoToken = errors.New("verify: no bearer token in the request")

// Problem is the answer to a refused request, an RFC 9457 problem document
// as Kisee and Pasee write theirs: Status, a short stable Title clients
// match on, a Detail for this occurrence, and the response headers that go
// with it (WWW-Authenticate for 401 and 403). It is an error; Err is the
// cause, for logs, never shown to the client.
type Problem struct {
	Status int
	Title  string
	Detail string
	Header http.Header
	Err    error
}

func (p *Problem) Error() string { return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail) }

// Unwrap returns the cause.
func (p *Problem) Unwrap() error { return p.Err }

// MarshalJSON writes the document with the "_type" and "_meta" members the
// clients of Kisee and Pasee read.
func (p *Problem) MarshalJSON() ([]byte, error) {
	type meta struct {
		Title string `json:"title"`
	}
	// Members in the order encoding/json writes a map's, so that the bytes
	// are those of the services' own documents.
	return json.Marshal(struct {
		Meta   meta   `json:"_meta"`
		Kind   string `json:"_type"`
		Detail string `json:"detail,omitempty"`
		Status int    `json:"status"`
		Title  string `json:"title"`
		Type   string `json:"type"`
	}{meta{p.Title}, "error", p.Detail, p.Status, p.Title, "about:blank"})
}

// WriteProblem answers r with p: its headers, Cache-Control: no-store,
// Content-Type application/problem+json and the document (no body for
// HEAD).
func WriteProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	h := w.Header()
	for name, values := range p.Header {
		for _, v := range values {
			h.Add(name, v)
		}
	}
	h.Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		w.WriteHeader(p.Status)
		return
	}
	body, err := json.Marshal(p)
	if err != nil { // cannot happen: the document is strings and an int
		body = []byte(`{"type":"about:blank","title":"Internal error","status":500}`)
	}
	h.Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}

// invalidToken is the 401 of a missing or refused token.
func invalidToken(title, detail string, cause error) *Problem {
	return &Problem{
		Status: http.StatusUnauthorized, Title: title, Detail: detail, Err: cause,
		Header: http.Header{"Www-Authenticate": {`Bearer error="invalid_token"`}},
	}
}

// tokenProblem is the answer to a token Verify refused: 401, or 503 when it
// could not be checked at all (Pasee's keys unreachable).
func tokenProblem(err error) *Problem {
	if errors.Is(err, token.ErrKeySetUnavailable) {
		return &Problem{Status: http.StatusServiceUnavailable, Title: "Service unavailable",
			Detail: "The token cannot be checked right now; retry shortly.", Err: err}
	}
	return invalidToken("Invalid token", err.Error(), err)
}
