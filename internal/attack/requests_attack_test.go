package attack

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
)

// sizeAttacks are oversized tokens and headers.
func (e *env) sizeAttacks() []attack {
	big := strings.Repeat("A", 64<<10)
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf("X-Pad-%d", i), strings.Repeat("b", 1<<10))
	}
	var out []attack
	for _, tg := range []struct{ svc, method, path string }{{"kisee", "GET", "/jwt/x"}, {"pasee", "GET", "/groups/"}, {"pasee", "POST", "/tokens/?refresh"}} {
		out = append(out,
			attack{name: "64 KiB Authorization header at " + tg.path, svc: tg.svc, method: tg.method, path: tg.path, headers: []string{"Authorization", "Bearer " + big}, status: 431, title: "Request headers too large"},
			attack{name: "64 KiB Basic credentials at " + tg.path, svc: tg.svc, method: tg.method, path: tg.path, headers: []string{"Authorization", "Basic " + big}, status: 431},
			attack{name: "40 headers of 1 KiB at " + tg.path, svc: tg.svc, method: tg.method, path: tg.path, headers: many, status: 431},
			attack{name: "bearer token of 17 KiB at " + tg.path, svc: tg.svc, method: tg.method, path: tg.path, headers: bearer(strings.Repeat("eyJh", 17<<8) + ".e30.c2ln"), status: 401},
			attack{name: "64 KiB query string at " + tg.path, svc: tg.svc, method: tg.method, path: tg.path + "?x=" + strings.Repeat("q", 64<<10), status: 431},
		)
	}
	out = append(out,
		attack{name: "Basic credentials of 30 KiB", svc: "kisee", method: "GET", path: "/jwt/x", headers: basic(strings.Repeat("u", 15<<10), strings.Repeat("p", 7<<10)), status: 401, title: "Failed identification"},
		attack{name: "Basic credentials of 30 KiB at a password change", svc: "kisee", method: "PATCH", path: "/users/alice/", headers: basic("alice", strings.Repeat("p", 22<<10)), body: `[]`, status: 401},
		attack{name: "X-Request-Id of 30 KiB", svc: "pasee", method: "GET", path: "/groups/", headers: []string{"X-Request-Id", strings.Repeat("r", 30<<10)}, status: 401,
			check: func(t *testing.T, r *response) {
				if len(r.header.Get("X-Request-Id")) > 64 {
					t.Fatalf("request id echoed: %d bytes", len(r.header.Get("X-Request-Id")))
				}
			}},
		attack{name: "X-Forwarded-For of 30 KiB", svc: "kisee", method: "POST", path: "/jwt/", headers: []string{"X-Forwarded-For", strings.Repeat("1.2.3.4, ", 3<<10)},
			body: map[string]string{"username": "alice", "password": "wrong"}, status: 403},
	)
	return out
}

// bodyRoute is a route reading a JSON body, with what it needs to get
// that far.
type bodyRoute struct {
	svc, method, path string
	headers           []string
}

func (e *env) bodyRoutes() []bodyRoute {
	return []bodyRoute{
		{"kisee", "POST", "/jwt/", nil},
		{"kisee", "POST", "/users/", nil},
		{"kisee", "PATCH", "/users/alice/", basic("alice", alicePassword)},
		{"kisee", "POST", "/password_recoveries/", nil},
		{"kisee", "POST", "/forgotten-passwords/", nil},
		{"pasee", "POST", "/tokens/?idp=kisee", nil},
		{"pasee", "POST", "/tokens/introspect", paseetest.IntrospectionAuth()},
		{"pasee", "POST", "/tokens/?grant=code", nil},
		{"pasee", "POST", "/groups/", bearer(e.bob.access)},
		{"pasee", "POST", "/groups/staff/", bearer(e.bob.access)},
		{"pasee", "PATCH", "/users/kisee-alice", bearer(e.bob.access)},
		{"pasee", "POST", "/users/", nil},
		{"pasee", "POST", "/password_recoveries/", nil},
	}
}

// hostileBody is a request body and the status it must get (0: any 4xx).
type hostileBody struct {
	name   string
	body   func() io.Reader
	status int
}

