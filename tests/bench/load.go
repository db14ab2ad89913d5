package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// LoadSpec bounds one load run: it stops at MaxRequests requests or after
// MaxDuration, whichever comes first.
type LoadSpec struct {
	Concurrency int
	MaxRequests int
	MaxDuration time.Duration
	// Warmup is how many requests each worker sends before the
	// measurement starts (their answers are not counted).
	Warmup int
}

// RequestFunc sends one request as worker w (0 <= w < Concurrency) and
// returns an error unless the answer is the one expected. A worker's calls
// are sequential, so it may keep state (a refresh token) indexed by w.
type RequestFunc func(ctx context.Context, w int) error

// RunLoad runs fn on spec.Concurrency workers within spec's bounds and
// returns what it measured, with the processor time meter observed.
func RunLoad(ctx context.Context, spec LoadSpec, meter cpuMeter, fn RequestFunc) Summary {
	c := max(spec.Concurrency, 1)
	var (
		issued   atomic.Int64
		warm     sync.WaitGroup
		done     sync.WaitGroup
		mu       sync.Mutex
		all      []time.Duration
		errs     int
		firstErr string
		start    = make(chan struct{})
		deadline time.Time
	)
	warm.Add(c)
	done.Add(c)
	for w := range c {
		go func() {
			defer done.Done()
			for range spec.Warmup {
				if ctx.Err() != nil {
					break
				}
				_ = fn(ctx, w)
			}
			warm.Done()
			<-start
			lat := make([]time.Duration, 0, 256)
			nerr, first := 0, ""
			for ctx.Err() == nil && issued.Add(1) <= int64(spec.MaxRequests) && time.Now().Before(deadline) {
				t := time.Now()
				err := fn(ctx, w)
				d := time.Since(t)
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					nerr++
					if first == "" {
						first = err.Error()
					}
					continue
				}
				lat = append(lat, d)
			}
			mu.Lock()
			all = append(all, lat...)
			errs += nerr
			if firstErr == "" {
				firstErr = first
			}
			mu.Unlock()
		}()
	}
	warm.Wait()
	before := meter.snapshot()
	t0 := time.Now()
	deadline = t0.Add(spec.MaxDuration)
	close(start)
	done.Wait()
	elapsed := time.Since(t0)
	s := Summarize(c, all, errs, elapsed)
	s.FirstError = firstErr
	s.CPU = meter.since(before)
	return s
}
