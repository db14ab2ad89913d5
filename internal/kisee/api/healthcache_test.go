package api_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
)

// /health and /status are public: 100 requests at once must not become
// 100 calls to the backend's upstream (here a remote backend's), whose
// health is cached for a second or two.
func TestHealthChecksAreCached(t *testing.T) {
	var calls atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(upstream.Close)
	k := kiseetest.Start(t, `[identity_backend]
class = "remote"
[identity_backend.options]
url = "`+upstream.URL+`/jwt/"
jwks_url = "`+upstream.URL+`/jwks.json"
`)
	var wg sync.WaitGroup
	for i := range 100 {
		path := "/health"
		if i%2 == 1 {
			path = "/status"
		}
		wg.Go(func() { Do(t, "GET", k.URL+path, nil, "Accept", "application/json") })
	}
	wg.Wait()
	t.Logf("100 requests to /health and /status: %d calls upstream", calls.Load())
	if n := calls.Load(); n == 0 || n > 4 {
		t.Errorf("100 requests to /health and /status made %d calls upstream; want 1 to 4 (cached)", n)
	}
}