func text(s string) func() io.Reader { return func() io.Reader { return strings.NewReader(s) } }

// unsized hides the length of a body, so that it is sent chunked and the
// server discovers its size while reading.
type unsized struct{ io.Reader }

func hostileBodies() []hostileBody {
	nested := func(depth int) string { return strings.Repeat("[", depth) + strings.Repeat("]", depth) }
	objects := strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000)
	var keys strings.Builder
	keys.WriteString("{")
	for i := 0; keys.Len() < 60<<10; i++ {
		fmt.Fprintf(&keys, `"k%05d":0,`, i)
	}
	keys.WriteString(`"end":0}`)
	return []hostileBody{
		{"10,000-deep arrays", text(nested(10000)), 400},
		{"10,001-deep arrays", text(nested(10001)), 400},
		{"60 KiB of unclosed arrays", text(strings.Repeat("[", 60<<10)), 400},
		{"5,000-deep objects", text(objects), tolerated},
		{"60 KiB of keys", text(keys.String()), tolerated},
		{"64 KiB + 1 body", text(`{"username":"` + strings.Repeat("x", 64<<10) + `"}`), 413},
		{"1 MiB chunked body", func() io.Reader { return unsized{strings.NewReader(strings.Repeat(" ", 1<<20))} }, 413},
		{"form encoding", text("username=alice&password=x"), 400},
		{"two JSON values", text(`{} {}`), 400},
		{"invalid UTF-8", text("{\"username\":\"\xff\xfe\",\"login\":\"\xc0\",\"group\":\"\xff\",\"token\":\"\xff\",\"email\":\"\xff\"}"), tolerated},
		{"number overflow", text(`{"username":1e999,"group":1e999,"token":1e999,"is_banned":1e999,"email":1e999}`), 400},
		{"JSON null", text(`null`), tolerated},
		{"empty body", text(``), 400},
		{"duplicate keys", text(`{"username":"alice","username":"bob","password":"x","password":"y","login":"a","login":"b","group":"a","group":"b"}`), tolerated},
	}
}

// bodyAttacks send every hostile body to every route that reads one.
func (e *env) bodyAttacks() []attack {
	var out []attack
	for _, rt := range e.bodyRoutes() {
		for _, b := range hostileBodies() {
			out = append(out, attack{name: b.name + " at " + rt.method + " " + rt.path, svc: rt.svc, method: rt.method, path: rt.path,
				headers: rt.headers, body: b.body(), status: b.status})
		}
	}
	return out
}

