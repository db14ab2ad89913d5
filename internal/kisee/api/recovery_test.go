package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/kisee/mail/smtptest"
	"github.com/kisee-pasee/suite/pkg/token"
)

const newPassword = "a new, long enough passphrase"

// emailSettings is an [email] table sending through srv over STARTTLS
// (trusting its certificate), with quick retries; more is appended.
func emailSettings(srv *smtptest.Server, more string) string {
	return fmt.Sprintf("[email]\nhost = %q\nport = %d\nsender = \"Kisee <kisee@example.com>\"\nsecurity = \"starttls\"\nca_file = %q\n"+
		"attempts = 3\nretry_delay = \"10ms\"\ntimeout = \"5s\"\n%s", srv.Host, srv.Port, srv.CAFile, more)
}

// startRecovery runs a Kisee on the sql backend that sends its email to a
// real SMTP server requiring STARTTLS and AUTH PLAIN.
func startRecovery(t *testing.T, more string) (*kiseetest.Server, *smtptest.Server) {
	t.Helper()
	srv := smtptest.Start(t, smtptest.Options{STARTTLS: true, Username: "kisee", Password: "smtp-secret"})
	k := kiseetest.StartSQL(t, emailSettings(srv, "username = \"kisee\"\npassword = \"smtp-secret\"\n"+more))
	return k, srv
}

var tokenInLink = regexp.MustCompile(`token=([A-Za-z0-9_.-]+)`)

// resetToken returns the token of the link in m.
func resetToken(t *testing.T, m smtptest.Message) string {
	t.Helper()
	found := tokenInLink.FindStringSubmatch(m.Body)
	if found == nil {
		t.Fatalf("no token link in the email:\n%s", m.Body)
	}
	return found[1]
}

func jwtHeader(t *testing.T, raw string) map[string]string {
	t.Helper()
	seg, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]string
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func patchPassword(pw string) []map[string]string {
	return []map[string]string{{"op": "replace", "path": "/password", "value": pw}}
}

