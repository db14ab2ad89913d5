package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/internal/pgtest"
	"github.com/kisee-pasee/suite/internal/web"
)

// FuzzPaseeBodies sends arbitrary bodies to every Pasee route that reads
// one, through the real echo handlers in-process, as a member of staff
// where the route needs one (Pasee's logins and forwarded requests reach a
// real Kisee). No answer may be a 5xx; a 4xx is a problem document.
func FuzzPaseeBodies(f *testing.F) {
	routes := []struct {
		method, path string
		staff        bool
	}{
		{"POST", "/tokens/?idp=kisee", false},
		{"POST", "/tokens/introspect", false},
		{"POST", "/tokens/?grant=code", false},
		{"POST", "/groups/", true},
		{"POST", "/groups/staff/", true},
		{"PATCH", "/users/kisee-alice", true},
		{"POST", "/users/", false},
		{"POST", "/password_recoveries/", false},
		{"POST", "/forgotten-passwords/", false},
	}
	for i := range routes {
		for _, b := range []string{
			`{"login":"alice","password":"correct horse battery"}`, `{"username":"bob","password":"x"}`, `{"token":"a.b.c"}`, `{"code":"x"}`,
			`{"group":"admin.developers"}`, `{"group":"a..b"}`, `{"username":"kisee-alice"}`, `{"username":"kisee-аlice"}`,
			`{"is_banned":true}`, `{"is_banned":"yes"}`, `{"username":"x","is_banned":false}`,
			`{"username":"carol","email":"carol@example.com","password":"a long enough passphrase"}`, `{"email":"alice@example.com"}`,
			`[]`, `null`, `{}`, "{\"group\":\"\x00\",\"username\":\"\xff\"}", `{"login":1e999}`, ``,
		} {
			f.Add(uint8(i), []byte(b))
		}
	}
	k := kiseetest.Start(f, "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n[registration]\nenabled = true\n[rate_limit]\nmax_failures = 1000000000\n")
	p := paseetest.Start(f, paseetest.SQLite, "[rate_limit]\nmax_failures = 1000000000\n"+paseetest.KiseeProvider("kisee", k.URL))
	now := time.Now()
	if err := p.App.Store.AddMember(context.Background(), "test", "staff", "kisee-bob", now); err != nil {
		f.Fatal(err)
	}
	login := httptest.NewRecorder()
	p.App.Server.ServeHTTP(login, httptest.NewRequest("POST", "/tokens/?idp=kisee", bytes.NewBufferString(`{"login":"bob","password":"`+bobPassword+`"}`)))
	var pair struct {
		Access string `json:"access_token"`
	}
	if login.Code != 201 || json.Unmarshal(login.Body.Bytes(), &pair) != nil {
		f.Fatalf("login: %d %s", login.Code, login.Body)
	}
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := routes[int(route)%len(routes)]
		req := httptest.NewRequest(rt.method, rt.path, bytes.NewReader(body))
		i := n.Add(1)
		req.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:1234", i>>16&255, i>>8&255, i&255)
		if rt.staff {
			req.Header.Set("Authorization", "Bearer "+pair.Access)
		}
		rec := httptest.NewRecorder()
		p.App.Server.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", rt.method, rt.path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var doc map[string]any
			if rec.Header().Get("Content-Type") != web.ProblemContentType || json.Unmarshal(rec.Body.Bytes(), &doc) != nil || doc["title"] == "" || doc["detail"] == "" {
				t.Fatalf("%s %s %q: %d is not a problem document: %s", rt.method, rt.path, body, rec.Code, rec.Body)
			}
		}
	})
}

// FuzzPaseePaths puts arbitrary text in the path parameters and the
// queries of Pasee's routes ({username}, {group}, ?user=, ?after=), as
// written in a URL — percent-encodings, once or twice, included — on
// PostgreSQL when it is there, whose text type refuses NUL bytes and
// invalid UTF-8. No answer may be a 5xx; a 4xx is a problem document.
// Its seeds include what the attack suite found (a NUL decoded from
// "%00" or, twice decoded, from "%2500" reached PostgreSQL: 500).
func FuzzPaseePaths(f *testing.F) {
	for _, s := range []string{"kisee-alice", "kisee-bob%00", "kisee-bob%2500", "%ff", "kisee-b%C0%AEob", "..%2F..%2Fstaff", "%252e%252e%252f",
		"staff", "staff.x", "a%2Fb", "kisee-a%2541", "%0a", "x?y=1", "%", "%zz"} {
		for kind := range 7 {
			f.Add(uint8(kind), s)
		}
	}
	store := paseetest.SQLite
	if pgAvailable() {
		store = paseetest.Postgres
	}
	k := kiseetest.Start(f, "")
	p := paseetest.Start(f, store, paseetest.KiseeProvider("kisee", k.URL))
	ctx := context.Background()
	for _, g := range []string{"staff", "fz"} {
		if err := p.App.Store.EnsureGroup(ctx, "test", g, time.Now()); err != nil {
			f.Fatal(err)
		}
	}
	if err := p.App.Store.AddMember(ctx, "test", "staff", "kisee-bob", time.Now()); err != nil {
		f.Fatal(err)
	}
	login := httptest.NewRecorder()
	p.App.Server.ServeHTTP(login, httptest.NewRequest("POST", "/tokens/?idp=kisee", bytes.NewBufferString(`{"login":"bob","password":"`+bobPassword+`"}`)))
	var pair struct {
		Access string `json:"access_token"`
	}
	if login.Code != 201 || json.Unmarshal(login.Body.Bytes(), &pair) != nil {
		f.Fatalf("login: %d %s", login.Code, login.Body)
	}
	f.Fuzz(func(t *testing.T, kind uint8, s string) {
		method, target, body := "GET", "", ""
		switch kind % 7 {
		case 0:
			target = "/users/" + s
		case 1:
			method, target, body = "PATCH", "/users/"+s, `{"is_banned":false}`
		case 2:
			target = "/groups/" + s + "/"
		case 3:
			method, target = "DELETE", "/groups/fz/"+s+"/"
		case 4:
			target = "/groups/?user=" + s
		case 5:
			target = "/groups/?after=" + s
		case 6:
			target = "/users/?after=" + s
		}
		u, err := url.ParseRequestURI(target)
		if err != nil || u.Path == "" || strings.ContainsAny(target, " \t\r\n#") {
			t.Skip("not a request target")
		}
		req := httptest.NewRequest(method, target, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+pair.Access)
		rec := httptest.NewRecorder()
		p.App.Server.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s: %d %s", method, target, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var doc map[string]any
			if rec.Header().Get("Content-Type") != web.ProblemContentType || json.Unmarshal(rec.Body.Bytes(), &doc) != nil || doc["title"] == "" || doc["detail"] == "" {
				t.Fatalf("%s %s: %d is not a problem document: %s", method, target, rec.Code, rec.Body)
			}
		}
	})
}

// pgAvailable reports whether the test PostgreSQL answers, without
// skipping (the fuzz target then runs on SQLite).
func pgAvailable() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.BaseURL())
	if err != nil {
		return false
	}
	_ = conn.Close(ctx)
	return true
}
