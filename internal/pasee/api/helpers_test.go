package api_test

import (
	"context"
	"testing"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/pkg/token"
)

const (
	alicePassword = "correct horse battery"
	bobPassword   = "Tr0ub4dor&3 ünïcode ✓"
)

// suite is a Kisee with alice and bob, and a Pasee above it.
type suite struct {
	kisee *kiseetest.Server
	pasee *paseetest.Server
}

func start(t *testing.T, store paseetest.Store, extra string) *suite {
	t.Helper()
	k := kiseetest.Start(t, "")
	p := paseetest.Start(t, store, paseetest.KiseeProvider("kisee", k.URL)+extra+paseetest.IntrospectionClient)
	return &suite{kisee: k, pasee: p}
}

// forEachStore runs f as a parallel subtest on SQLite and on PostgreSQL.
func forEachStore(t *testing.T, f func(t *testing.T, store paseetest.Store)) {
	for _, s := range paseetest.Stores {
		t.Run(string(s), func(t *testing.T) {
			t.Parallel()
			f(t, s)
		})
	}
}

type pair struct{ access, refresh string }

func (s *suite) login(t *testing.T, user, password string) pair {
	t.Helper()
	r := Do(t, "POST", s.pasee.URL+"/tokens/?idp=kisee", map[string]string{"login": user, "password": password}).WantStatus(t, 201)
	return pair{r.JSON["access_token"].(string), r.JSON["refresh_token"].(string)}
}

func (s *suite) claims(t *testing.T, raw string, typ string) *token.Claims {
	t.Helper()
	c, err := token.NewVerifier(token.NewStaticKeySet(s.pasee.Key.Public()), token.WithTypes(typ), token.WithIssuer(s.pasee.URL)).Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("Pasee token does not verify: %v", err)
	}
	return c
}

// addToGroups puts user in groups as the CLI would.
func (s *suite) addToGroups(t *testing.T, user string, groups ...string) {
	t.Helper()
	st := s.pasee.App.Store
	for _, g := range groups {
		if err := st.EnsureGroup(context.Background(), "test", g, nowUTC()); err != nil {
			t.Fatal(err)
		}
		if err := st.AddMember(context.Background(), "test", g, user, nowUTC()); err != nil {
			t.Fatal(err)
		}
	}
}

func kiseeStart(t *testing.T, extra string) string { return kiseetest.Start(t, extra).URL }

// people are the users of the SPEC group scenario.
var people = []string{"you", "john", "alan", "ada", "donald", "bob"}

// startPeople starts a Kisee holding people (password "<name> password")
// and a Pasee above it, with kisee-you in staff.
func startPeople(t *testing.T, store paseetest.Store) (*suite, map[string]string) {
	t.Helper()
	doc := "[identity_backend]\nclass = \"test\"\n"
	for _, p := range people {
		doc += "[[identity_backend.options.users]]\nusername = \"" + p + "\"\npassword = \"" + p + " password\"\n"
	}
	k := kiseetest.Start(t, doc)
	s := &suite{kisee: k, pasee: paseetest.Start(t, store, paseetest.KiseeProvider("kisee", k.URL)+paseetest.IntrospectionClient)}
	s.addToGroups(t, "kisee-you", "staff")
	tokens := map[string]string{}
	for _, p := range people {
		tokens[p] = s.login(t, p, p+" password").access
	}
	return s, tokens
}