// nameAttacks are SQL-ish and Unicode-confusable group and user names.
func (e *env) nameAttacks() []attack {
	staff := bearer(e.bob.access)
	groups := []string{
		"staff'; DROP TABLE pasee_groups; --", "a' OR '1'='1", `admin"--`, "admin;", "admin)", "admin%", "admin*",
		"ѕtaff.x",                // Cyrillic dze for s
		"аdmin",                  // Cyrillic a
		"ad\u200dmin",            // zero-width joiner
		"ad\u200bmin",            // zero-width space
		"\u202enimda",            // right-to-left override
		"ad\x00min", "admin\x00", // NUL
		"admin%00", "%00",
		"ａｄｍｉｎ", // fullwidth
		"ADMIN", "Admin", " admin", "admin ", "admin\n", "admin\t",
		"../staff", "..", ".", "admin..x", "admin/x", `admin\x`,
		"x.staff", "staff", strings.Repeat("a.", 15) + "a", strings.Repeat("a", 250), strings.Repeat("a", 65),
	}
	var out []attack
	for _, g := range groups {
		out = append(out, attack{name: fmt.Sprintf("group name %q", g), svc: "pasee", method: "POST", path: "/groups/", headers: staff,
			body: map[string]string{"group": g}, status: 400})
	}
	users := []string{
		"kisee-аlice",        // Cyrillic a, Latin lice
		"kisee-alicе",        // Cyrillic ie at the end
		"kisee-αlice",        // Greek alpha
		"kisee-alice\u200d",  // zero-width joiner
		"kisee-ali\u200bce",  // zero-width space
		"kisee-\ufeffalice",  // byte order mark
		"kisee-\u202eecila",  // right-to-left override
		"kisee-\u2066alice",  // left-to-right isolate
		"kisee-ali\x00ce",    // NUL
		"kisee-alice\n",      // newline
		"kisee-' OR '1'='1",  // SQL with spaces
		"kisee-a\tb",         // tab
		"kisee-alice/../bob", // slash
		"kisee-", "-alice", "nope-alice", "kisee", "kisee-" + strings.Repeat("x", 200),
	}
	for _, u := range users {
		out = append(out, attack{name: fmt.Sprintf("member name %q", u), svc: "pasee", method: "POST", path: "/groups/staff/", headers: staff,
			body: map[string]string{"username": u}, status: 400, title: "Invalid name"})
	}
	for _, u := range []string{"аlice", "alice\u200d", "\u202eecila", "ali\x00ce", "alice' OR '1'='1", "alice;--", "../alice", "alice%00", "ａlice", ""} {
		out = append(out,
			attack{name: fmt.Sprintf("registration of %q", u), svc: "kisee", method: "POST", path: "/users/",
				body: map[string]string{"username": u, "email": "mallory@example.com", "password": "a long enough passphrase"}, status: 400},
			attack{name: fmt.Sprintf("Kisee login as %q", u), svc: "kisee", method: "POST", path: "/jwt/",
				body: map[string]string{"username": u, "password": alicePassword}, status: 0},
			attack{name: fmt.Sprintf("Pasee login as %q", u), svc: "pasee", method: "POST", path: "/tokens/?idp=kisee",
				body: map[string]string{"login": u, "password": alicePassword}, status: 0},
		)
	}
	out = append(out,
		attack{name: "registration with an SQL-ish email", svc: "kisee", method: "POST", path: "/users/",
			body: map[string]string{"username": "mallory", "email": "x'@example.com' OR '1'='1", "password": "a long enough passphrase"}, status: 400, title: "Invalid email"},
		attack{name: "recovery for an SQL-ish email", svc: "kisee", method: "POST", path: "/password_recoveries/",
			body: map[string]string{"email": "' OR '1'='1"}, status: 201},
	)
	return out
}

