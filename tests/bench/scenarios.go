package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync/atomic"
	"time"
)

// Plan is how much load each scenario sends.
type Plan struct {
	// LoginLevels are the concurrency levels of Kisee's POST /jwt/ and of
	// Pasee's login through Kisee; RefreshLevels those of the refresh.
	LoginLevels, RefreshLevels []int
	// LoginRequests and RefreshRequests bound the requests of one level,
	// LevelTime its duration.
	LoginRequests, RefreshRequests int
	// GroupRequests bounds each measurement of scenario 4.
	GroupRequests int
	LevelTime     time.Duration
	// BoundTime is how long each in-process bound is measured at the
	// start and at the end; PairTime how long the bound paired with each
	// level is.
	BoundTime, PairTime time.Duration
	// Users is how many Kisee users the login scenarios cycle through.
	Users int
	// Retries is how many times a level disturbed by other processes
	// (their load above Disturbed, a share of the machine) is run again;
	// the least disturbed run is kept.
	Retries   int
	Disturbed float64
	// SkipLogins leaves out the login levels of scenarios 1, 3 and 7 (the
	// refreshes still start from logins).
	SkipLogins bool
}

// quiet runs measure (one level: a bound and the runs paired with it) and
// runs it again, up to p.Retries times, while other processes took more
// than p.Disturbed of the machine; keep receives the least disturbed runs.
func (p Plan) quiet(measure func() ([]Summary, error), keep func([]Summary)) error {
	var best []Summary
	bestLoad := 2.0
	for attempt := 0; ; attempt++ {
		runs, err := measure()
		if err != nil {
			return err
		}
		load := 0.0
		for _, r := range runs {
			load = max(load, r.OtherLoad(runtime.NumCPU()), r.Bound.Other)
		}
		if load < bestLoad {
			best, bestLoad = runs, load
		}
		if bestLoad <= p.Disturbed || attempt >= p.Retries {
			keep(best)
			return nil
		}
		logf("  other processes took %.0f%% of the machine: measuring the level again", 100*load)
	}
}

// logf prints a progress line on standard error.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// describe prints one level's figures as they come.
func describe(what string, s Summary) {
	bound := ""
	if s.Bound.PerSec > 0 {
		bound = fmt.Sprintf("  bound %.1f/s (other load %.0f%%), ratio %.2f (CPU %.2f)", s.Bound.PerSec, 100*s.Bound.Other, s.BoundRatio(), s.CPURatio())
	}
	logf("  %-34s c=%-3d %8.1f req/s  p50 %-9s p99 %-9s errors %d, other load %2.0f%%%s%s", what, s.Concurrency, s.RPS(),
		s.P50.Round(10*time.Microsecond), s.P99.Round(10*time.Microsecond), s.Errors, 100*s.OtherLoad(runtime.NumCPU()), bound, errSuffix(s))
}

// errSuffix describes a level's first error, if any.
func errSuffix(s Summary) string {
	if s.FirstError == "" {
		return ""
	}
	return " (first: " + s.FirstError + ")"
}

// BackendResults are the figures of scenarios 1, 2 and 3 on one store.
type BackendResults struct {
	Backend string
	// KiseeLogin is Kisee's POST /jwt/ (scenario 1), PaseeLogin Pasee's
	// POST /tokens/?idp=kisee (scenario 3), Refresh Pasee's POST
	// /tokens/?refresh (scenario 2), one Summary per concurrency level.
	// Refresh's server CPU is Pasee's alone.
	KiseeLogin, PaseeLogin, Refresh []Summary
	// ScaleOut is scenario 2 on two Pasee instances sharing the store
	// (PostgreSQL only), the virtual users spread over both; its server
	// CPU is both instances'.
	ScaleOut []Summary
	// CodeFlow is the OpenID authorization code round trip (authorize,
	// login page, code, token endpoint), paired with PaseeLogin's level;
	// TokenRefresh the token endpoint's refresh grant, paired with
	// Refresh's level (scenario 7).
	CodeFlow, TokenRefresh []Summary
	// Dex is Dex's token endpoint refresh grant on the same PostgreSQL,
	// paired with Refresh's level (when a Dex binary is given).
	Dex []Summary
}

