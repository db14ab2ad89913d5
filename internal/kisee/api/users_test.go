package api_test

import (
	"context"
	"strings"
	"testing"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/pkg/token"
)

func jwtClaims(t *testing.T, k *kiseetest.Server, raw string) *token.Claims {
	t.Helper()
	c, err := token.NewVerifier(token.NewStaticKeySet(k.Key.Public())).Verify(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const registration = "[registration]\nenabled = true\n"

func TestRegistration(t *testing.T) {
	k := kiseetest.StartSQL(t, registration)
	r := Do(t, "POST", k.URL+"/users/", map[string]string{"username": "carol", "email": "carol@example.com", "password": "carol's own passphrase"}).WantStatus(t, 201)
	if loc := r.Header.Get("Location"); loc != "/users/carol/" {
		t.Fatalf("Location %q", loc)
	}
	if r.JSON["username"] != "carol" || r.JSON["email"] != "carol@example.com" || strings.Contains(string(r.Body), "passphrase") {
		t.Fatalf("body %s", r.Body)
	}
	tok := login(t, k, "carol", "carol's own passphrase")
	if c := jwtClaims(t, k, tok); c.Subject != "carol" {
		t.Fatalf("sub %q", c.Subject)
	}

	for _, dup := range []map[string]string{
		{"username": "carol", "email": "other@example.com"},
		{"username": "CAROL", "email": "other@example.com"},
		{"username": "carole", "email": "Carol@Example.com"},
		{"username": "alice", "email": "new@example.com"},
	} {
		dup["password"] = "some fine passphrase"
		Do(t, "POST", k.URL+"/users/", dup).WantProblem(t, 409, "User already exists")
	}
	m := Do(t, "GET", k.URL+"/metrics", nil)
	if !strings.Contains(string(m.Body), "kisee_users_registered_total 1") {
		t.Fatal("registration not counted")
	}
	if logs := k.Logs(); strings.Contains(logs, "carol's own passphrase") || strings.Contains(logs, "some fine passphrase") {
		t.Fatal("the logs show a password")
	}
}

func TestRegistrationRefusals(t *testing.T) {
	k := kiseetest.StartSQL(t, registration)
	long := strings.Repeat("p", 1025)
	cases := []struct {
		name   string
		body   string
		status int
		title  string
		detail string
	}{
		{"missing username", `{"email":"d@example.com","password":"a fine passphrase"}`, 400, "Missing required fields", "username"},
		{"missing email", `{"username":"dave","password":"a fine passphrase"}`, 400, "Missing required fields", "email"},
		{"missing password", `{"username":"dave","email":"d@example.com"}`, 400, "Missing required fields", "password"},
		{"empty object", `{}`, 400, "Missing required fields", "username, email, password"},
		{"empty username", `{"username":"","email":"d@example.com","password":"a fine passphrase"}`, 400, "Missing required fields", "username"},
		{"bad email", `{"username":"dave","email":"not-an-email","password":"a fine passphrase"}`, 400, "Invalid email", "alice@example.com"},
		{"email with a name", `{"username":"dave","email":"Dave <d@example.com>","password":"a fine passphrase"}`, 400, "Invalid email", "plain address"},
		{"email in brackets", `{"username":"dave","email":"<d@example.com>","password":"a fine passphrase"}`, 400, "Invalid email", "plain address"},
		{"two emails", `{"username":"dave","email":"d@example.com, e@example.com","password":"a fine passphrase"}`, 400, "Invalid email", ""},
		{"username with a space", `{"username":"da ve","email":"d@example.com","password":"a fine passphrase"}`, 400, "Invalid username", "only letters"},
		{"username with an accent", `{"username":"dävé","email":"d@example.com","password":"a fine passphrase"}`, 400, "Invalid username", "only letters"},
		{"username too long", `{"username":"` + strings.Repeat("d", 151) + `","email":"d@example.com","password":"a fine passphrase"}`, 400, "Invalid username", "1 to 150"},
		{"short password", `{"username":"dave","email":"d@example.com","password":"short"}`, 400, "Weak password", "at least 10"},
		{"nine characters", `{"username":"dave","email":"d@example.com","password":"ünïcödé12"}`, 400, "Weak password", "at least 10"},
		{"password too long", `{"username":"dave","email":"d@example.com","password":"` + long + `"}`, 400, "Weak password", "at most 1024"},
		{"common password", `{"username":"dave","email":"d@example.com","password":"qwertyuiop"}`, 400, "Weak password", "common"},
		{"common password, other case", `{"username":"dave","email":"d@example.com","password":"PassWord123"}`, 400, "Weak password", "common"},
		{"xkcd", `{"username":"dave","email":"d@example.com","password":"correct horse battery staple"}`, 400, "Weak password", "common"},
		{"123456789", `{"username":"dave","email":"d@example.com","password":"1234567890"}`, 400, "Weak password", "common"},
		{"password is the username", `{"username":"davidovitch","email":"d@example.com","password":"DavidoVitch"}`, 400, "Weak password", "username"},
		{"password is the email", `{"username":"dave","email":"dave@example.com","password":"dave@example.com"}`, 400, "Weak password", "email"},
		{"invalid JSON", `{"username":`, 400, "Invalid JSON", ""},
		{"password as number", `{"username":"dave","email":"d@example.com","password":1234567890123}`, 400, "Invalid JSON", ""},
		{"array", `[]`, 400, "Invalid JSON", ""},
		{"1 MiB body", `{"username":"dave","email":"d@example.com","password":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "Request body too large", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Do(t, "POST", k.URL+"/users/", tc.body).WantProblem(t, tc.status, tc.title)
			if d := r.JSON["detail"].(string); !strings.Contains(d, tc.detail) || strings.Contains(d, "passphrase") {
				t.Fatalf("detail %q, want it to mention %q", d, tc.detail)
			}
		})
	}
	// None of them created a user.
	Do(t, "POST", k.URL+"/jwt/", map[string]string{"username": "dave", "password": "a fine passphrase"}).WantProblem(t, 403, "Failed identification")
}

func TestRegistrationDisabled(t *testing.T) {
	body := map[string]string{"username": "erin", "email": "erin@example.com", "password": "a fine passphrase"}
	// Turned off (the default).
	k := kiseetest.StartSQL(t, "")
	Do(t, "POST", k.URL+"/users/", body).WantProblem(t, 403, "Registration disabled")
	Do(t, "POST", k.URL+"/users/", `not even JSON`).WantProblem(t, 403, "Registration disabled")
	if r := Do(t, "GET", k.URL+"/users/", nil).WantStatus(t, 200); r.JSON["enabled"] != false || r.JSON["register_user"] == nil {
		t.Fatalf("GET /users/: %s", r.Body)
	}
	// On, but the test backend cannot create users.
	k = kiseetest.Start(t, registration)
	r := Do(t, "POST", k.URL+"/users/", body).WantProblem(t, 403, "Registration disabled")
	if !strings.Contains(r.JSON["detail"].(string), "cannot create users") {
		t.Fatalf("detail %q", r.JSON["detail"])
	}
	if !strings.Contains(k.Logs(), "the backend cannot create users") {
		t.Fatal("the misconfiguration is not logged")
	}
}

func TestChangePasswordWithBasicAuth(t *testing.T) {
	k := kiseetest.StartSQL(t, "")
	url := k.URL + "/users/alice/"
	aliceToken := login(t, k, "alice", alicePassword)
	bobToken := login(t, k, "bob", bobPassword)

	Do(t, "PATCH", url, patchPassword(newPassword)).WantProblem(t, 401, "Missing token")
	Do(t, "PATCH", url, patchPassword(newPassword), "Authorization", "I AM ROOT TAHHTS IT").WantProblem(t, 401, "Missing token")
	Do(t, "PATCH", url, patchPassword(newPassword), Bearer("not.a.token")...).WantProblem(t, 401, "Invalid token")
	Do(t, "PATCH", url, patchPassword(newPassword), basic("alice", "wrong password")...).WantProblem(t, 401, "Failed identification")
	Do(t, "PATCH", url, patchPassword(newPassword), basic("bob", bobPassword)...).WantProblem(t, 403, "Token does not apply to user resource")
	Do(t, "PATCH", url, patchPassword(newPassword), Bearer(aliceToken)...).WantProblem(t, 403, "Use a password lost token or basic auth")
	Do(t, "PATCH", k.URL+"/users/nobody/", patchPassword(newPassword), basic("alice", alicePassword)...).WantProblem(t, 403, "Token does not apply to user resource")
	Do(t, "PATCH", url, patchPassword("alice@example.com"), basic("alice", alicePassword)...).WantProblem(t, 400, "Weak password")

	Do(t, "PATCH", k.URL+"/users/alice", patchPassword(newPassword), basic("alice", alicePassword)...).WantStatus(t, 204)
	login(t, k, "alice", newPassword)
	Do(t, "POST", k.URL+"/jwt/", map[string]string{"username": "alice", "password": alicePassword}).WantProblem(t, 403, "Failed identification")
	Do(t, "GET", k.URL+"/jwt/"+jti(t, k, aliceToken), nil, Bearer(aliceToken)...).WantProblem(t, 401, "Token revoked")
	Do(t, "GET", k.URL+"/jwt/"+jti(t, k, bobToken), nil, Bearer(bobToken)...).WantStatus(t, 200)
	if logs := k.Logs(); strings.Contains(logs, newPassword) || strings.Contains(logs, alicePassword) {
		t.Fatal("the logs show a password")
	}
}

func TestChangePasswordBadPatches(t *testing.T) {
	k := kiseetest.StartSQL(t, "")
	url := k.URL + "/users/alice/"
	cases := []struct {
		name   string
		body   string
		status int
		title  string
	}{
		{"invalid JSON", `[{"op":`, 400, "Invalid JSON"},
		{"empty body", ``, 400, "Invalid JSON"},
		{"an object, not a patch", `{"op":"replace","path":"/password","value":"a fine passphrase"}`, 400, "Invalid JSON patch"},
		{"unknown fields", `{"some-useless-field":"foo"}`, 400, "Invalid JSON patch"},
		{"empty patch", `[]`, 400, "Invalid JSON patch"},
		{"an operation that is not an object", `["replace"]`, 400, "Invalid JSON patch"},
		{"two operations", `[{"op":"replace","path":"/password","value":"a fine passphrase"},{"op":"replace","path":"/email","value":"x@example.com"}]`, 400, "Only password can be patched"},
		{"another field", `[{"op":"replace","path":"/email","value":"john@example.com"}]`, 400, "Only password can be patched"},
		{"another op", `[{"op":"add","path":"/password","value":"a fine passphrase"}]`, 400, "Invalid JSON patch"},
		{"remove", `[{"op":"remove","path":"/password"}]`, 400, "Invalid JSON patch"},
		{"no op", `[{"path":"/password","value":"a fine passphrase"}]`, 400, "Invalid JSON patch"},
		{"no path", `[{"op":"replace","value":"a fine passphrase"}]`, 400, "Invalid JSON patch"},
		{"no value", `[{"op":"replace","path":"/password"}]`, 400, "Invalid JSON patch"},
		{"null value", `[{"op":"replace","path":"/password","value":null}]`, 400, "Invalid JSON patch"},
		{"number value", `[{"op":"replace","path":"/password","value":12345678901}]`, 400, "Invalid JSON patch"},
		{"op as number", `[{"op":1,"path":"/password","value":"a fine passphrase"}]`, 400, "Invalid JSON patch"},
		{"short password", `[{"op":"replace","path":"/password","value":"short"}]`, 400, "Weak password"},
		{"common password", `[{"op":"replace","path":"/password","value":"qwertyuiop"}]`, 400, "Weak password"},
		{"the username", `[{"op":"replace","path":"/password","value":"ALICE"}]`, 400, "Weak password"},
		{"1 MiB body", `[{"op":"replace","path":"/password","value":"` + strings.Repeat("x", 1<<20) + `"}]`, 413, "Request body too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			Do(t, "PATCH", url, tc.body, basic("alice", alicePassword)...).WantProblem(t, tc.status, tc.title)
		})
	}
	login(t, k, "alice", alicePassword) // unchanged
}

// The test backend cannot change passwords.
func TestChangePasswordUnsupported(t *testing.T) {
	k := kiseetest.Start(t, "")
	Do(t, "PATCH", k.URL+"/users/alice/", patchPassword(newPassword), basic("alice", alicePassword)...).WantProblem(t, 403, "Password change not supported")
	login(t, k, "alice", alicePassword)
}
