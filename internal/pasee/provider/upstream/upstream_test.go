package upstream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// An upstream's JSON-Home links carry its public hostname, which Pasee may
// not reach (a container network): Pasee keeps their paths on the
// endpoint it was given. Relative links (the original services) resolve
// against the endpoint too.
func TestResourcesFollowTheConfiguredEndpoint(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"api":{"title":"Identification Provider"},"resources":{
			"jwt":{"href":"https://id.example.com/jwt/","hints":{}},
			"jwks":{"href":"/jwks.json","hints":{}},
			"users":{"href":"users/","hints":{}}}}`))
	}))
	defer srv.Close()
	c, err := New("kisee", srv.URL, Options{}, "JWT")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"jwt": srv.URL + "/jwt/", "jwks": srv.URL + "/jwks.json", "users": srv.URL + "/users/"} {
		got, err := c.Resource(context.Background(), name)
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := c.Resource(context.Background(), "nope"); err == nil {
		t.Error("missing resource found")
	}
}

// A JSON-Home href-template (the Kisee's token_status) is kept, variables
// intact, on the configured endpoint; a resource that is not advertised
// says so.
func TestTemplates(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"resources":{
			"jwt":{"href":"https://id.example.com/jwt/"},
			"token_status":{"href-template":"https://id.example.com/jwt/{jti}","href-vars":{"jti":"x"}}}}`))
	}))
	defer srv.Close()
	c, err := New("kisee", srv.URL, Options{}, "JWT")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if tmpl, ok, err := c.Template(ctx, "token_status"); err != nil || !ok || tmpl != srv.URL+"/jwt/{jti}" {
		t.Errorf("token_status: %q, %v, %v", tmpl, ok, err)
	}
	if _, ok, err := c.Template(ctx, "jwt"); err != nil || ok {
		t.Errorf("jwt has no template: %v, %v", ok, err)
	}
	if _, err := c.Resource(ctx, "token_status"); err == nil {
		t.Error("a template answered as a plain href")
	}
}
