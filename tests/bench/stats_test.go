package main

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func msec(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPercentile(t *testing.T) {
	var hundred []time.Duration
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, msec(i))
	}
	cases := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", []time.Duration{msec(7)}, 99, msec(7)},
		{"median of 1..100", hundred, 50, msec(50)},
		{"p99 of 1..100", hundred, 99, msec(99)},
		{"p100 is the max", hundred, 100, msec(100)},
		{"p0 is the min", hundred, 0, msec(1)},
		{"nearest rank rounds up", []time.Duration{msec(1), msec(2), msec(3)}, 50, msec(2)},
		{"p99 of 10 values is the max", hundred[:10], 99, msec(10)},
	}
	for _, c := range cases {
		if got := Percentile(c.sorted, c.p); got != c.want {
			t.Errorf("%s: Percentile(p%v) = %v, want %v", c.name, c.p, got, c.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	lat := []time.Duration{msec(4), msec(1), msec(3), msec(2)}
	s := Summarize(2, lat, 1, 2*time.Second)
	if s.Requests != 4 || s.Errors != 1 || s.Concurrency != 2 {
		t.Fatalf("counts: %+v", s)
	}
	if s.P50 != msec(2) || s.P99 != msec(4) || s.Max != msec(4) {
		t.Errorf("p50 %v p99 %v max %v", s.P50, s.P99, s.Max)
	}
	if s.Mean != 2500*time.Microsecond {
		t.Errorf("mean %v", s.Mean)
	}
	if s.RPS() != 2 {
		t.Errorf("RPS %v, want 2 (4 requests in 2 s)", s.RPS())
	}
	if (Summary{}).RPS() != 0 {
		t.Error("RPS of nothing")
	}
}

func TestRatio(t *testing.T) {
	if r := Ratio(45, 50); math.Abs(r-0.9) > 1e-12 {
		t.Errorf("Ratio(45, 50) = %v", r)
	}
	for _, bound := range []float64{0, -1, math.NaN()} {
		if r := Ratio(1, bound); !math.IsNaN(r) {
			t.Errorf("Ratio(1, %v) = %v, want NaN", bound, r)
		}
	}
	if r := Ratio(math.NaN(), 3); !math.IsNaN(r) {
		t.Errorf("Ratio(NaN, 3) = %v", r)
	}
}

func TestBestAndAtConcurrency(t *testing.T) {
	runs := []Summary{
		Summarize(1, make([]time.Duration, 10), 0, time.Second),
		Summarize(4, make([]time.Duration, 30), 0, time.Second),
		Summarize(8, make([]time.Duration, 20), 0, time.Second),
	}
	if b, ok := Best(runs); !ok || b.Concurrency != 4 {
		t.Errorf("Best = %+v", b)
	}
	if _, ok := Best(nil); ok {
		t.Error("Best of nothing")
	}
	if s, ok := AtConcurrency(runs, 8); !ok || s.Requests != 20 {
		t.Errorf("AtConcurrency(8) = %+v", s)
	}
	if _, ok := AtConcurrency(runs, 2); ok {
		t.Error("AtConcurrency(2) found a run")
	}
}

func TestParseStat(t *testing.T) {
	line := "1234 (post gres) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100 0 0"
	d, name, err := parseStat([]byte(line))
	if err != nil || name != "post gres" || d != 3*time.Second {
		t.Errorf("parseStat = %v %q %v, want 3s (300 ticks)", d, name, err)
	}
}

func TestWriteIntoKeepsTheAnalysis(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.md")
	if err := WriteInto(path, "one"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	edited := strings.Replace(string(b), "# Benchmarks\n", "# Benchmarks\n\nAnalysis above.\n", 1) + "\nAnalysis below.\n"
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteInto(path, "two"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	s := string(b)
	if strings.Contains(s, "one") || !strings.Contains(s, "two") || !strings.Contains(s, "Analysis above.") || !strings.Contains(s, "Analysis below.") {
		t.Errorf("report after rewrite:\n%s", s)
	}
}

func TestBuildTree(t *testing.T) {
	tr := buildTree(50_000)
	if len(tr.names) != 50_000 {
		t.Fatalf("%d groups", len(tr.names))
	}
	seen := map[string]bool{}
	depth6 := 0
	for i, n := range tr.names {
		if seen[n] {
			t.Fatalf("duplicate %s", n)
		}
		seen[n] = true
		if p := tr.parent[i]; p >= 0 && !strings.HasPrefix(n, tr.names[p]+".") {
			t.Fatalf("%s is not under its parent %s", n, tr.names[p])
		}
		if tr.depth[i] != strings.Count(n, ".")+1 {
			t.Fatalf("%s: depth %d", n, tr.depth[i])
		}
		if tr.depth[i] == 6 {
			depth6++
		}
	}
	if depth6 == 0 {
		t.Error("no depth-6 group")
	}
}

func TestRunLoadStopsAtTheRequestBound(t *testing.T) {
	var n atomic.Int64
	s := RunLoad(context.Background(), LoadSpec{Concurrency: 4, MaxRequests: 100, MaxDuration: time.Minute, Warmup: 2}, cpuMeter{}, func(context.Context, int) error {
		if n.Add(1)%10 == 0 {
			return errors.New("every tenth fails")
		}
		return nil
	})
	if s.Requests+s.Errors != 100 || s.Errors == 0 || s.FirstError != "every tenth fails" {
		t.Errorf("requests %d errors %d (%q), want 100 in all", s.Requests, s.Errors, s.FirstError)
	}
	if got := n.Load(); got != 100+4*2 {
		t.Errorf("%d calls, want 100 and 8 warm-up calls", got)
	}
}

func TestRunLoadStopsAtTheTimeBound(t *testing.T) {
	start := time.Now()
	s := RunLoad(context.Background(), LoadSpec{Concurrency: 2, MaxRequests: 1 << 30, MaxDuration: 100 * time.Millisecond}, cpuMeter{}, func(context.Context, int) error {
		time.Sleep(5 * time.Millisecond)
		return nil
	})
	if d := time.Since(start); d > 2*time.Second || s.Elapsed < 100*time.Millisecond {
		t.Errorf("took %v (elapsed %v) for a 100 ms bound", d, s.Elapsed)
	}
	if s.Requests < 10 || s.P50 < 5*time.Millisecond {
		t.Errorf("requests %d, p50 %v", s.Requests, s.P50)
	}
}

func TestJSONString(t *testing.T) {
	body := []byte(`{"access_token":"a.b.c","refresh_token":"d\u002ee","token_type":"Bearer"}`)
	p, err := parsePair(body)
	if err != nil || p.Access != "a.b.c" || p.Refresh != "d.e" {
		t.Errorf("parsePair = %+v, %v", p, err)
	}
	if _, err := parsePair([]byte(`{"title":"nope"}`)); err == nil {
		t.Error("parsePair of a problem document succeeded")
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, ok := range []string{"postgres://postgres@127.0.0.1:5432/test", "postgres://localhost/x", "postgres://[::1]:5432/x", "postgres:///x?host=/run/postgresql"} {
		if err := checkLoopback(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"postgres://db.example.com/x", "postgres://10.0.0.5/x", "postgres:///x?host=db.example.com"} {
		if checkLoopback(bad) == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// A second instance differs from the first by its port only: same key,
// same store, same issuer, or the first's tokens are refused.
func TestWithPort(t *testing.T) {
	first := paseeSettings(8150, "postgres://db/x", "KEY", "http://kisee", "info")
	second, err := withPort(first, "8150", 9150)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Replace(first, "port = 8150", "port = 9150", 1); second != want {
		t.Fatalf("second settings:\n%s\nwant\n%s", second, want)
	}
	if _, err := withPort(first, "8151", 9150); err == nil {
		t.Fatal("a port not in the settings was replaced")
	}
}
