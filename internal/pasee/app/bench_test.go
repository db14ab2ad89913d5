package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/pasee"
	"github.com/kisee-pasee/suite/internal/pasee/app"
	"github.com/kisee-pasee/suite/internal/pasee/openid"
	"github.com/kisee-pasee/suite/internal/pgtest"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/internal/web"
	"github.com/kisee-pasee/suite/pkg/token"
)

// BenchmarkRefreshOverHTTP is POST /tokens/?refresh (Tokens) and the
// OpenID token endpoint's refresh_token grant (TokenEndpoint, which signs
// an ID token too) through a real listener and the binary's wiring, each
// client chaining its own session's refresh tokens, on SQLite and on
// PostgreSQL. Besides wall time it
// reports the processor time of this process per refresh (cpu-ns/op: the
// server and the HTTP client, which run here together) and, measured in
// the same run, the cost of a refresh's cryptography alone (1 ES256
// verification + 2 signatures, crypto-ns/op). Profile it with
//
//	go test -run '^$' -bench RefreshOverHTTP/SQLite/Tokens -benchtime 2000x -cpuprofile cpu.out ./internal/pasee/app
func BenchmarkRefreshOverHTTP(b *testing.B) {
	for _, engine := range []struct {
		name string
		url  func(b *testing.B) string
	}{
		{"SQLite", func(b *testing.B) string { return "sqlite:" + filepath.Join(b.TempDir(), "pasee.db") }},
		{"PostgreSQL", func(b *testing.B) string { return pgtest.URL(b) }},
	} {
		b.Run(engine.name, func(b *testing.B) {
			for _, door := range []string{"Tokens", "TokenEndpoint"} {
				b.Run(door, func(b *testing.B) { benchmarkRefresh(b, engine.url(b), door == "TokenEndpoint") })
			}
		})
	}
}

// The OpenID client of the token endpoint's benchmark.
const (
	benchClientID     = "bench"
	benchClientSecret = "bench-client-secret-long-enough"
)

func benchmarkRefresh(b *testing.B, storeURL string, tokenEndpoint bool) {
	ctx := context.Background()
	key, err := token.GenerateKey(token.ES256)
	if err != nil {
		b.Fatal(err)
	}
	pemKey, _ := key.MarshalPEM()
	src, err := settings.Parse("bench.toml", []byte(fmt.Sprintf(`hostname = "http://pasee.bench"
private_key = '''%s'''
[storage]
url = %q
[[identity_providers]]
name = "kisee"
protocol = "kisee"
endpoint = "http://127.0.0.1:1"
[[clients]]
id = %q
secret = %q
name = "Bench"
redirect_uris = ["http://127.0.0.1:9/callback"]
`, pemKey, storeURL, benchClientID, benchClientSecret)), "")
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := app.FromSource(src)
	if err != nil {
		b.Fatal(err)
	}
	// Logs as in production (pasee serve): the access log at info, through
	// a LogWriter, into a file.
	logs, err := os.Create(filepath.Join(b.TempDir(), "pasee.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logs.Close()
	lw := web.NewLogWriter(logs)
	defer lw.Close()
	a, err := app.New(ctx, cfg, app.Options{Logger: web.NewLogger("pasee", "text", "info", lw)})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	// A user in a few groups, as most are.
	for _, g := range []string{"dev", "dev.backend", "ops"} {
		if err := a.Store.EnsureGroup(ctx, "bench", g, time.Now()); err != nil {
			b.Fatal(err)
		}
		if err := a.Store.AddMember(ctx, "bench", g, "kisee-alice", time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	srv := httptest.NewServer(a.Server)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()

	var (
		mu     sync.Mutex
		chains []string
	)
	// The token endpoint's sessions are the code grant's: its claims name
	// the client and the scope.
	var claims map[string]any
	if tokenEndpoint {
		claims = map[string]any{"client_id": benchClientID, "scope": "openid groups offline_access"}
	}
	login := func() string {
		p, err := a.Service.LoginWithIdentity(ctx, "kisee", pasee.Identity{Subject: "alice", Claims: claims})
		if err != nil {
			b.Fatal(err)
		}
		return p.RefreshToken
	}
	refresh := func(raw string) (string, error) {
		req, _ := http.NewRequest("POST", srv.URL+"/tokens/?refresh", nil)
		req.Header.Set("Authorization", "Bearer "+raw)
		want := http.StatusCreated
		if tokenEndpoint {
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {raw}}
			req, _ = http.NewRequest("POST", srv.URL+openid.PathToken, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(benchClientID, benchClientSecret)
			want = http.StatusOK
		}
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != want {
			return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		var p struct {
			RefreshToken string `json:"refresh_token"`
		}
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&p); err != nil {
			return "", err
		}
		return p.RefreshToken, nil
	}
	crypto := cryptoCost(b, key)

	var failed atomic.Int64
	b.SetParallelism(4) // 4 × GOMAXPROCS clients, as a loaded server sees
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		raw := login()
		mu.Lock()
		chains = append(chains, raw)
		mu.Unlock()
		for pb.Next() {
			next, err := refresh(raw)
			if err != nil {
				failed.Add(1)
				b.Error(err)
				return
			}
			raw = next
		}
	})
	cpu := processCPU() - cpu0
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d refreshes failed", n)
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(crypto.Nanoseconds()), "crypto-ns/op")
}

// cryptoCost is the processor time of a refresh's cryptography alone: one
// ES256 verification and two signatures, with key.
func cryptoCost(b *testing.B, key *token.PrivateKey) time.Duration {
	signer := token.NewSigner(key)
	verifier := token.NewVerifier(token.NewStaticKeySet(key.Public()), token.WithIssuer("i"), token.WithTypes(token.TypeRefresh))
	claims := token.Claims{Issuer: "i", Subject: "kisee-alice", IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour), ID: "jti"}
	raw, err := signer.Sign(token.TypeRefresh, claims)
	if err != nil {
		b.Fatal(err)
	}
	const n = 300
	start := processCPU()
	for range n {
		if _, err := verifier.Verify(context.Background(), raw); err != nil {
			b.Fatal(err)
		}
		for range 2 {
			if _, err := signer.Sign(token.TypeRefresh, claims); err != nil {
				b.Fatal(err)
			}
		}
	}
	return (processCPU() - start) / n
}

// processCPU is the processor time (user + system) this process used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
