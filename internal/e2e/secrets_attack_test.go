package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/kisee/mail/smtptest"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
)

// exchange is one request of the flow and its answer.
type exchange struct {
	what   string
	status int
	body   []byte
	json   map[string]any
	issued []string // the tokens this answer hands out
}

// recorder sends the flow's requests and keeps every answer.
type recorder struct {
	t         *testing.T
	exchanges []*exchange
}

func (r *recorder) do(method, url string, body any, headers ...string) *exchange {
	r.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		enc, _ := json.Marshal(b)
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	x := &exchange{what: method + " " + url, status: resp.StatusCode, body: b}
	_ = json.Unmarshal(b, &x.json)
	if toks, ok := x.json["tokens"].([]any); ok {
		for _, tk := range toks {
			x.issued = append(x.issued, tk.(string))
		}
	}
	for _, k := range []string{"access_token", "refresh_token"} {
		if tk, ok := x.json[k].(string); ok {
			x.issued = append(x.issued, tk)
		}
	}
	r.exchanges = append(r.exchanges, x)
	return x
}

func (r *recorder) want(x *exchange, status int) *exchange {
	r.t.Helper()
	if x.status != status {
		r.t.Fatalf("%s: %d %s, want %d", x.what, x.status, x.body, status)
	}
	return x
}

func basicAuth(user, pass string) []string {
	return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}
}

// pemBody returns the base64 body of a PEM document, without its lines'
// breaks, and each of its lines.
func pemBody(doc string) []string {
	var lines []string
	for _, l := range strings.Split(doc, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "-----") {
			lines = append(lines, l)
		}
	}
	return append(lines, strings.Join(lines, ""))
}

var rootPassword = regexp.MustCompile(`root password: (\S+?)"`)