// pathAttacks are traversals in {username}, {g} and {jti}, percent-encoded
// once and twice, and NULs in paths and queries.
func (e *env) pathAttacks() []attack {
	alice := basic("alice", alicePassword)
	staff := bearer(e.bob.access)
	patch := `[{"op":"replace","path":"/password","value":"a brand new passphrase"}]`
	var out []attack
	for _, u := range []string{"..%2F..%2Fetc%2Fpasswd", "%2e%2e%2fbob", "alice%2F..%2Fbob", "bob%00", "alice%00", "alice%2500", "%252e%252e%252fbob",
		"..%252f..%252fbob", "alice%252F..%252Fbob", "%2e%2e", "bob%2F", "%c0%ae%c0%ae%c0%afbob", "ALICE", "alice%20", "%2561lice"} {
		out = append(out, attack{name: "Kisee PATCH /users/" + u + "/", svc: "kisee", method: "PATCH", path: "/users/" + u + "/", headers: alice, body: patch,
			status: 403, title: "Token does not apply to user resource"})
	}
	for _, j := range []string{"..%2F..%2Fhealth", "%2e%2e", "..%252F..%252Fmetrics", "%00", "x%2500", "' OR '1'='1"} {
		j = strings.ReplaceAll(j, " ", "%20")
		out = append(out,
			attack{name: "Kisee GET /jwt/" + j, svc: "kisee", method: "GET", path: "/jwt/" + j, headers: bearer(e.aliceID), status: 404},
			attack{name: "Kisee DELETE /jwt/" + j + " with Basic credentials", svc: "kisee", method: "DELETE", path: "/jwt/" + j, headers: alice, status: 404},
		)
	}
	for _, u := range []string{"..%2Fgroups%2Fstaff", "kisee-alice%2F..%2Fkisee-bob", "kisee-bob%00", "kisee-bob%2500", "%252e%252e%252fkisee-bob",
		"..%252F..%252Fkisee-bob", "%2e%2e", "kisee-b%C0%AEob", "kisee-bob%ff", "kisee-bob%0a"} {
		// A NUL, a control character or bytes that are not UTF-8 name
		// nobody: 400. Other names are unknown users: 404.
		status, query := 404, tolerated
		if strings.Contains(u, "%00") || strings.Contains(u, "%C0") || strings.Contains(u, "%ff") || strings.Contains(u, "%0a") {
			status, query = 400, 400
		}
		out = append(out,
			attack{name: "Pasee GET /users/" + u, svc: "pasee", method: "GET", path: "/users/" + u, headers: staff, status: status},
			attack{name: "Pasee PATCH /users/" + u, svc: "pasee", method: "PATCH", path: "/users/" + u, headers: staff, body: `{"is_banned": true}`, status: status},
			attack{name: "Pasee DELETE /users/" + u, svc: "pasee", method: "DELETE", path: "/users/" + u, headers: staff, status: status},
			attack{name: "Pasee DELETE /groups/staff/" + u + "/", svc: "pasee", method: "DELETE", path: "/groups/staff/" + u + "/", headers: staff, status: status},
			attack{name: "Pasee GET /groups/?user=" + u, svc: "pasee", method: "GET", path: "/groups/?user=" + u, headers: bearer(e.alice.access), status: query},
		)
	}
	for _, g := range []string{"..%2Fstaff", "%2e%2e", "staff%2F..%2Fadmin", "%252e%252e%252fstaff", "..%252Fstaff", "staff%00", "staff%2500", "st%C3%A0ff", "%C0%AE%C0%AE"} {
		out = append(out,
			attack{name: "Pasee GET /groups/" + g + "/", svc: "pasee", method: "GET", path: "/groups/" + g + "/", headers: staff, status: 0},
			attack{name: "Pasee POST /groups/" + g + "/", svc: "pasee", method: "POST", path: "/groups/" + g + "/", headers: staff, body: `{"username":"kisee-alice"}`, status: 0},
			attack{name: "Pasee DELETE /groups/" + g + "/", svc: "pasee", method: "DELETE", path: "/groups/" + g + "/", headers: staff, status: 0},
			attack{name: "Pasee DELETE /groups/" + g + "/kisee-bob/", svc: "pasee", method: "DELETE", path: "/groups/" + g + "/kisee-bob/", headers: staff, status: 0},
		)
	}
	for _, q := range []string{"/groups/?after=%00", "/groups/?after=%ff", "/users/?after=%00", "/users/?after=%ff", "/groups/?limit=99999999999999999999",
		"/groups/?limit=-1", "/audit/?before=-1", "/audit/?before=99999999999999999999", "/groups/staff/?after=%00"} {
		out = append(out, attack{name: "Pasee GET " + q, svc: "pasee", method: "GET", path: q, headers: staff, status: 400})
	}
	out = append(out,
		attack{name: "unencoded .. in a group path", svc: "pasee", method: "GET", path: "/groups/../users/", headers: staff, status: 0},
		attack{name: "unencoded .. in a user path", svc: "kisee", method: "PATCH", path: "/users/../jwt/", headers: alice, body: patch, status: 0},
	)
	return out
}

