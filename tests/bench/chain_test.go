package main

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// A chain advances on every answered pair and, when the answer is not
// one, reports the error and starts the user's chain over.
func TestChainAdvancesAndStartsOver(t *testing.T) {
	tokens := []string{"r0", "r1"}
	var spent, seen []string
	fail := false
	spend := func(_ context.Context, w int, refresh string) ([]byte, error) {
		spent = append(spent, refresh)
		if fail {
			return nil, errors.New("status 401")
		}
		return []byte(`{"access_token":"a-` + refresh + `","refresh_token":"` + refresh + `+"}`), nil
	}
	start := func(_ context.Context, w int) (string, error) { return "fresh", nil }
	req := chain(tokens, spend, start, "login", func(p Pair) { seen = append(seen, p.Access) })
	ctx := context.Background()
	for range 2 {
		if err := req(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	if tokens[0] != "r0" || tokens[1] != "r1++" || strings.Join(spent, " ") != "r1 r1+" || strings.Join(seen, " ") != "a-r1 a-r1+" {
		t.Fatalf("after two refreshes: tokens %q, spent %q, seen %q", tokens, spent, seen)
	}
	fail = true
	if err := req(ctx, 1); err == nil || !strings.Contains(err.Error(), "status 401") {
		t.Fatalf("a broken chain: error %v", err)
	}
	if tokens[1] != "fresh" {
		t.Fatalf("a broken chain starts over: token %q", tokens[1])
	}
	start = func(context.Context, int) (string, error) { return "", errors.New("no login") }
	req = chain(tokens, spend, start, "login", nil)
	if err := req(ctx, 1); err == nil || !strings.Contains(err.Error(), "and login again: no login") {
		t.Fatalf("a chain that cannot start over: error %v", err)
	}
}