// waitMetric polls /metrics until it shows want.
func waitMetric(t *testing.T, k *kiseetest.Server, want string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		body := string(Do(t, "GET", k.URL+"/metrics", nil).WantStatus(t, 200).Body)
		if strings.Contains(body, want) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed %s:\n%s", want, grep(body, "kisee_email"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func grep(text, word string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The whole recovery: the email, its headers and link, the token's
// claims, then the password change it allows, and what follows.
func TestPasswordRecoveryEndToEnd(t *testing.T) {
	k, srv := startRecovery(t, "")
	oldToken := login(t, k, "alice", alicePassword)
	before := time.Now().Add(-time.Second)

	r := Do(t, "POST", k.URL+"/password_recoveries/", map[string]string{"email": "alice@example.com"}).WantStatus(t, 201)
	if len(r.Body) != 0 {
		t.Fatalf("201 with a body: %q", r.Body)
	}
	m := srv.Wait(t, 1, 10*time.Second)[0]

	// The message: envelope, transport, headers, body.
	if m.From != "kisee@example.com" || len(m.To) != 1 || m.To[0] != "alice@example.com" || !m.TLS || m.Auth != "kisee" {
		t.Fatalf("envelope %q → %q, TLS %v, auth %q", m.From, m.To, m.TLS, m.Auth)
	}
	h := m.Header
	if from, err := mail.ParseAddress(h.Get("From")); err != nil || from.Address != "kisee@example.com" {
		t.Errorf("From %q", h.Get("From"))
	}
	if to, err := mail.ParseAddress(h.Get("To")); err != nil || to.Address != "alice@example.com" {
		t.Errorf("To %q", h.Get("To"))
	}
	if h.Get("Subject") != "Reset your password" {
		t.Errorf("Subject %q", h.Get("Subject"))
	}
	if d, err := h.Date(); err != nil || d.Before(before) {
		t.Errorf("Date %q", h.Get("Date"))
	}
	if !regexp.MustCompile(`^<\S+@example\.com>$`).MatchString(h.Get("Message-Id")) {
		t.Errorf("Message-ID %q", h.Get("Message-Id"))
	}
	for _, want := range []string{"Hello alice,", "within 12 hours", k.URL + "/password_recoveries/?token="} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, m.Body)
		}
	}
	raw := resetToken(t, m)

	// The token: reset+jwt, signed by Kisee's key, for alice, without sub.
	if hdr := jwtHeader(t, raw); hdr["typ"] != token.TypeReset || hdr["kid"] != k.Key.KeyID() {
		t.Fatalf("header %v", hdr)
	}
	c, err := token.NewVerifier(token.NewStaticKeySet(k.Key.Public()), token.WithTypes(token.TypeReset), token.WithIssuer(k.URL)).Verify(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if who, _ := c.String("password_reset_for"); who != "alice" || c.Subject != "" || len(c.ID) < 22 || c.ExpiresAt.Sub(c.IssuedAt) != 12*time.Hour {
		t.Fatalf("claims %+v", c)
	}

	// GET describes the PATCH to make with it (Bearer, or ?token= as the link has it).
	for _, r := range []*Response{
		Do(t, "GET", k.URL+"/password_recoveries/", nil, Bearer(raw)...),
		Do(t, "GET", k.URL+"/password_recoveries/?token="+raw, nil),
	} {
		r.WantStatus(t, 200)
		recover, _ := r.JSON["recover"].(map[string]any)
		if recover["url"] != k.URL+"/users/alice/" || recover["action"] != "patch" {
			t.Fatalf("GET with the token: %s", r.Body)
		}
	}

	// It is no identity token.
	Do(t, "GET", k.URL+"/jwt/"+c.ID, nil, Bearer(raw)...).WantProblem(t, 401, "Invalid token")
	Do(t, "DELETE", k.URL+"/jwt/"+c.ID, nil, Bearer(raw)...).WantProblem(t, 401, "Invalid token")

	// It is alice's only, and a weak password does not spend it.
	Do(t, "PATCH", k.URL+"/users/bob/", patchPassword(newPassword), Bearer(raw)...).WantProblem(t, 403, "Token does not apply to user resource")
	Do(t, "PATCH", k.URL+"/users/alice/", patchPassword("qwertyuiop"), Bearer(raw)...).WantProblem(t, 400, "Weak password")

	Do(t, "PATCH", k.URL+"/users/alice/", patchPassword(newPassword), Bearer(raw)...).WantStatus(t, 204)

	// The new password works, the old one no more, and alice's tokens are revoked.
	login(t, k, "alice", newPassword)
	Do(t, "POST", k.URL+"/jwt/", map[string]string{"username": "alice", "password": alicePassword}).WantProblem(t, 403, "Failed identification")
	Do(t, "GET", k.URL+"/jwt/"+jti(t, k, oldToken), nil, Bearer(oldToken)...).WantProblem(t, 401, "Token revoked")
	login(t, k, "bob", bobPassword) // bob is untouched

	// The token works once.
	Do(t, "PATCH", k.URL+"/users/alice/", patchPassword("yet another passphrase"), Bearer(raw)...).WantProblem(t, 401, "Token revoked")
	Do(t, "GET", k.URL+"/password_recoveries/", nil, Bearer(raw)...).WantProblem(t, 401, "Token revoked")

	metrics := waitMetric(t, k, `kisee_emails_sent_total{result="sent"} 1`)
	for _, want := range []string{`kisee_password_changes_total 1`, `kisee_email_retries_total 0`, `kisee_emails_sent_total{result="failed"} 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if logs := k.Logs(); strings.Contains(logs, raw) || strings.Contains(logs, "smtp-secret") || strings.Contains(logs, newPassword) {
		t.Fatalf("the logs show a secret:\n%s", logs)
	}
}

// Two uses of one token at once: exactly one changes the password.
func TestResetTokenConcurrentUse(t *testing.T) {
	k, srv := startRecovery(t, "")
	Do(t, "POST", k.URL+"/password_recoveries/", map[string]string{"username": "bob"}).WantStatus(t, 201)
	raw := resetToken(t, srv.Wait(t, 1, 10*time.Second)[0])
	const n = 8
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(patchPassword(fmt.Sprintf("concurrent passphrase %d", i)))
			req, _ := http.NewRequest("PATCH", k.URL+"/users/bob/", strings.NewReader(string(body)))
			req.Header.Set("Authorization", "Bearer "+raw)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	if counts[204] != 1 || counts[401] != n-1 {
		t.Fatalf("statuses %v: want one 204 and %d 401", counts, n-1)
	}
}

// username, login (as a username or an email) and email all find the
// user; unknown ones get the same answer and no email.
func TestRecoveryLookupsAndUnknownUsers(t *testing.T) {
	k, srv := startRecovery(t, "")
	known := []map[string]string{
		{"username": "alice"},
		{"login": "alice"},
		{"login": "alice@example.com"},
		{"email": "ALICE@example.com"},
		{"email": "bob@example.com", "username": ""},
	}
	unknown := []map[string]string{
		{"username": "mallory"},
		{"email": "mallory@example.com"},
		{"login": "nobody@example.com"},
		{"username": "Alice"},
		{"username": strings.Repeat("x", 300)},
	}
	var ref *Response
	for _, body := range append(unknown, known...) {
		r := Do(t, "POST", k.URL+"/password_recoveries/", body).WantStatus(t, 201)
		if len(r.Body) != 0 {
			t.Fatalf("%v: body %q", body, r.Body)
		}
		if ref == nil {
			ref = r
			continue
		}
		if a, b := headerNames(ref.Header), headerNames(r.Header); a != b {
			t.Fatalf("%v: headers %s, others %s", body, b, a)
		}
	}
	srv.Wait(t, len(known), 10*time.Second)
	k.App.Close() // drains the queue: nothing else is on its way
	got := srv.Messages()
	if len(got) != len(known) {
		t.Fatalf("%d emails for %d known users", len(got), len(known))
	}
	to := map[string]int{}
	for _, m := range got {
		to[m.To[0]]++
	}
	if to["alice@example.com"] != 4 || to["bob@example.com"] != 1 {
		t.Fatalf("recipients %v", to)
	}
}

func headerNames(h http.Header) string {
	var names []string
	for name := range h {
		if name != "Date" && name != "X-Request-Id" {
			names = append(names, name+"="+strings.Join(h[name], ","))
		}
	}
	return fmt.Sprint(sortStrings(names))
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func TestRecoveryRequestRefusals(t *testing.T) {
	k, _ := startRecovery(t, "")
	for _, path := range []string{"/password_recoveries/", "/password_recoveries", "/forgotten-passwords/", "/forgotten-passwords", "/forgotten_passwords/"} {
		Do(t, "POST", k.URL+path, `{"username":"nobody"}`).WantStatus(t, 201)
		if r := Do(t, "GET", k.URL+path, nil).WantStatus(t, 200); r.JSON["reset_password"] == nil || r.JSON["enabled"] != true {
			t.Fatalf("GET %s: %s", path, r.Body)
		}
	}
	cases := []struct {
		name   string
		body   string
		status int
		title  string
	}{
		{"empty object", `{}`, 400, "Missing required fields email or username"},
		{"unknown fields only", `{"some-useless-field":"foo"}`, 400, "Missing required fields email or username"},
		{"empty strings", `{"email":"","username":"","login":""}`, 400, "Missing required fields email or username"},
		{"nulls", `{"email":null}`, 400, "Missing required fields email or username"},
		{"invalid JSON", `{"email":`, 400, "Invalid JSON"},
		{"email as number", `{"email":42}`, 400, "Invalid JSON"},
		{"array", `[{"email":"alice@example.com"}]`, 400, "Invalid JSON"},
		{"empty body", ``, 400, "Invalid JSON"},
		{"1 MiB body", `{"email":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "Request body too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			Do(t, "POST", k.URL+"/password_recoveries/", tc.body).WantProblem(t, tc.status, tc.title)
		})
	}
	// GET with a token: a reset token that is not valid is refused; any
	// other kind of token is ignored.
	Do(t, "GET", k.URL+"/password_recoveries/", nil, Bearer("not.a.token")...).WantProblem(t, 401, "Invalid token")
	r := Do(t, "GET", k.URL+"/password_recoveries/", nil, Bearer(login(t, k, "alice", alicePassword))...).WantStatus(t, 200)
	if r.JSON["recover"] != nil || r.JSON["reset_password"] == nil {
		t.Fatalf("GET with an identity token: %s", r.Body)
	}
}

