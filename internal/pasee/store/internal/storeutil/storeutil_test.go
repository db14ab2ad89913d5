package storeutil

import (
	"reflect"
	"testing"
)

func TestPlanVisibility(t *testing.T) {
	for _, tc := range []struct {
		name        string
		memberships []string
		after       string
		want        Visibility
	}{
		{"a member of staff sees everything", []string{"a", "staff"}, "", Visibility{All: true}},
		{"plain memberships are known groups", []string{"b", "a"}, "", Visibility{Known: []string{"a", "b"}}},
		{"a staff membership adds the subtree", []string{"a.staff"}, "",
			Visibility{Known: []string{"a"}, Ranges: []Range{{"a.", "a/"}}}},
		{"a nested subtree is covered by its ancestor's", []string{"a.b.staff", "a.staff", "a.b.c", "ab"}, "",
			Visibility{Known: []string{"a", "ab"}, Ranges: []Range{{"a.", "a/"}}}},
		{"after moves the start of a range", []string{"a.staff"}, "a.m",
			Visibility{Ranges: []Range{{"a.m", "a/"}}}},
		{"after past a range drops it", []string{"a.staff", "b"}, "a0",
			Visibility{Known: []string{"b"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := PlanVisibility(tc.memberships, tc.after)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestClaimsRoundTrip(t *testing.T) {
	for _, c := range []map[string]any{nil, {}, {"email": "a@b", "n": float64(1)}} {
		s, err := EncodeClaims(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeClaims(s)
		if err != nil {
			t.Fatal(err)
		}
		if len(c) == 0 && got != nil || len(c) > 0 && !reflect.DeepEqual(got, c) {
			t.Fatalf("%v → %q → %v", c, s, got)
		}
	}
}
