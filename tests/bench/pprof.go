package main

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/google/pprof/profile"
)

// category groups the functions of a profile by what they do.
type category struct {
	name string
	// strong categories own everything below them on a stack (a write
	// syscall made by the logger is logging); weak ones only what no
	// strong category claims.
	strong bool
	match  func(fn string) bool
}

// prefixes matches function names starting with one of p.
func prefixes(p ...string) func(string) bool {
	return func(fn string) bool {
		for _, x := range p {
			if strings.HasPrefix(fn, x) {
				return true
			}
		}
		return false
	}
}

// categories, in order of precedence within strength.
func categories() []category {
	return []category{
		{"argon2id", true, prefixes("golang.org/x/crypto/argon2")},
		{"ECDSA, SHA-2, randomness (crypto/...)", true, func(fn string) bool {
			return strings.HasPrefix(fn, "crypto/") || strings.HasPrefix(fn, "p256") || strings.HasPrefix(fn, "vendor/golang.org/x/crypto")
		}},
		{"JSON encoding and decoding", true, func(fn string) bool {
			return strings.HasPrefix(fn, "encoding/json") || strings.HasSuffix(fn, "MarshalJSON") || strings.HasSuffix(fn, "UnmarshalJSON")
		}},
		{"base64", true, prefixes("encoding/base64")},
		{"logging (log/slog)", true, prefixes("log/slog")},
		{"PostgreSQL driver (pgx)", true, prefixes("github.com/jackc/")},
		{"SQLite (modernc.org/sqlite)", true, prefixes("modernc.org/")},
		{"database/sql", true, prefixes("database/sql")},
		{"Prometheus metrics", true, prefixes("github.com/prometheus/")},
		{"memory allocation and GC assists", false, prefixes("runtime.mallocgc", "runtime.gcAssist", "runtime.newobject", "runtime.makeslice", "runtime.growslice", "runtime.makemap", "runtime.gcDrain", "runtime.concatstring", "runtime.slicebytetostring", "runtime.rawstring")},
		{"network I/O and syscalls", false, prefixes("syscall.", "internal/poll", "internal/runtime/syscall", "net.", "runtime.netpoll")},
		{"HTTP server and middleware (net/http, echo, internal/web)", false, prefixes("net/http", "github.com/labstack/", "github.com/kisee-pasee/suite/internal/web")},
		{"Kisee and Pasee code", false, prefixes("github.com/kisee-pasee/suite/")},
	}
}

// classify returns the category of a stack (leaf first).
func classify(cats []category, stack []string) string {
	weak := ""
	for _, fn := range stack {
		for _, c := range cats {
			if !c.match(fn) {
				continue
			}
			if c.strong {
				return c.name
			}
			if weak == "" {
				weak = c.name
			}
			break
		}
	}
	if weak != "" {
		return weak
	}
	return "Go scheduler and other runtime"
}

// stack returns the function names of a sample, leaf first, inlined
// frames included.
func stack(s *profile.Sample) []string {
	var out []string
	for _, loc := range s.Location {
		for _, l := range loc.Line {
			if l.Function != nil {
				out = append(out, l.Function.Name)
			}
		}
	}
	return out
}

// Share is one line of a breakdown: a category or a function, its total
// and its share of the whole.
type Share struct {
	Name  string
	Value int64
	Share float64
}

// Breakdown is a profile reduced to categories and top functions.
type Breakdown struct {
	Total      int64
	Categories []Share
	// Top are the functions with the most flat value.
	Top []Share
}

// breakdown sums the values of sample type typ over the samples keep
// accepts, by category and by leaf function.
func breakdown(p *profile.Profile, typ string, keep func(*profile.Sample, []string) bool, top int) (Breakdown, error) {
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == typ {
			idx = i
		}
	}
	if idx < 0 {
		return Breakdown{}, fmt.Errorf("profile has no %q samples", typ)
	}
	cats := categories()
	var b Breakdown
	byCat, byFn := map[string]int64{}, map[string]int64{}
	for _, s := range p.Sample {
		st := stack(s)
		if !keep(s, st) || len(st) == 0 {
			continue
		}
		v := s.Value[idx]
		b.Total += v
		byCat[classify(cats, st)] += v
		byFn[st[0]] += v
	}
	list := func(m map[string]int64) []Share {
		out := make([]Share, 0, len(m))
		for k, v := range m {
			out = append(out, Share{Name: k, Value: v, Share: float64(v) / float64(max(b.Total, 1))})
		}
		slices.SortFunc(out, func(a, b Share) int { return cmp.Or(cmp.Compare(b.Value, a.Value), strings.Compare(a.Name, b.Name)) })
		return out
	}
	b.Categories = list(byCat)
	b.Top = list(byFn)
	if len(b.Top) > top {
		b.Top = b.Top[:top]
	}
	return b, nil
}

// readProfile parses a pprof file.
func readProfile(file string) (*profile.Profile, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return profile.Parse(f)
}

// cpuBreakdown reads a CPU profile and keeps the samples labelled
// side=side.
func cpuBreakdown(file, side string, top int) (Breakdown, error) {
	p, err := readProfile(file)
	if err != nil {
		return Breakdown{}, err
	}
	return breakdown(p, "cpu", func(s *profile.Sample, _ []string) bool {
		return slices.Contains(s.Label["side"], side)
	}, top)
}

// allocBreakdown subtracts the allocation profile before from after and
// keeps what was allocated under net/http's server connections (in the
// profiles the server runs in this process, the load generator's client
// does not run there).
func allocBreakdown(before, after string, top int) (Breakdown, error) {
	b, err := readProfile(before)
	if err != nil {
		return Breakdown{}, err
	}
	a, err := readProfile(after)
	if err != nil {
		return Breakdown{}, err
	}
	b.Scale(-1)
	d, err := profile.Merge([]*profile.Profile{a, b})
	if err != nil {
		return Breakdown{}, err
	}
	return breakdown(d, "alloc_space", func(_ *profile.Sample, st []string) bool {
		return slices.Contains(st, "net/http.(*conn).serve")
	}, top)
}
