// Package openapitest checks, during HTTP tests, that every response a
// service sends matches its OpenAPI description (docs/openapi): the test
// servers of kiseetest and paseetest wrap their handler with Wrap, so the
// descriptions cannot drift from the code unnoticed.
package openapitest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Validator validates responses against one OpenAPI description.
type Validator struct {
	router routers.Router
}

// New loads and checks spec. The servers of the description are dropped,
// so that routes match whatever host and port the test server has.
func New(spec []byte) (*Validator, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("load OpenAPI description: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("invalid OpenAPI description: %w", err)
	}
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("OpenAPI router: %w", err)
	}
	// JSON-Home is JSON; kin-openapi knows it only under the +json suffix.
	openapi3filter.RegisterBodyDecoder("application/json-home", openapi3filter.JSONBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	return &Validator{router: router}, nil
}

// Check validates one response to req. It returns nil for requests no
// operation of the description covers (unknown paths, wrong methods):
// those are the routes' 404 and 405, tested elsewhere.
func (v *Validator) Check(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := v.find(req)
	if err != nil {
		return nil
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(context.Background(), in)
}

// find locates the operation of req, trying the path with its trailing
// slash toggled too (the services answer both).
func (v *Validator) find(req *http.Request) (*routers.Route, map[string]string, error) {
	route, params, err := v.router.FindRoute(req)
	if err == nil {
		return route, params, nil
	}
	alt := *req
	u := *req.URL
	if strings.HasSuffix(u.Path, "/") {
		u.Path = strings.TrimSuffix(u.Path, "/")
	} else {
		u.Path += "/"
	}
	u.RawPath = ""
	alt.URL = &u
	return v.router.FindRoute(&alt)
}

// Wrap returns h, checking each response against the description and
// failing t when one does not match.
func (v *Validator) Wrap(t testing.TB, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		// Copy what the validator needs of the request before the handler
		// consumes it.
		req := r.Clone(r.Context())
		req.URL = &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
		req.Body = http.NoBody
		h.ServeHTTP(rec, r)
		if r.Method == http.MethodHead || r.Method == http.MethodOptions {
			return
		}
		if err := v.Check(req, rec.status, rec.Header(), rec.body.Bytes()); err != nil {
			t.Errorf("%s %s → %d does not match the OpenAPI description: %v\nbody: %.500s", r.Method, r.URL.RequestURI(), rec.status, err, rec.body.Bytes())
		}
	})
}

// recorder passes a response through while keeping a copy of it.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// Flush implements http.Flusher when the underlying writer does.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

var _ io.Writer = (*recorder)(nil)
