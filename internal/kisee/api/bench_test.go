package api_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/kisee/app"
	"github.com/kisee-pasee/suite/internal/password"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/pkg/token"
)

// hashRate measures how many argon2id verifications per second this
// machine does on all cores, with the parameters Kisee uses.
func hashRate(b *testing.B, params password.Params, d time.Duration) float64 {
	h := password.NewHasher(params, 0)
	enc, err := h.Hash(context.Background(), "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	n := 0
	deadline := time.Now().Add(d)
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if _, err := h.Verify(context.Background(), enc, "correct horse battery staple"); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				n++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkLoginOverHTTP is POST /jwt/ through a real listener, with the
// sql backend on SQLite and the production argon2id parameters; it reports
// its rate as a ratio to the raw hash rate measured in the same run (the
// bound: a login is one verification, and nothing else should cost much).
func BenchmarkLoginOverHTTP(b *testing.B) {
	key, _ := token.GenerateKey(token.ES256)
	pemKey, _ := key.MarshalPEM()
	dir := b.TempDir()
	src, err := settings.Parse("bench.toml", []byte(`[identity_backend]
class = "sql"
[identity_backend.options]
url = "sqlite:`+filepath.Join(dir, "kisee.db")+`"
[jwt]
private_key = '''`+string(pemKey)+`'''
[rate_limit]
max_failures = 1000000
`), "")
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := app.FromSource(src)
	if err != nil {
		b.Fatal(err)
	}
	a, err := app.New(context.Background(), cfg, app.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	reg, ok := a.Service.Backend().(kisee.Registerer)
	if !ok {
		b.Fatal("sql backend cannot register")
	}
	if _, err := reg.Register(context.Background(), kisee.NewUser{Username: "alice", Password: "correct horse battery staple"}); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(a.Server)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	body := []byte(`{"username":"alice","password":"correct horse battery staple"}`)

	bound := hashRate(b, password.OWASP, 2*time.Second)
	b.SetParallelism(2) // clients outnumber hashing slots: the hasher is never idle
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(srv.URL+"/jwt/", "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	rate := float64(b.N) / time.Since(start).Seconds()
	b.ReportMetric(rate, "logins/s")
	b.ReportMetric(bound, "hashes/s")
	b.ReportMetric(rate/bound, "ratio")
}
