package attack

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/kisee/api"
	kiseeapp "github.com/kisee-pasee/suite/internal/kisee/app"
	sqlbackend "github.com/kisee-pasee/suite/internal/kisee/backend/sql"
	"github.com/kisee-pasee/suite/internal/kisee/mail/smtptest"
	"github.com/kisee-pasee/suite/internal/kisee/tokenstore"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/internal/password"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/internal/sqldb"
	"github.com/kisee-pasee/suite/internal/web"
	"github.com/kisee-pasee/suite/pkg/token"
)

// The timing statistic. Two samples of answer times are judged different
// — an enumeration oracle — when a Mann–Whitney U test rejects "same
// distribution" at p < maxP AND their medians differ by a factor beyond
// maxRatio. The rank test alone would flag differences of a few percent,
// which a loaded 2-core machine produces by chance; the ratio alone could
// be a fluke of a few slow samples. Together they are robust to noise and
// still catch the real failure, an unknown user answered without hashing
// (ratios of 2 to 50).
const (
	maxP     = 1e-3
	maxRatio = 1.5
	samples  = 64 // per group
)

// timing is the verdict on two samples.
type timing struct {
	medianA, medianB time.Duration
	ratio            float64 // medianA / medianB
	p                float64 // two-sided Mann–Whitney p-value
	a12              float64 // Vargha–Delaney A: P(a > b), 0.5 when alike
}

func (v timing) distinguishable() bool {
	return v.p < maxP && (v.ratio > maxRatio || v.ratio < 1/maxRatio)
}

func (v timing) String() string {
	return fmt.Sprintf("medians %v vs %v (ratio %.3f), Mann–Whitney p = %.3g, A = %.2f", v.medianA.Round(10*time.Microsecond), v.medianB.Round(10*time.Microsecond), v.ratio, v.p, v.a12)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// compare computes the statistic of a against b.
func compare(a, b []time.Duration) timing {
	u, p := mannWhitney(a, b)
	ma, mb := median(a), median(b)
	return timing{medianA: ma, medianB: mb, ratio: float64(ma) / float64(mb), p: p, a12: u / float64(len(a)*len(b))}
}

// mannWhitney returns U of a (the number of pairs where a is larger,
// ties counting half) and the two-sided p-value of the normal
// approximation, with tie and continuity corrections.
func mannWhitney(a, b []time.Duration) (u, p float64) {
	type obs struct {
		v     time.Duration
		fromA bool
	}
	all := make([]obs, 0, len(a)+len(b))
	for _, v := range a {
		all = append(all, obs{v, true})
	}
	for _, v := range b {
		all = append(all, obs{v, false})
	}
	slices.SortFunc(all, func(x, y obs) int { return int(x.v - y.v) })
	n1, n2, n := float64(len(a)), float64(len(b)), float64(len(all))
	rankA, ties := 0.0, 0.0
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		rank := float64(i+j+1) / 2 // mean of ranks i+1 .. j
		for k := i; k < j; k++ {
			if all[k].fromA {
				rankA += rank
			}
		}
		t := float64(j - i)
		ties += t*t*t - t
		i = j
	}
	u = rankA - n1*(n1+1)/2
	mu := n1 * n2 / 2
	sigma := math.Sqrt(n1 * n2 / 12 * ((n + 1) - ties/(n*(n-1))))
	if sigma == 0 {
		return u, 1
	}
	z := math.Max(math.Abs(u-mu)-0.5, 0) / sigma
	return u, math.Erfc(z / math.Sqrt2)
}

// probe is one kind of request, for a known or an unknown account.
type probe func(i int, known bool) *http.Request