// SMTP down: the caller still gets 201 at once; the worker retries, then
// counts a failure, and logs it without the token.
func TestRecoveryWhenSMTPIsDown(t *testing.T) {
	k := kiseetest.StartSQL(t, fmt.Sprintf("[email]\nhost = \"127.0.0.1\"\nport = %d\nsender = \"kisee@example.com\"\nattempts = 3\nretry_delay = \"10ms\"\n", smtptest.ClosedPort(t)))
	start := time.Now()
	r := Do(t, "POST", k.URL+"/password_recoveries/", map[string]string{"username": "alice"}).WantStatus(t, 201)
	if len(r.Body) != 0 || time.Since(start) > 2*time.Second {
		t.Fatalf("answer %q after %s", r.Body, time.Since(start))
	}
	metrics := waitMetric(t, k, `kisee_emails_sent_total{result="failed"} 1`)
	if !strings.Contains(metrics, `kisee_email_retries_total 2`) || !strings.Contains(metrics, `kisee_emails_sent_total{result="sent"} 0`) {
		t.Fatalf("metrics:\n%s", grep(metrics, "kisee_email"))
	}
	logs := k.Logs()
	if !strings.Contains(logs, "every attempt failed") || !strings.Contains(logs, "user=alice") {
		t.Fatalf("the failure is not logged:\n%s", logs)
	}
	if strings.Contains(logs, "eyJ") || strings.Contains(logs, "token=") {
		t.Fatalf("the logs show a token:\n%s", logs)
	}
}

