package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/kisee/mail/smtptest"
	"github.com/kisee-pasee/suite/internal/web"
)

// fuzzKisee is a Kisee with every route that reads a body turned on
// (registration, recovery by email, password change), and brute-force
// protection that a fuzzer, trying from ever new addresses, never trips.
func fuzzKisee(f *testing.F) *kiseetest.Server {
	srv := smtptest.Start(f, smtptest.Options{})
	return kiseetest.StartSQL(f, fmt.Sprintf("[registration]\nenabled = true\n[rate_limit]\nmax_failures = 1000000000\n"+
		"[email]\nhost = %q\nport = %d\nsender = \"kisee@example.com\"\nsecurity = \"none\"\nattempts = 1\nqueue_size = 16\n", srv.Host, srv.Port))
}

// serveFuzz sends one request to s in-process, from an address of its own
// (n), and checks what every answer must be: never a 5xx, and a 4xx is a
// problem document with a title and a detail.
func serveFuzz(t *testing.T, s *web.Server, n int64, method, path string, body []byte, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.RemoteAddr = fmt.Sprintf("10.%d.%d.%d:1234", n>>16&255, n>>8&255, n&255)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("%s %s %q: %d %s", method, path, body, rec.Code, rec.Body)
	}
	if rec.Code >= 400 {
		var p map[string]any
		if rec.Header().Get("Content-Type") != web.ProblemContentType || json.Unmarshal(rec.Body.Bytes(), &p) != nil || p["title"] == "" || p["detail"] == "" || p["status"] != float64(rec.Code) {
			t.Fatalf("%s %s %q: %d is not a problem document: %s %s", method, path, body, rec.Code, rec.Header().Get("Content-Type"), rec.Body)
		}
	}
	return rec
}

// FuzzKiseeBodies sends arbitrary bodies to every Kisee route that reads
// one (through the real echo handlers, in-process).
func FuzzKiseeBodies(f *testing.F) {
	routes := []struct{ method, path string }{
		{"POST", "/jwt/"},
		{"POST", "/users/"},
		{"POST", "/password_recoveries/"},
		{"POST", "/forgotten-passwords/"},
		{"POST", "/forgotten_passwords/"},
	}
	for i := range routes {
		for _, b := range []string{
			`{"username":"alice","password":"correct horse battery"}`, `{"login":"alice","password":"x"}`, `{"username":"","password":""}`,
			`{"username":"carol","email":"carol@example.com","password":"a long enough passphrase"}`, `{"username":"a b","email":"x","password":"p"}`,
			`{"email":"alice@example.com"}`, `{"login":"a@b"}`, `{"username":1}`, `[]`, `null`, `{}`, `{"a":` + string(bytes.Repeat([]byte("["), 200)),
			"{\"username\":\"\x00\",\"password\":\"\xff\"}", `{"username":"alice","password":"x"} {}`, ``,
		} {
			f.Add(uint8(i), []byte(b))
		}
	}
	k := fuzzKisee(f)
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := routes[int(route)%len(routes)]
		serveFuzz(t, k.App.Server, n.Add(1), rt.method, rt.path, body, "Content-Type", "application/json")
	})
}

// FuzzKiseePasswordPatch sends arbitrary JSON Patch documents to PATCH
// /users/alice/ with alice's own credentials. Besides the rules of every
// answer, a 204 — a changed password — must come from exactly one
// "replace" of "/password" with a string value; the password is then put
// back for the next input.
func FuzzKiseePasswordPatch(f *testing.F) {
	for _, b := range []string{
		`[{"op":"replace","path":"/password","value":"a brand new passphrase"}]`,
		`[{"op":"replace","path":"/password","value":"short"}]`,
		`[{"op":"replace","path":"/password","value":"alice"}]`,
		`[{"op":"add","path":"/password","value":"a brand new passphrase"}]`,
		`[{"op":"replace","path":"/email","value":"x@example.com"}]`,
		`[{"op":"replace","path":"/password","value":1}]`,
		`[{"op":"replace","path":"/password"}]`,
		`[{"op":"replace","path":"/password","value":null}]`,
		`[{"op":"replace","path":"/password","value":"a brand new passphrase"},{"op":"replace","path":"/password","value":"another passphrase"}]`,
		`[{"op":"test","path":"/password","value":"x"},{"op":"replace","path":"/password","value":"a brand new passphrase"}]`,
		`[{"OP":"replace","PATH":"/password","VALUE":"a brand new passphrase"}]`,
		`[{"op":"replace","path":"/password","value":"a brand new passphrase","op":"remove"}]`,
		`{"op":"replace","path":"/password","value":"a brand new passphrase"}`, `[]`, `[null]`, `[[]]`, `null`, ``, `[{}]`,
		"[{\"op\":\"replace\",\"path\":\"/password\",\"value\":\"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\"}]",
	} {
		f.Add([]byte(b))
	}
	k := fuzzKisee(f)
	setter := k.App.Service.Backend().(kisee.PasswordSetter)
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serveFuzz(t, k.App.Server, n.Add(1), "PATCH", "/users/alice/", body, basic("alice", alicePassword)...)
		if rec.Code != http.StatusNoContent {
			return
		}
		var ops []struct {
			Op    string          `json:"op"`
			Path  string          `json:"path"`
			Value json.RawMessage `json:"value"`
		}
		var pw string
		if err := json.Unmarshal(body, &ops); err != nil || len(ops) != 1 || ops[0].Op != "replace" || ops[0].Path != "/password" || json.Unmarshal(ops[0].Value, &pw) != nil {
			t.Fatalf("password changed by %q, which is not one replacement of /password", body)
		}
		if err := setter.SetPassword(context.Background(), "alice", alicePassword); err != nil {
			t.Fatal(err)
		}
	})
}