// measure sends n requests of each kind, in a random interleaving
// (so that load on the machine falls on both alike), each from its own
// client address (so that brute-force delays never apply), and returns
// the answer times, checking that every answer has the same status, body
// and headers as the first.
func measure(t *testing.T, n int, send probe) (known, unknown []time.Duration) {
	t.Helper()
	order := make([]bool, 0, 2*n)
	for range n {
		order = append(order, true, false)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	c := &http.Client{Timeout: 30 * time.Second}
	var first *response
	for i, k := range order {
		req := send(i, k)
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", i/65536%256, i/256%256, i%256+1))
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		r := &response{status: resp.StatusCode, header: resp.Header, body: body.Bytes()}
		if first == nil {
			first = r
		} else if r.status != first.status || !bytes.Equal(r.body, first.body) {
			t.Fatalf("answer %d (known %v): %d %s; first answer %d %s", i, k, r.status, r.body, first.status, first.body)
		}
		for _, h := range []string{"Content-Type", "Content-Length", "WWW-Authenticate", "Cache-Control", "Retry-After"} {
			if r.header.Get(h) != first.header.Get(h) {
				t.Fatalf("answer %d (known %v): %s %q, first answer %q", i, k, h, r.header.Get(h), first.header.Get(h))
			}
		}
		if k {
			known = append(known, d)
		} else {
			unknown = append(unknown, d)
		}
	}
	return known, unknown
}

func post(url, body string) *http.Request {
	req, err := http.NewRequest("POST", url, bytes.NewBufferString(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

// startHashingKisee runs a Kisee as the kisee command does, with the real
// argon2id parameters (password.OWASP), on the sql backend, sending
// recovery email to srv; alice is registered.
func startHashingKisee(t *testing.T, srv *smtptest.Server) string {
	t.Helper()
	key, err := token.GenerateKey(token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	pemKey, _ := key.MarshalPEM()
	db := "sqlite:" + filepath.Join(t.TempDir(), "kisee.db")
	// Each sample comes from its own address, so that no pair is delayed;
	// max_failures is raised so that the account-wide slow-down (from
	// 10 × max_failures failures of alice, over both logins measured)
	// cannot start halfway through.
	doc := fmt.Sprintf("[server]\ntrusted_proxies = [\"127.0.0.1\"]\n[rate_limit]\nmax_failures = 1000\n[identity_backend]\nclass = \"sql\"\n[identity_backend.options]\nurl = %q\n"+
		"[email]\nhost = %q\nport = %d\nsender = \"kisee@example.com\"\nsecurity = \"none\"\n[jwt]\nprivate_key = '''%s'''\n", db, srv.Host, srv.Port, pemKey)
	src, err := settings.Parse("kisee.toml", []byte(doc), "")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := kiseeapp.FromSource(src)
	if err != nil {
		t.Fatal(err)
	}
	a, err := kiseeapp.New(context.Background(), cfg, kiseeapp.Options{Version: "test", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if _, err := a.Service.Backend().(kisee.Registerer).Register(context.Background(), kisee.NewUser{Username: "alice", Email: "alice@example.com", Password: alicePassword}); err != nil {
		t.Fatal(err)
	}
	return serve(t, a.Server)
}

// TestNoUserEnumeration measures, for Kisee's login, Pasee's login
// through that Kisee, and Kisee's password recovery, the answers for
// accounts that exist (with a wrong password) and for accounts that do
// not: the same status, body and headers every time, and answer times the
// statistic cannot tell apart. Kisee hashes with the production argon2id
// parameters, so that a missing hash would show.
func TestNoUserEnumeration(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	k := startHashingKisee(t, srv)
	p := serve(t, paseetest.Start(t, paseetest.SQLite, "trusted_proxies = [\"127.0.0.1\"]\n[rate_limit]\nmax_failures = 1000\n"+paseetest.KiseeProvider("kisee", k)).App.Server)

	for _, c := range []struct {
		name string
		send probe
	}{
		{"Kisee POST /jwt/", func(i int, known bool) *http.Request {
			if known {
				return post(k+"/jwt/", fmt.Sprintf(`{"username":"alice","password":"wrong password %d"}`, i))
			}
			return post(k+"/jwt/", fmt.Sprintf(`{"username":"nobody%d","password":"wrong password %d"}`, i, i))
		}},
		{"Pasee POST /tokens/?idp=kisee", func(i int, known bool) *http.Request {
			if known {
				return post(p+"/tokens/?idp=kisee", fmt.Sprintf(`{"login":"alice","password":"wrong password %d"}`, i))
			}
			return post(p+"/tokens/?idp=kisee", fmt.Sprintf(`{"login":"nobody%d","password":"wrong password %d"}`, i, i))
		}},
		{"Kisee POST /password_recoveries/", func(i int, known bool) *http.Request {
			if known {
				return post(k+"/password_recoveries/", `{"email":"alice@example.com"}`)
			}
			return post(k+"/password_recoveries/", fmt.Sprintf(`{"email":"nobody%d@example.com"}`, i))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			known, unknown := measure(t, samples, c.send)
			v := compare(known, unknown)
			t.Logf("%s, %d samples each, known vs unknown accounts: %s", c.name, samples, v)
			if v.distinguishable() {
				t.Errorf("known and unknown accounts are told apart by timing: %s", v)
			}
		})
	}
}

// leakyBackend answers an unknown user at once, without hashing: the
// classic enumeration bug, for the demonstration below.
type leakyBackend struct {
	*sqlbackend.Backend
}

func (l leakyBackend) Identify(ctx context.Context, username, pw string) (kisee.User, error) {
	if _, err := l.FindByUsername(ctx, username); err != nil {
		return kisee.User{}, kisee.ErrInvalidCredentials
	}
	return l.Backend.Identify(ctx, username, pw)
}

// TestTimingStatisticCatchesADifference shows that the statistic of
// TestNoUserEnumeration is not blind: it flags a Kisee whose backend skips
// the hash for unknown users (measured over HTTP like the real one, with
// the same argon2id parameters), and a sample against itself slowed down
// twofold; it does not flag two samples of one distribution.
func TestTimingStatisticCatchesADifference(t *testing.T) {
	ctx := context.Background()
	target, err := sqldb.ParseURL("sqlite:" + filepath.Join(t.TempDir(), "leaky.db"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqldb.Open(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	logger := slog.New(slog.DiscardHandler)
	if err := kiseeapp.Migrate(ctx, db, target.Dialect, logger); err != nil {
		t.Fatal(err)
	}
	backend := sqlbackend.New(db, password.NewHasher(password.OWASP, 0), logger)
	if _, err := backend.Register(ctx, kisee.NewUser{Username: "alice", Email: "alice@example.com", Password: alicePassword}); err != nil {
		t.Fatal(err)
	}
	key, err := token.GenerateKey(token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	ring := token.KeyRing{Current: key}
	svc := kisee.NewService(kisee.Config{Backend: leakyBackend{backend}, Tokens: tokenstore.New(db), Keys: ring, Issuer: "leaky", Logger: logger})
	s, err := web.New(web.Config{Name: "kisee", Logger: logger, TrustedProxies: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := api.Register(s, svc, api.Config{PublicURL: "http://leaky", Keys: ring}); err != nil {
		t.Fatal(err)
	}
	leaky := serve(t, s)
	// Fewer samples: the difference to find is large, and each known
	// sample costs a hash.
	known, unknown := measure(t, samples/2, func(i int, known bool) *http.Request {
		if known {
			return post(leaky+"/jwt/", `{"username":"alice","password":"wrong"}`)
		}
		return post(leaky+"/jwt/", fmt.Sprintf(`{"username":"nobody%d","password":"wrong"}`, i))
	})
	v := compare(known, unknown)
	t.Logf("leaky backend: %s", v)
	if !v.distinguishable() {
		t.Errorf("the statistic misses a backend that skips the hash for unknown users: %s", v)
	}

	// The same measured sample, and that sample slowed down twofold.
	doubled := make([]time.Duration, len(known))
	for i, d := range known {
		doubled[i] = 2 * d
	}
	if v := compare(doubled, known); !v.distinguishable() {
		t.Errorf("the statistic misses a twofold slowdown: %s", v)
	} else {
		t.Logf("twofold: %s", v)
	}
	// Two halves of one measured sample, taken alternately (so that the
	// machine's load drifts over both alike): alike.
	var even, odd []time.Duration
	for i, d := range known {
		if i%2 == 0 {
			even = append(even, d)
		} else {
			odd = append(odd, d)
		}
	}
	if v := compare(even, odd); v.distinguishable() {
		t.Errorf("the statistic flags two halves of one sample: %s", v)
	}
	// And synthetic noisy samples: a 2x shift is flagged, no shift is not.
	rng := rand.New(rand.NewPCG(1, 2))
	noisy := func(base time.Duration) []time.Duration {
		out := make([]time.Duration, samples)
		for i := range out {
			out[i] = time.Duration(float64(base) * math.Exp(rng.NormFloat64()*0.25)) // ±25 % lognormal noise
		}
		return out
	}
	if v := compare(noisy(50*time.Millisecond), noisy(25*time.Millisecond)); !v.distinguishable() {
		t.Errorf("the statistic misses a twofold difference under noise: %s", v)
	}
	if v := compare(noisy(50*time.Millisecond), noisy(50*time.Millisecond)); v.distinguishable() {
		t.Errorf("the statistic flags identical noisy distributions: %s", v)
	}
}