// chain is the request of a virtual user that chains refresh tokens:
// spend spends tokens[w] and answers the next pair, whose refresh token
// takes its place (seen, if not nil, gets the pair). A broken chain is an
// error; start (named again in errors) opens a new one for the user.
func chain(tokens []string, spend func(ctx context.Context, w int, refresh string) ([]byte, error),
	start func(ctx context.Context, w int) (string, error), again string, seen func(Pair)) RequestFunc {
	return func(ctx context.Context, w int) error {
		body, err := spend(ctx, w, tokens[w])
		if err == nil {
			var p Pair
			if p, err = parsePair(body); err == nil {
				tokens[w] = p.Refresh
				if seen != nil {
					seen(p)
				}
				return nil
			}
		}
		fresh, serr := start(ctx, w)
		if serr != nil {
			return fmt.Errorf("%v; and %s again: %v", err, again, serr)
		}
		tokens[w] = fresh
		return err
	}
}

// refreshOf is the refresh token of a token answer.
func refreshOf(body []byte, err error) (string, error) {
	if err != nil {
		return "", err
	}
	p, err := parsePair(body)
	return p.Refresh, err
}

// paired is a load run right after each level of another, with that level
// as its bound: what, how its servers' CPU is read, its requests, and the
// list its summaries go to.
type paired struct {
	what  string
	meter cpuMeter
	load  RequestFunc
	keep  *[]Summary
}

// Bounds measures the in-process bounds paired with each level.
type Bounds struct {
	Hash   *Hashing
	Crypto *ES256
	// HashTime and CryptoTime are how long each paired bound runs.
	HashTime, CryptoTime time.Duration
}