// A server answering 451 twice: the third attempt delivers.
func TestRecoveryRetriesTransientRefusals(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{FailFirst: 2})
	k := kiseetest.StartSQL(t, fmt.Sprintf("[email]\nhost = %q\nport = %d\nsender = \"kisee@example.com\"\nattempts = 5\nretry_delay = \"10ms\"\n", srv.Host, srv.Port))
	Do(t, "POST", k.URL+"/password_recoveries/", map[string]string{"username": "bob"}).WantStatus(t, 201)
	m := srv.Wait(t, 1, 10*time.Second)[0]
	if m.To[0] != "bob@example.com" || srv.Attempts() != 3 {
		t.Fatalf("to %v after %d attempts", m.To, srv.Attempts())
	}
	metrics := waitMetric(t, k, `kisee_emails_sent_total{result="sent"} 1`)
	if !strings.Contains(metrics, `kisee_email_retries_total 2`) {
		t.Fatalf("metrics:\n%s", grep(metrics, "kisee_email"))
	}
	if strings.Contains(k.Logs(), resetToken(t, m)) {
		t.Fatal("the logs show the token")
	}
}

// The templates, url and lifetime of [email.password_reset].
func TestRecoveryCustomTemplates(t *testing.T) {
	k, srv := startRecovery(t, `[email.password_reset]
subject = "{{.Username}}: new password for Example"
body = "Hi {{.Username}}! Go to {{.URL}} ({{.ExpiresIn}})."
url = "https://app.example.com/reset?user={{.Username}}&token={{.Token}}"
ttl = "90m"
`)
	Do(t, "POST", k.URL+"/forgotten-passwords/", map[string]string{"login": "bob"}).WantStatus(t, 201)
	m := srv.Wait(t, 1, 10*time.Second)[0]
	raw := resetToken(t, m)
	want := "Hi bob! Go to https://app.example.com/reset?user=bob&token=" + raw + " (1 hour 30 minutes)."
	if strings.TrimSpace(m.Body) != want || m.Header.Get("Subject") != "bob: new password for Example" {
		t.Fatalf("subject %q, body %q\nwant %q", m.Header.Get("Subject"), m.Body, want)
	}
	c, err := token.NewVerifier(token.NewStaticKeySet(k.Key.Public()), token.WithTypes(token.TypeReset)).Verify(context.Background(), raw)
	if err != nil || c.ExpiresAt.Sub(c.IssuedAt) != 90*time.Minute {
		t.Fatalf("%v %+v", err, c)
	}
}

