package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	kiseeapp "github.com/kisee-pasee/suite/internal/kisee/app"
	paseeapp "github.com/kisee-pasee/suite/internal/pasee/app"
	"github.com/kisee-pasee/suite/internal/settings"
	"github.com/kisee-pasee/suite/internal/web"
)

// ProfileResult is a CPU and allocation profile of one scenario, run
// in-process (the same settings and wiring as the binaries: app.FromSource,
// app.New, App.Run on a loopback listener).
type ProfileResult struct {
	Name string
	// Side is the pprof label of the goroutines profiled ("kisee" or
	// "pasee"): the server's, as opposed to the load generator's.
	Side     string
	Requests int
	RPS      float64
	// CPU is the server side's processor time (nanoseconds) and
	// Alloc the bytes it allocated, by category and top function.
	CPU, Alloc Breakdown
	// AllocsPerReq is the whole process's (client included) number of
	// heap allocations per request.
	AllocsPerReq float64
}

// CPUPerReq is the server side's processor time per request.
func (r ProfileResult) CPUPerReq() time.Duration {
	return time.Duration(r.CPU.Total / int64(max(r.Requests, 1)))
}

// BytesPerReq is what the server side allocated per request.
func (r ProfileResult) BytesPerReq() float64 {
	return float64(r.Alloc.Total) / float64(max(r.Requests, 1))
}

// inProcess is a Kisee or Pasee served by this process.
type inProcess struct {
	URL  string
	stop context.CancelFunc
	done chan error
}

// Close stops the server and waits for it to drain.
func (p *inProcess) Close() {
	p.stop()
	<-p.done
}

// serveLabelled runs run in a goroutine labelled side=label, so that the
// server's samples can be told from the load generator's.
func serveLabelled(ctx context.Context, label string, run func(context.Context) error) (context.CancelFunc, chan error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go pprof.Do(ctx, pprof.Labels("side", label), func(ctx context.Context) { done <- run(ctx) })
	return cancel, done
}