// RunServices runs scenarios 1, 3 and 2 on backend: it starts Kisee and
// Pasee on fresh stores and loads them level after level, each level just
// after its bound. Kisee alone and Pasee through Kisee alternate at each
// login level, so that their ratio compares runs made a few seconds apart.
// Before Pasee stops, onPasee (if not nil) is called with its URL and one
// of the access tokens it issued.
func RunServices(ctx context.Context, env *Env, plan Plan, b Bounds, backend string, onPasee func(paseeURL, access string)) (BackendResults, error) {
	res := BackendResults{Backend: backend}
	kiseeStore, err := env.StoreURL(ctx, backend, "kisee")
	if err != nil {
		return res, err
	}
	users := make([]string, plan.Users)
	for i := range users {
		users[i] = kiseeUser(i)
	}
	if err := SeedKisee(ctx, kiseeStore, users); err != nil {
		return res, err
	}
	kisee, err := env.StartKisee(ctx, kiseeStore)
	if err != nil {
		return res, err
	}
	defer env.Forget(kisee) //nolint:errcheck // stopping at the end of the scenario
	paseeStore, err := env.StoreURL(ctx, backend, "pasee")
	if err != nil {
		return res, err
	}
	pasee, err := env.StartPasee(ctx, paseeStore, kisee.URL)
	if err != nil {
		return res, err
	}
	defer env.Forget(pasee) //nolint:errcheck // stopping at the end of the scenario
	maxC := slices.Max(append(slices.Clone(plan.LoginLevels), plan.RefreshLevels...))
	client := NewClient(maxC)
	defer client.Close()
	bodies := make([][]byte, len(users))
	for i, u := range users {
		bodies[i] = loginBody(u, benchPassword)
	}
	var next atomic.Int64
	login := func(url string) RequestFunc {
		return func(ctx context.Context, _ int) error {
			i := int(next.Add(1)) % len(bodies)
			_, err := client.Expect(ctx, 201, "POST", url, bodies[i], "")
			return err
		}
	}
	kmeter := cpuMeter{servers: []int{kisee.Pid()}}
	meter := cpuMeter{servers: []int{kisee.Pid(), pasee.Pid()}}
	op, err := NewOpenID(ctx, client, pasee.URL)
	if err != nil {
		return res, fmt.Errorf("OpenID discovery: %w", err)
	}
	codeFlow := func(ctx context.Context, _ int) error {
		i := int(next.Add(1)) % len(users)
		_, err := op.RoundTrip(ctx, users[i])
		return err
	}

	logf("scenarios 1, 3 and 7 (%s): Kisee POST /jwt/, Pasee POST /tokens/?idp=kisee and the OpenID code flow, each level after the argon2id bound", backend)
	for _, c := range plan.LoginLevels {
		if plan.SkipLogins {
			break
		}
		var k, p, cf Summary
		err := plan.quiet(func() ([]Summary, error) {
			bound, err := b.Hash.Bound(ctx, b.HashTime)
			if err != nil {
				return nil, err
			}
			spec := LoadSpec{Concurrency: c, MaxRequests: plan.LoginRequests, MaxDuration: plan.LevelTime, Warmup: 1}
			k1 := RunLoad(ctx, spec, kmeter, login(kisee.URL+"/jwt/"))
			k1.Bound = bound
			describe("kisee POST /jwt/", k1)
			p1 := RunLoad(ctx, spec, meter, login(pasee.URL+"/tokens/?idp=kisee"))
			p1.Bound = Rate{PerSec: k1.RPS(), CPUPerOp: k1.CPU.PerRequest(k1.Requests).System(), Other: k1.OtherLoad(runtime.NumCPU())}
			describe("pasee POST /tokens/?idp=kisee", p1)
			cf1 := RunLoad(ctx, spec, meter, codeFlow)
			cf1.Bound = Rate{PerSec: p1.RPS(), CPUPerOp: p1.CPU.PerRequest(p1.Requests).System(), Other: p1.OtherLoad(runtime.NumCPU())}
			describe("pasee OpenID code flow round trip", cf1)
			return []Summary{k1, p1, cf1}, ctx.Err()
		}, func(runs []Summary) { k, p, cf = runs[0], runs[1], runs[2] })
		if err != nil {
			return res, err
		}
		res.KiseeLogin = append(res.KiseeLogin, k)
		res.PaseeLogin = append(res.PaseeLogin, p)
		res.CodeFlow = append(res.CodeFlow, cf)
	}

	logf("scenario 2 (%s): Pasee POST /tokens/?refresh, %d virtual users each chaining its refresh tokens", backend, maxC)
	// Each virtual user chains refresh tokens of its own: of POST
	// /tokens/?refresh from a login, of the token endpoint from the code
	// flow.
	loginAs := func(ctx context.Context, w int) (string, error) {
		return refreshOf(client.Expect(ctx, 201, "POST", pasee.URL+"/tokens/?idp=kisee", bodies[w%len(bodies)], ""))
	}
	authorizeAs := func(ctx context.Context, w int) (string, error) {
		return refreshOf(op.RoundTrip(ctx, users[w%len(users)]))
	}
	chains, opChains := make([]string, maxC), make([]string, maxC)
	for w := range chains {
		var err error
		if chains[w], err = loginAs(ctx, w); err != nil {
			return res, fmt.Errorf("login of virtual user %d: %w", w, err)
		}
		if opChains[w], err = authorizeAs(ctx, w); err != nil {
			return res, fmt.Errorf("code flow of virtual user %d: %w", w, err)
		}
	}
	wires := NewWires(maxC)
	defer func() {
		for _, w := range wires {
			w.Close()
		}
	}()
	var lastAccess atomic.Pointer[string]
	// refreshAt chains virtual user w's refresh tokens on the instance at
	// urls[w % len(urls)].
	refreshAt := func(urls ...string) RequestFunc {
		return chain(chains, func(ctx context.Context, w int, refresh string) ([]byte, error) {
			status, body, err := wires[w].Post(ctx, urls[w%len(urls)]+"/tokens/?refresh", nil, "Authorization", "Bearer "+refresh)
			if err == nil && status != 201 {
				err = fmt.Errorf("POST /tokens/?refresh: status %d, want 201: %.200s", status, body)
			}
			return body, err
		}, loginAs, "login", func(p Pair) { lastAccess.Store(&p.Access) })
	}
	// Pasee's CPU alone: Kisee is idle during the refreshes.
	pmeter := cpuMeter{servers: []int{pasee.Pid()}}
	tokenRefresh := chain(opChains, func(ctx context.Context, w int, refresh string) ([]byte, error) {
		return op.RefreshOn(ctx, wires[w], refresh)
	}, authorizeAs, "the code flow", nil)
	pairs := []paired{{"pasee token endpoint refresh grant", pmeter, tokenRefresh, &res.TokenRefresh}}
	stopDex := func() {}
	if backend == "postgres" && env.Dex != "" {
		dex, err := env.StartDex(ctx, maxC)
		if err != nil {
			return res, err
		}
		// Dex stops once its levels are measured, before the scale-out's.
		stopDex = func() { _ = env.Forget(dex.Proc) }
		defer stopDex()
		dexChains := make([]string, maxC)
		for w := range dexChains {
			if dexChains[w], err = dex.Login(ctx, w); err != nil {
				return res, fmt.Errorf("dex login of virtual user %d: %w", w, err)
			}
		}
		dexRefresh := chain(dexChains, func(ctx context.Context, w int, refresh string) ([]byte, error) {
			return dex.RefreshOn(ctx, wires[w], refresh)
		}, dex.Login, "the password grant", nil)
		pairs = append(pairs, paired{"dex token endpoint refresh grant", cpuMeter{servers: []int{dex.Proc.Pid()}}, dexRefresh, &res.Dex})
	}
	// refreshLevels runs load at every refresh level; the paired runs run
	// right after it on the same store, with it as their bound.
	refreshLevels := func(what string, meter cpuMeter, load RequestFunc, keep *[]Summary, pairs ...paired) error {
		for _, c := range plan.RefreshLevels {
			err := plan.quiet(func() ([]Summary, error) {
				bound, err := b.Crypto.RefreshBound(ctx, b.CryptoTime)
				if err != nil {
					return nil, err
				}
				spec := LoadSpec{Concurrency: c, MaxRequests: plan.RefreshRequests, MaxDuration: plan.LevelTime, Warmup: 5}
				s := RunLoad(ctx, spec, meter, load)
				s.Bound = bound
				describe(what, s)
				runs := []Summary{s}
				for _, p := range pairs {
					t := RunLoad(ctx, spec, p.meter, p.load)
					t.Bound = Rate{PerSec: s.RPS(), CPUPerOp: s.CPU.PerRequest(s.Requests).System(), Other: s.OtherLoad(runtime.NumCPU())}
					describe(p.what, t)
					runs = append(runs, t)
				}
				return runs, ctx.Err()
			}, func(runs []Summary) {
				*keep = append(*keep, runs[0])
				for i, p := range pairs {
					*p.keep = append(*p.keep, runs[i+1])
				}
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := refreshLevels("pasee POST /tokens/?refresh", pmeter, refreshAt(pasee.URL), &res.Refresh, pairs...); err != nil {
		return res, err
	}
	stopDex()
	if backend == "postgres" {
		// Scale-out: a second instance on the same database, as behind a
		// load balancer; the sessions opened on the first are refreshed on
		// both.
		logf("scenario 2 (%s): two Pasee instances on one PostgreSQL, %d virtual users spread over both", backend, maxC)
		second, err := env.StartPaseeLike(ctx, pasee)
		if err != nil {
			return res, fmt.Errorf("second pasee: %w", err)
		}
		defer env.Forget(second) //nolint:errcheck // stopping at the end of the scenario
		both := cpuMeter{servers: []int{pasee.Pid(), second.Pid()}}
		if err := refreshLevels("2 × pasee POST /tokens/?refresh", both, refreshAt(pasee.URL, second.URL), &res.ScaleOut); err != nil {
			return res, err
		}
	}
	if p := lastAccess.Load(); p != nil && onPasee != nil {
		onPasee(pasee.URL, *p)
	}
	return res, nil
}

// Footprint is scenario 6 for one binary on SQLite.
type Footprint struct {
	Name string
	// FirstStart is exec to /health 200 on a fresh database (migrations,
	// and for Kisee the creation of root, one argon2id hash); Restarts are
	// the same on the existing database.
	FirstStart time.Duration
	Restarts   []time.Duration
	// RSSStart is VmRSS at the first /health 200; RSSIdle after a few
	// requests and a second idle; HWM the peak (VmHWM); RSSRestart VmRSS
	// at /health 200 after the last restart; all in KiB.
	RSSStart, RSSIdle, HWM, RSSRestart int64
	// Requests describes the requests sent before RSSIdle was read.
	Requests string
}

// MedianRestart is the median of the restart times.
func (f Footprint) MedianRestart() time.Duration {
	if len(f.Restarts) == 0 {
		return 0
	}
	r := slices.Clone(f.Restarts)
	slices.Sort(r)
	return r[len(r)/2]
}

// RunFootprint measures cold start and idle RSS of Kisee and Pasee on
// SQLite (scenario 6), each restarted restarts times.
func RunFootprint(ctx context.Context, env *Env, restarts int) ([]Footprint, error) {
	logf("scenario 6: cold start and idle RSS on SQLite")
	kiseeStore, _ := env.StoreURL(ctx, "sqlite", "kisee")
	kisee, err := env.StartKisee(ctx, kiseeStore)
	if err != nil {
		return nil, err
	}
	kf := Footprint{Name: "kisee", FirstStart: kisee.StartTime}
	kf.RSSStart, _, _ = rssKiB(kisee.Pid())
	if err := SeedKisee(ctx, kiseeStore, []string{kiseeUser(0), kiseeUser(1)}); err != nil {
		return nil, err
	}
	client := NewClient(2)
	defer client.Close()
	body := loginBody(kiseeUser(0), benchPassword)
	for range 3 {
		if _, err := client.Expect(ctx, 201, "POST", kisee.URL+"/jwt/", body, ""); err != nil {
			return nil, err
		}
	}
	for _, path := range []string{"/health", "/jwks.json", "/"} {
		if _, err := client.Expect(ctx, 200, "GET", kisee.URL+path, nil, ""); err != nil {
			return nil, err
		}
	}
	kf.Requests = "3 × POST /jwt/, GET /health, /jwks.json, /"

	paseeStore, _ := env.StoreURL(ctx, "sqlite", "pasee")
	pasee, err := env.StartPasee(ctx, paseeStore, kisee.URL)
	if err != nil {
		return nil, err
	}
	pf := Footprint{Name: "pasee", FirstStart: pasee.StartTime}
	pf.RSSStart, _, _ = rssKiB(pasee.Pid())
	var pair Pair
	for range 3 {
		b, err := client.Expect(ctx, 201, "POST", pasee.URL+"/tokens/?idp=kisee", body, "")
		if err != nil {
			return nil, err
		}
		if pair, err = parsePair(b); err != nil {
			return nil, err
		}
	}
	for range 3 {
		b, err := client.Expect(ctx, 201, "POST", pasee.URL+"/tokens/?refresh", nil, pair.Refresh)
		if err != nil {
			return nil, err
		}
		if pair, err = parsePair(b); err != nil {
			return nil, err
		}
	}
	if _, err := client.Expect(ctx, 200, "GET", pasee.URL+"/groups/", nil, pair.Access); err != nil {
		return nil, err
	}
	for _, path := range []string{"/health", "/jwks.json"} {
		if _, err := client.Expect(ctx, 200, "GET", pasee.URL+path, nil, ""); err != nil {
			return nil, err
		}
	}
	pf.Requests = "3 × login through Kisee, 3 × refresh, GET /groups/, /health, /jwks.json"
	client.Close() // idle means no open connection either
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	kf.RSSIdle, kf.HWM, _ = rssKiB(kisee.Pid())
	pf.RSSIdle, pf.HWM, _ = rssKiB(pasee.Pid())

	for range restarts {
		if pasee, err = env.Restart(ctx, pasee); err != nil {
			return nil, err
		}
		pf.Restarts = append(pf.Restarts, pasee.StartTime)
		pf.RSSRestart, _, _ = rssKiB(pasee.Pid())
	}
	if err := env.Forget(pasee); err != nil {
		return nil, err
	}
	for range restarts {
		if kisee, err = env.Restart(ctx, kisee); err != nil {
			return nil, err
		}
		kf.Restarts = append(kf.Restarts, kisee.StartTime)
		kf.RSSRestart, _, _ = rssKiB(kisee.Pid())
	}
	if err := env.Forget(kisee); err != nil {
		return nil, err
	}
	for _, f := range []Footprint{kf, pf} {
		logf("  %s: first start %s, restart median %s, RSS at first start %.1f MiB, at restart %.1f MiB, idle %.1f MiB (peak %.1f MiB)",
			f.Name, f.FirstStart.Round(time.Millisecond), f.MedianRestart().Round(time.Millisecond),
			mib(f.RSSStart), mib(f.RSSRestart), mib(f.RSSIdle), mib(f.HWM))
	}
	return []Footprint{kf, pf}, nil
}

// mib converts KiB to MiB.
func mib(kib int64) float64 { return float64(kib) / 1024 }