// A password change by Basic auth or by reset token also revokes the
// reset tokens still outstanding.
func TestPasswordChangeRevokesOutstandingResetTokens(t *testing.T) {
	k, srv := startRecovery(t, "")
	Do(t, "POST", k.URL+"/password_recoveries/", map[string]string{"username": "alice"}).WantStatus(t, 201)
	raw := resetToken(t, srv.Wait(t, 1, 10*time.Second)[0])
	Do(t, "PATCH", k.URL+"/users/alice/", patchPassword(newPassword), basic("alice", alicePassword)...).WantStatus(t, 204)
	Do(t, "PATCH", k.URL+"/users/alice/", patchPassword("an attacker's passphrase"), Bearer(raw)...).WantProblem(t, 401, "Token revoked")
	login(t, k, "alice", newPassword)
}

func TestRecoveryDisabled(t *testing.T) {
	// No [email]: nothing can be sent.
	k := kiseetest.StartSQL(t, "")
	Do(t, "POST", k.URL+"/password_recoveries/", map[string]string{"username": "alice"}).WantProblem(t, 403, "Password recovery disabled")
	if r := Do(t, "GET", k.URL+"/password_recoveries/", nil).WantStatus(t, 200); r.JSON["enabled"] != false {
		t.Fatalf("GET: %s", r.Body)
	}
	// The test backend cannot change passwords: recovery would be useless.
	srv := smtptest.Start(t, smtptest.Options{})
	k = kiseetest.Start(t, fmt.Sprintf("[email]\nhost = %q\nport = %d\nsender = \"kisee@example.com\"\n", srv.Host, srv.Port))
	Do(t, "POST", k.URL+"/password_recoveries/", map[string]string{"username": "alice"}).WantProblem(t, 403, "Password recovery disabled")
	if !strings.Contains(k.Logs(), "password recovery by email is off") {
		t.Fatal("the reason is not logged")
	}
}

// Tokens that look like reset tokens but are not Kisee's valid ones.
func TestResetTokenForgeries(t *testing.T) {
	k, _ := startRecovery(t, "")
	now := time.Now()
	sign := func(key *token.PrivateKey, typ string, mutate func(*token.Claims)) string {
		c := token.Claims{Issuer: k.URL, IssuedAt: now, ExpiresAt: now.Add(time.Hour), ID: "forged-" + fmt.Sprint(time.Now().UnixNano())}
		c.Set("password_reset_for", "alice")
		if mutate != nil {
			mutate(&c)
		}
		raw, err := token.NewSigner(key).Sign(typ, c)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	other, _ := token.GenerateKey(token.ES256)
	url := k.URL + "/users/alice/"
	body := patchPassword(newPassword)
	Do(t, "PATCH", url, body, Bearer(sign(k.Key, token.TypeReset, nil))...).WantProblem(t, 401, "Token revoked") // never issued
	Do(t, "PATCH", url, body, Bearer(sign(other, token.TypeReset, nil))...).WantProblem(t, 401, "Invalid token")
	Do(t, "PATCH", url, body, Bearer(sign(k.Key, token.TypeReset, func(c *token.Claims) { c.ExpiresAt = now.Add(-time.Hour) }))...).WantProblem(t, 401, "Invalid token")
	Do(t, "PATCH", url, body, Bearer(sign(k.Key, token.TypeReset, func(c *token.Claims) { c.Subject = "alice" }))...).WantProblem(t, 401, "Invalid token")
	Do(t, "PATCH", url, body, Bearer(sign(k.Key, token.TypeReset, func(c *token.Claims) { c.Extra = nil }))...).WantProblem(t, 401, "Invalid token")
	Do(t, "PATCH", url, body, Bearer(sign(k.Key, token.TypeReset, func(c *token.Claims) { c.Issuer = "elsewhere" }))...).WantProblem(t, 401, "Invalid token")
	Do(t, "PATCH", url, body, Bearer(sign(k.Key, token.TypeAccess, nil))...).WantProblem(t, 401, "Invalid token")
	// An identity token never changes a password, whatever it carries.
	Do(t, "PATCH", url, body, Bearer(login(t, k, "alice", alicePassword))...).WantProblem(t, 403, "Use a password lost token or basic auth")
	Do(t, "PATCH", url, body, Bearer(sign(k.Key, token.TypeJWT, func(c *token.Claims) { c.Subject = "alice" }))...).WantProblem(t, 401, "Invalid token")
	login(t, k, "alice", alicePassword)
}