// TestSecretsNeverInLogsErrorsOrMetrics runs the built kisee (sql
// backend, registration, recovery by email over STARTTLS with SMTP AUTH)
// and pasee with JSON logs at debug level through a whole flow —
// registration through Pasee, logins at both, wrong passwords and unknown
// users, refresh, introspection, logout, recovery through Pasee, a reset,
// a change with Basic credentials, root's first login — then scans both
// logs, both /metrics and every answer for each password used, every token
// issued (whole, and each of its parts of 20 characters or more), the
// private keys' PEM bodies, the SMTP password and the reset token. A token
// may appear only in the answer that hands it out. The one exception is
// Kisee's first-start line "root password: ..." of the sql backend, which
// must appear exactly once.
func TestSecretsNeverInLogsErrorsOrMetrics(t *testing.T) {
	const smtpPassword = "smtp-password-9f8e7d6c"
	srv := smtptest.Start(t, smtptest.Options{STARTTLS: true, Username: "kisee-mailer", Password: smtpPassword})
	dir := t.TempDir()
	kp, pp := FreePort(t), FreePort(t)
	kiseeURL, paseeURL := fmt.Sprintf("http://127.0.0.1:%d", kp), fmt.Sprintf("http://127.0.0.1:%d", pp)
	kiseeKey, err := Run(context.Background(), dir, bins["kisee"], "", "keygen")
	if err != nil {
		t.Fatal(kiseeKey)
	}
	paseeKey, err := Run(context.Background(), dir, bins["pasee"], "", "keygen", "--alg", "EdDSA")
	if err != nil {
		t.Fatal(paseeKey)
	}
	write(t, filepath.Join(dir, "smtp-password"), smtpPassword+"\n")
	write(t, filepath.Join(dir, "kisee.toml"), fmt.Sprintf(`[server]
port = %d
[identity_backend]
class = "sql"
[identity_backend.options]
url = "sqlite:kisee.db"
[registration]
enabled = true
[email]
host = %q
port = %d
sender = "kisee@example.com"
security = "starttls"
ca_file = %q
username = "kisee-mailer"
password_file = "smtp-password"
retry_delay = "100ms"
[log]
format = "json"
level = "debug"
[jwt]
private_key = '''%s'''
`, kp, srv.Host, srv.Port, srv.CAFile, kiseeKey))
	write(t, filepath.Join(dir, "pasee.toml"), fmt.Sprintf(`port = %d
[jwt]
private_key = '''%s'''
[storage]
url = "sqlite:pasee.db"
[log]
format = "json"
level = "debug"
[[identity_providers]]
name = "kisee"
protocol = "kisee"
endpoint = %q
registration = true
[identity_providers.settings]
claims = ["email"]
`, pp, paseeKey, kiseeURL+"/")+paseetest.IntrospectionClient)
	kisee := Start(t, "kisee", bins["kisee"], dir, kiseeURL, nil, "--settings", "kisee.toml")
	pasee := Start(t, "pasee", bins["pasee"], dir, paseeURL, nil, "--settings-file", "pasee.toml")

	r := &recorder{t: t}
	const (
		p1, p2, p3             = "carol's first long passphrase", "carol's second long passphrase", "carol's third long passphrase"
		wrong1, wrong2, wrong3 = "wrong-password-at-kisee-4821", "wrong-password-at-pasee-7319", "wrong-password-basic-auth-5527"
		unknown                = "unknown-user-password-6604"
	)
	passwords := []string{p1, p2, p3, wrong1, wrong2, wrong3, unknown}

	// Registration through Pasee, then logins at Kisee and Pasee.
	r.want(r.do("POST", paseeURL+"/users/", map[string]string{"username": "carol", "email": "carol@example.com", "password": p1}), 201)
	r.want(r.do("POST", paseeURL+"/users/", map[string]string{"username": "carol2", "email": "c2@example.com", "password": "password"}), 400)
	id1 := r.want(r.do("POST", kiseeURL+"/jwt/", map[string]string{"username": "carol", "password": p1}), 201).issued[0]
	jti := claims(t, id1)["jti"].(string)
	r.want(r.do("GET", kiseeURL+"/jwt/"+jti, nil, "Authorization", "Bearer "+id1), 200)
	r.want(r.do("GET", kiseeURL+"/jwt/"+jti, nil, basicAuth("carol", p1)...), 200)
	pair := r.want(r.do("POST", paseeURL+"/tokens/?idp=kisee", map[string]string{"login": "carol", "password": p1}), 201)
	access, refresh := pair.issued[0], pair.issued[1]
	r.want(r.do("GET", paseeURL+"/groups/", nil, "Authorization", "Bearer "+access), 200)
	r.want(r.do("GET", paseeURL+"/users/kisee-carol", nil, "Authorization", "Bearer "+access), 200)
	r.want(r.do("POST", paseeURL+"/tokens/?idp=kisee", nil, "Authorization", "Bearer "+id1), 201)
	next := r.want(r.do("POST", paseeURL+"/tokens/?refresh", nil, "Authorization", "Bearer "+refresh), 201)
	r.want(r.do("POST", paseeURL+"/tokens/introspect", map[string]string{"token": next.issued[0]}, paseetest.IntrospectionAuth()...), 200)
	r.want(r.do("POST", paseeURL+"/tokens/introspect", map[string]string{"token": next.issued[1]}, paseetest.IntrospectionAuth()...), 200)
	// Refused tokens: their details must not echo them.
	r.want(r.do("GET", paseeURL+"/groups/", nil, "Authorization", "Bearer "+next.issued[1]), 401)
	r.want(r.do("POST", paseeURL+"/tokens/?refresh", nil, "Authorization", "Bearer "+next.issued[0]), 401)
	r.want(r.do("GET", kiseeURL+"/jwt/"+jti, nil, "Authorization", "Bearer "+next.issued[0]), 401)
	r.want(r.do("GET", paseeURL+"/groups/", nil, "Authorization", "Bearer "+id1), 401)
	r.want(r.do("GET", paseeURL+"/groups/", nil, "Authorization", "Bearer "+id1[:len(id1)-5]+"AAAAA"), 401)
	r.want(r.do("DELETE", paseeURL+"/tokens/", nil, "Authorization", "Bearer "+next.issued[1]), 204)
	r.want(r.do("POST", paseeURL+"/tokens/?refresh", nil, "Authorization", "Bearer "+refresh), 401)

	// Wrong passwords and unknown users.
	r.want(r.do("POST", kiseeURL+"/jwt/", map[string]string{"username": "carol", "password": wrong1}), 403)
	r.want(r.do("POST", paseeURL+"/tokens/?idp=kisee", map[string]string{"login": "carol", "password": wrong2}), 403)
	r.want(r.do("GET", kiseeURL+"/jwt/"+jti, nil, basicAuth("carol", wrong3)...), 401)
	r.want(r.do("POST", kiseeURL+"/jwt/", map[string]string{"username": "nobody", "password": unknown}), 403)
	r.want(r.do("POST", paseeURL+"/tokens/?idp=kisee", map[string]string{"login": "nobody", "password": unknown}), 403)
	r.want(r.do("POST", kiseeURL+"/users/", map[string]string{"username": "carol", "email": "carol@example.com", "password": wrong1}), 409)

	// Recovery through Pasee, the reset, a change with Basic credentials.
	r.want(r.do("POST", paseeURL+"/password_recoveries/", map[string]string{"email": "carol@example.com"}), 201)
	m := srv.Wait(t, 1, 30*time.Second)[0]
	found := regexp.MustCompile(`token=([A-Za-z0-9_.-]+)`).FindStringSubmatch(m.Body)
	if found == nil {
		t.Fatalf("no link in the email:\n%s", m.Body)
	}
	reset := found[1]
	r.want(r.do("GET", kiseeURL+"/password_recoveries/?token="+reset, nil), 200)
	r.want(r.do("PATCH", kiseeURL+"/users/carol/", `[{"op":"replace","path":"/password","value":"password"}]`, "Authorization", "Bearer "+reset), 400)
	r.want(r.do("PATCH", kiseeURL+"/users/carol/", []map[string]string{{"op": "replace", "path": "/password", "value": p2}}, "Authorization", "Bearer "+reset), 204)
	r.want(r.do("PATCH", kiseeURL+"/users/carol/", []map[string]string{{"op": "replace", "path": "/password", "value": p3}}, "Authorization", "Bearer "+reset), 401)
	r.want(r.do("GET", kiseeURL+"/jwt/"+jti, nil, "Authorization", "Bearer "+id1), 401)
	r.want(r.do("PATCH", kiseeURL+"/users/carol/", []map[string]string{{"op": "replace", "path": "/password", "value": p3}}, basicAuth("carol", p2)...), 204)
	r.want(r.do("POST", kiseeURL+"/jwt/", map[string]string{"username": "carol", "password": p3}), 201)

	// Root's first login, with the password Kisee logged at its first start.
	logs := kisee.Logs()
	rp := rootPassword.FindAllStringSubmatch(logs, -1)
	if len(rp) != 1 {
		t.Fatalf("the root password line appears %d times in Kisee's logs, want once", len(rp))
	}
	root := rp[0][1]
	r.want(r.do("POST", kiseeURL+"/jwt/", map[string]string{"username": "root", "password": root}), 201)

	// What is scanned: both logs, both /metrics, every answer.
	texts := map[string]string{
		"kisee logs":    strings.Replace(kisee.Logs(), rp[0][0], "", 1),
		"pasee logs":    pasee.Logs(),
		"kisee metrics": string(r.do("GET", kiseeURL+"/metrics", nil).body),
		"pasee metrics": string(r.do("GET", paseeURL+"/metrics", nil).body),
	}
	if strings.Contains(texts["kisee logs"], "root password: ") {
		t.Error("the root password line appears more than once")
	}
	// The secrets.
	secrets := map[string]string{"SMTP password": smtpPassword, "root password": root}
	for i, p := range append(passwords, root) {
		secrets[fmt.Sprintf("password %d", i)] = p
	}
	addToken := func(label, tok string) {
		secrets[label] = tok
		for i, part := range strings.Split(tok, ".") {
			if len(part) >= 20 {
				secrets[fmt.Sprintf("%s part %d", label, i)] = part
			}
		}
	}
	addToken("reset token", reset)
	n := 0
	for _, x := range r.exchanges {
		for _, tok := range x.issued {
			addToken(fmt.Sprintf("token %d (%s)", n, x.what), tok)
			n++
		}
	}
	for i, line := range append(pemBody(kiseeKey), pemBody(paseeKey)...) {
		secrets[fmt.Sprintf("private key line %d", i)] = line
	}
	for where, text := range texts {
		if len(text) < 100 {
			t.Fatalf("%s: nothing to scan", where)
		}
		for label, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s show the %s (%.12s...)", where, label, s)
			}
		}
	}
	for _, x := range r.exchanges {
		own := map[string]bool{}
		for _, tok := range x.issued {
			own[tok] = true
			for _, part := range strings.Split(tok, ".") {
				own[part] = true
			}
		}
		for label, s := range secrets {
			if !own[s] && bytes.Contains(x.body, []byte(s)) {
				t.Errorf("the answer to %s (%d) shows the %s: %.300s", x.what, x.status, label, x.body)
			}
		}
	}
	t.Logf("scanned %d answers, 2 logs (%d and %d bytes) and 2 metrics pages for %d secrets (%d tokens)",
		len(r.exchanges), len(texts["kisee logs"]), len(texts["pasee logs"]), len(secrets), n+1)
}

// claims decodes a token's payload without verifying it.
func claims(t *testing.T, raw string) map[string]any {
	t.Helper()
	p, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(p, &c); err != nil {
		t.Fatal(err)
	}
	return c
}
