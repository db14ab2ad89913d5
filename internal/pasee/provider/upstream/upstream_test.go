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
