package main

import (
	"math"
	"slices"
	"time"
)

// Summary is what one bounded load run measured.
type Summary struct {
	Concurrency int
	// Requests counts completed requests that answered as expected; Errors
	// counts the others (transport errors and unexpected statuses).
	Requests int
	Errors   int
	// FirstError describes the first error, for the report.
	FirstError string
	// Elapsed is the wall time from the first request sent to the last
	// answer received.
	Elapsed time.Duration
	// Latencies of the successful requests.
	P50, P99, Mean, Max time.Duration
	// CPU is the processor time each component spent during the run
	// (server, postgres, client), when measured.
	CPU CPUUsage
	// Bound is the in-process bound measured just before the run (paired
	// with it, so that both see the machine in the same state), if any.
	Bound Rate
}

// BoundRatio is the rate divided by the paired bound's.
func (s Summary) BoundRatio() float64 { return Ratio(s.RPS(), s.Bound.PerSec) }

// CPURatio is the bound's processor time per operation divided by the
// processor time the servers and the database spent per request: the
// ratio the machine would reach with nothing else running on it (no load
// generator, no other users).
func (s Summary) CPURatio() float64 {
	if s.Requests == 0 {
		return Ratio(0, 0)
	}
	return Ratio(float64(s.Bound.CPUPerOp), float64(s.CPU.PerRequest(s.Requests).System()))
}

// OtherLoad is the share of the machine (0 to 1) that processes other
// than the ones measured used during the run.
func (s Summary) OtherLoad(cores int) float64 {
	if s.Elapsed <= 0 || cores <= 0 {
		return 0
	}
	return float64(s.CPU.Other) / float64(s.Elapsed) / float64(cores)
}

// RPS is the rate of successful requests per second.
func (s Summary) RPS() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Requests) / s.Elapsed.Seconds()
}

// Summarize computes the percentiles of latencies, which it sorts in place.
func Summarize(concurrency int, latencies []time.Duration, errors int, elapsed time.Duration) Summary {
	slices.Sort(latencies)
	s := Summary{Concurrency: concurrency, Requests: len(latencies), Errors: errors, Elapsed: elapsed}
	if len(latencies) == 0 {
		return s
	}
	s.P50 = Percentile(latencies, 50)
	s.P99 = Percentile(latencies, 99)
	s.Max = latencies[len(latencies)-1]
	var total time.Duration
	for _, l := range latencies {
		total += l
	}
	s.Mean = total / time.Duration(len(latencies))
	return s
}

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value such that at least p percent of
// the values are less than or equal to it. It returns 0 for no values.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Ratio returns measured/bound, or NaN when the bound is not positive (not
// measured, or nothing could be done).
func Ratio(measured, bound float64) float64 {
	if bound <= 0 || math.IsNaN(bound) || math.IsNaN(measured) {
		return math.NaN()
	}
	return measured / bound
}

// Best returns the summary with the highest rate, and false for none.
func Best(runs []Summary) (Summary, bool) {
	if len(runs) == 0 {
		return Summary{}, false
	}
	best := runs[0]
	for _, r := range runs[1:] {
		if r.RPS() > best.RPS() {
			best = r
		}
	}
	return best, true
}

// AtConcurrency returns the run at concurrency c, and false if there is none.
func AtConcurrency(runs []Summary, c int) (Summary, bool) {
	for _, r := range runs {
		if r.Concurrency == c {
			return r, true
		}
	}
	return Summary{}, false
}