// corsAttacks come from origins that are not allowed.
func (e *env) corsAttacks() []attack {
	noCORS := func(t *testing.T, r *response) {
		if v := r.header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Fatalf("Access-Control-Allow-Origin %q for an unlisted origin", v)
		}
	}
	form := "text/plain"
	login := `{"username":"alice","password":"guess"}`
	var out []attack
	for _, o := range []string{evilOrigin, "null", "https://app.example.com.evil.example", "http://app.example.com", "https://APP.example.com", "https://app.example.com:8443"} {
		out = append(out,
			attack{name: "preflight from " + o + " to Kisee", svc: "kisee", method: "OPTIONS", path: "/jwt/",
				headers: []string{"Origin", o, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type"}, status: 403, title: "Origin not allowed", check: noCORS},
			attack{name: "preflight from " + o + " to Pasee", svc: "pasee", method: "OPTIONS", path: "/tokens/",
				headers: []string{"Origin", o, "Access-Control-Request-Method", "DELETE", "Access-Control-Request-Headers", "authorization"}, status: 403, title: "Origin not allowed", check: noCORS},
		)
	}
	for _, fetch := range [][]string{{"Sec-Fetch-Site", "cross-site"}, nil} {
		how := "Origin only"
		if fetch != nil {
			how = "Sec-Fetch-Site cross-site"
		}
		h := func(extra ...string) []string {
			return append(append([]string{"Origin", evilOrigin, "Content-Type", form}, fetch...), extra...)
		}
		out = append(out,
			attack{name: "simple POST /jwt/ from an unlisted origin (" + how + ")", svc: "kisee", method: "POST", path: "/jwt/", headers: h(), body: login, status: 403, title: "Origin not allowed", check: noCORS},
			attack{name: "simple POST /password_recoveries/ from an unlisted origin (" + how + ")", svc: "kisee", method: "POST", path: "/password_recoveries/", headers: h(), body: `{"username":"alice"}`, status: 403, check: noCORS},
			attack{name: "simple POST /users/ from an unlisted origin (" + how + ")", svc: "kisee", method: "POST", path: "/users/", headers: h(), body: `{"username":"mallory","email":"m@example.com","password":"a long enough passphrase"}`, status: 403, check: noCORS},
			attack{name: "simple POST /tokens/ from an unlisted origin (" + how + ")", svc: "pasee", method: "POST", path: "/tokens/?idp=kisee", headers: h(), body: `{"login":"alice","password":"guess"}`, status: 403, check: noCORS},
			attack{name: "DELETE /tokens/ from an unlisted origin (" + how + ")", svc: "pasee", method: "DELETE", path: "/tokens/", headers: h(bearer(e.bob.refresh)...), status: 403, check: noCORS},
			attack{name: "PATCH /users/ from an unlisted origin (" + how + ")", svc: "pasee", method: "PATCH", path: "/users/kisee-alice", headers: h(bearer(e.bob.access)...), body: `{"is_banned":true}`, status: 403, check: noCORS},
		)
	}
	out = append(out,
		attack{name: "simple GET /jwks.json from an unlisted origin gets no CORS headers", svc: "kisee", method: "GET", path: "/jwks.json", headers: []string{"Origin", evilOrigin}, status: 200, check: noCORS},
		attack{name: "GET /groups/ from an unlisted origin gets no CORS headers", svc: "pasee", method: "GET", path: "/groups/", headers: append([]string{"Origin", evilOrigin}, bearer(e.bob.access)...), status: 200, check: noCORS},
		// Controls: the allowed origin is allowed, and so is a same-origin browser.
		attack{name: "control: preflight from the allowed origin", svc: "pasee", method: "OPTIONS", path: "/tokens/",
			headers: []string{"Origin", appOrigin, "Access-Control-Request-Method", "POST"}, status: 204,
			check: func(t *testing.T, r *response) {
				if r.header.Get("Access-Control-Allow-Origin") != appOrigin {
					t.Fatalf("allowed origin refused: %v", r.header)
				}
			}},
		attack{name: "control: POST from the allowed origin", svc: "kisee", method: "POST", path: "/jwt/", headers: []string{"Origin", appOrigin, "Sec-Fetch-Site", "cross-site"}, body: login, status: 403, title: "Failed identification"},
		attack{name: "control: same-origin POST", svc: "kisee", method: "POST", path: "/jwt/", headers: []string{"Origin", e.kiseeURL, "Sec-Fetch-Site", "same-origin"}, body: login, status: 403, title: "Failed identification"},
	)
	return out
}

// redirectAttacks try to make Pasee redirect a browser elsewhere: through
// the browser flow of its oauth2 provider (github), whose redirect_uri must
// equal [cors] allowed_redirect_uris exactly, and through the kisee
// provider, which has no browser flow and must never redirect.
func (e *env) redirectAttacks() []attack {
	noRedirect := func(t *testing.T, r *response) {
		if loc := r.header.Get("Location"); loc != "" {
			t.Fatalf("redirect: %d Location %q", r.status, loc)
		}
	}
	var out []attack
	for _, uri := range []string{"https://evil.example/cb", "//evil.example", "/\\evil.example", "https://app.example.com.evil.example/callback",
		"https://app.example.com@evil.example/callback", "javascript:alert(1)", appCallback + "/../../evil", appCallback + "?next=https://evil.example",
		appCallback + "#@evil.example", "HTTPS://APP.EXAMPLE.COM/callback", appCallback + "%00", "data:text/html,<script>alert(1)</script>", ""} {
		q := url.QueryEscape(uri)
		if uri != "" {
			out = append(out,
				attack{name: "redirect_uri " + uri + " with the kisee provider", svc: "pasee", method: "GET", path: "/tokens/?idp=kisee&redirect_uri=" + q + "&state=s", status: 200, check: noRedirect},
				attack{name: "redirect_uri " + uri + " with an unknown provider", svc: "pasee", method: "GET", path: "/tokens/?idp=nope&redirect_uri=" + q, status: 400, check: noRedirect},
				attack{name: "redirect_uri " + uri + " on a kisee callback", svc: "pasee", method: "GET", path: "/tokens/?idp=kisee&code=x&state=y&redirect_uri=" + q, status: 200, check: noRedirect},
				attack{name: "redirect_uri " + uri + " with the oauth2 provider", svc: "pasee", method: "GET", path: "/tokens/?idp=github&state=s&redirect_uri=" + q, status: 400, check: noRedirect},
			)
		}
		out = append(out, attack{name: "allowed then " + uri + " repeated", svc: "pasee", method: "GET",
			path: "/tokens/?idp=github&redirect_uri=" + url.QueryEscape(appCallback) + "&redirect_uri=" + q, status: 400, check: noRedirect})
	}
	toProvider := func(t *testing.T, r *response) {
		loc, err := url.Parse(r.header.Get("Location"))
		if err != nil || loc.Scheme+"://"+loc.Host+loc.Path != e.github.AuthURL() {
			t.Fatalf("redirected to %q, not to the provider %s", r.header.Get("Location"), e.github.AuthURL())
		}
		if cb := loc.Query().Get("redirect_uri"); cb != e.pasee.URL+"/tokens/?idp=github" {
			t.Fatalf("the provider is told to return to %q", cb)
		}
	}
	out = append(out,
		attack{name: "control: the allowed redirect_uri goes to the provider", svc: "pasee", method: "GET", path: "/tokens/?idp=github&state=s&redirect_uri=" + url.QueryEscape(appCallback), status: 302, check: toProvider},
		attack{name: "control: no redirect_uri goes to the provider", svc: "pasee", method: "GET", path: "/tokens/?idp=github", status: 302, check: toProvider},
		attack{name: "callback with a forged state", svc: "pasee", method: "GET", path: "/tokens/?idp=github&code=x&state=forged", status: 400, check: noRedirect},
		attack{name: "callback with a forged state and an evil redirect_uri", svc: "pasee", method: "GET", path: "/tokens/?idp=github&code=x&state=forged&redirect_uri=https%3A%2F%2Fevil.example", status: 400, check: noRedirect},
		attack{name: "callback error with a forged state", svc: "pasee", method: "GET", path: "/tokens/?idp=github&error=access_denied&state=forged", status: 400, check: noRedirect},
		attack{name: "code grant with a forged code", svc: "pasee", method: "POST", path: "/tokens/?grant=code", body: `{"code":"forged"}`, status: 400},
		attack{name: "code grant with a 60 KiB code", svc: "pasee", method: "POST", path: "/tokens/?grant=code", body: `{"code":"` + strings.Repeat("c", 60<<10) + `"}`, status: 400},
		attack{name: "code grant without a code", svc: "pasee", method: "POST", path: "/tokens/?grant=code", body: `{}`, status: 400},
		attack{name: "unknown grant", svc: "pasee", method: "POST", path: "/tokens/?grant=password", body: `{"code":"x"}`, status: 400, title: "Grant not supported"},
		attack{name: "recovery page with an evil next", svc: "kisee", method: "GET", path: "/password_recoveries/?next=https://evil.example&redirect_uri=https://evil.example", status: 200, check: noRedirect},
	)
	return out
}