// startKiseeInProcess wires Kisee from a settings file's content, as
// cmd/kisee does, and serves it.
func startKiseeInProcess(ctx context.Context, dir, storeURL string, logLevel string) (*inProcess, error) {
	key, err := genKeyPEM()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	src, err := settings.Parse(filepath.Join(dir, "kisee.toml"), []byte(kiseeSettings(port, storeURL, key, logLevel)), "")
	if err != nil {
		return nil, err
	}
	cfg, err := kiseeapp.FromSource(src)
	if err != nil {
		return nil, err
	}
	logs, err := os.Create(filepath.Join(dir, "kisee-inprocess.log"))
	if err != nil {
		return nil, err
	}
	a, err := kiseeapp.New(ctx, cfg, kiseeapp.Options{Version: "bench", Logger: kiseeapp.NewLogger(cfg.Log, false, logs)})
	if err != nil {
		logs.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", a.Addr())
	if err != nil {
		a.Close()
		logs.Close()
		return nil, err
	}
	stop, done := serveLabelled(ctx, "kisee", func(ctx context.Context) error {
		defer logs.Close()
		defer a.Close()
		return a.Run(ctx, ln)
	})
	return &inProcess{URL: fmt.Sprintf("http://127.0.0.1:%d", port), stop: stop, done: done}, nil
}

// startPaseeInProcess wires Pasee as cmd/pasee does and serves it.
func startPaseeInProcess(ctx context.Context, dir, storeURL, kiseeURL, logLevel string) (*inProcess, error) {
	key, err := genKeyPEM()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	src, err := settings.Parse(filepath.Join(dir, "pasee.toml"), []byte(paseeSettings(port, storeURL, key, kiseeURL, logLevel)), "")
	if err != nil {
		return nil, err
	}
	cfg, err := paseeapp.FromSource(src)
	if err != nil {
		return nil, err
	}
	logs, err := os.Create(filepath.Join(dir, "pasee-inprocess.log"))
	if err != nil {
		return nil, err
	}
	a, err := paseeapp.New(ctx, cfg, paseeapp.Options{Version: "bench", Logger: web.NewLogger("pasee", cfg.Log.Format, cfg.Log.Level, logs)})
	if err != nil {
		logs.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", a.Addr())
	if err != nil {
		a.Close()
		logs.Close()
		return nil, err
	}
	stop, done := serveLabelled(ctx, "pasee", func(ctx context.Context) error {
		defer logs.Close()
		defer a.Close()
		return a.Run(ctx, ln)
	})
	return &inProcess{URL: fmt.Sprintf("http://127.0.0.1:%d", port), stop: stop, done: done}, nil
}

// Profiler collects the profiles of scenarios run in-process.
type Profiler struct {
	// Dir receives the .pprof files.
	Dir string
	// Top is how many functions each breakdown lists.
	Top int
}

// profile runs the load of fn under the CPU profiler, goroutines labelled
// side=client, and returns the server side's top functions.
func (p Profiler) profile(ctx context.Context, name, side string, spec LoadSpec, fn RequestFunc) (ProfileResult, error) {
	r := ProfileResult{Name: name, Side: side}
	base := filepath.Join(p.Dir, strings.NewReplacer(" ", "-", "/", "-", "?", "").Replace(name))
	cpuFile, allocBefore, allocAfter := base+".cpu.pprof", base+".allocs-before.pprof", base+".allocs.pprof"
	if err := writeProfile("allocs", allocBefore); err != nil {
		return r, err
	}
	f, err := os.Create(cpuFile)
	if err != nil {
		return r, err
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return r, err
	}
	var s Summary
	pprof.Do(ctx, pprof.Labels("side", "client"), func(ctx context.Context) {
		s = RunLoad(ctx, spec, cpuMeter{}, fn)
	})
	pprof.StopCPUProfile()
	f.Close()
	runtime.ReadMemStats(&after)
	if err := writeProfile("allocs", allocAfter); err != nil {
		return r, err
	}
	r.Requests, r.RPS = s.Requests, s.RPS()
	if s.Requests == 0 {
		return r, fmt.Errorf("profile %s: no successful request (%s)", name, s.FirstError)
	}
	r.AllocsPerReq = float64(after.Mallocs-before.Mallocs) / float64(s.Requests)
	if r.CPU, err = cpuBreakdown(cpuFile, side, p.Top); err != nil {
		return r, err
	}
	if r.Alloc, err = allocBreakdown(allocBefore, allocAfter, p.Top); err != nil {
		return r, err
	}
	logf("  profile %-38s %6d requests, %7.1f req/s; server: %s CPU, %.0f B allocated per request",
		name, s.Requests, s.RPS(), usec(r.CPUPerReq()), r.BytesPerReq())
	return r, nil
}

// writeProfile writes the named runtime profile to file, after a GC so
// that allocation counts are current.
func writeProfile(name, file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	runtime.GC()
	err = pprof.Lookup(name).WriteTo(f, 0)
	return errors.Join(err, f.Close())
}

// RunProfiles profiles Kisee's login, Pasee's login through Kisee and
// Pasee's refresh, all in-process on backend.
func RunProfiles(ctx context.Context, env *Env, p Profiler, backend string, d time.Duration) ([]ProfileResult, error) {
	logf("profiles (%s, in-process, %s each)", backend, d)
	dir := env.newDir("profiles")
	if p.Dir == "" {
		p.Dir = dir
	} else if err := os.MkdirAll(p.Dir, 0o755); err != nil {
		return nil, err
	}
	kiseeStore, err := env.StoreURL(ctx, backend, "kisee-profile")
	if err != nil {
		return nil, err
	}
	const users = 64
	names := make([]string, users)
	bodies := make([][]byte, users)
	for i := range names {
		names[i] = kiseeUser(i)
		bodies[i] = loginBody(names[i], benchPassword)
	}
	if err := SeedKisee(ctx, kiseeStore, names); err != nil {
		return nil, err
	}
	client := NewClient(16)
	defer client.Close()
	var next atomic.Int64
	login := func(url string) RequestFunc {
		return func(ctx context.Context, _ int) error {
			_, err := client.Expect(ctx, 201, "POST", url, bodies[int(next.Add(1))%users], "")
			return err
		}
	}
	spec := LoadSpec{Concurrency: 4, MaxRequests: 1 << 30, MaxDuration: d, Warmup: 1}

	// Kisee in this process, alone.
	k, err := startKiseeInProcess(ctx, dir, kiseeStore, env.LogLevel)
	if err != nil {
		return nil, err
	}
	if err := waitHealthy(ctx, k.URL); err != nil {
		k.Close()
		return nil, err
	}
	var out []ProfileResult
	r, err := p.profile(ctx, backend+" kisee POST /jwt/", "kisee", spec, login(k.URL+"/jwt/"))
	k.Close()
	if err != nil {
		return out, err
	}
	out = append(out, r)

	// Pasee in this process, with the Kisee binary as its provider.
	kp, err := env.StartKisee(ctx, kiseeStore)
	if err != nil {
		return out, err
	}
	defer env.Forget(kp) //nolint:errcheck // stopping at the end
	paseeStore, err := env.StoreURL(ctx, backend, "pasee-profile")
	if err != nil {
		return out, err
	}
	ps, err := startPaseeInProcess(ctx, dir, paseeStore, kp.URL, env.LogLevel)
	if err != nil {
		return out, err
	}
	defer ps.Close()
	if err := waitHealthy(ctx, ps.URL); err != nil {
		return out, err
	}
	if r, err = p.profile(ctx, backend+" pasee POST /tokens/?idp=kisee", "pasee", spec, login(ps.URL+"/tokens/?idp=kisee")); err != nil {
		return out, err
	}
	out = append(out, r)
	const c = 8
	chains := make([]string, c)
	for w := range chains {
		b, err := client.Expect(ctx, 201, "POST", ps.URL+"/tokens/?idp=kisee", bodies[w], "")
		if err != nil {
			return out, err
		}
		pair, err := parsePair(b)
		if err != nil {
			return out, err
		}
		chains[w] = pair.Refresh
	}
	refresh := func(ctx context.Context, w int) error {
		b, err := client.Expect(ctx, 201, "POST", ps.URL+"/tokens/?refresh", nil, chains[w])
		if err != nil {
			return err
		}
		pair, err := parsePair(b)
		if err == nil {
			chains[w] = pair.Refresh
		}
		return err
	}
	r, err = p.profile(ctx, backend+" pasee POST /tokens/?refresh", "pasee", LoadSpec{Concurrency: c, MaxRequests: 1 << 30, MaxDuration: d, Warmup: 5}, refresh)
	if err != nil {
		return out, err
	}
	return append(out, r), nil
}

// waitHealthy waits until each base URL answers GET /health with 200.
func waitHealthy(ctx context.Context, urls ...string) error {
	client := NewClient(1)
	defer client.Close()
	deadline := time.Now().Add(30 * time.Second)
	for _, u := range urls {
		for {
			status, _, err := client.Do(ctx, "GET", u+"/health", nil, "")
			if err == nil && status == 200 {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not healthy after 30 s", u)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}
