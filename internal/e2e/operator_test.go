package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/kisee-pasee/suite/internal/httptestutil"
)

// run runs a command of the suite in dir with env, bounded in time (a
// command that should refuse to start and does not is killed, and fails).
func run(t *testing.T, dir, bin string, env []string, stdin string, args ...string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := RunEnv(ctx, dir, bins[bin], env, stdin, args...)
	return out, err == nil
}

// What an operator types, and what the commands answer, for the mistakes
// they make in settings and environment.
func TestOperatorSettingsThroughTheBinaries(t *testing.T) {
	t.Run("a duration needs a unit, in the file and in the environment alike", func(t *testing.T) {
		dir := t.TempDir()
		write(t, filepath.Join(dir, "kisee.toml"), "[jwt]\nttl = 5\n")
		out, ok := run(t, dir, "kisee", nil, "", "--settings", "kisee.toml")
		if ok || !strings.Contains(out, `kisee.toml:2: jwt.ttl: want a duration with a unit, such as "90s", "15m" or "720h", got a bare number`) {
			t.Fatalf("ttl = 5: %v\n%s", ok, out)
		}
		write(t, filepath.Join(dir, "kisee.toml"), "[jwt]\nttl = \"0s\"\n")
		if out, ok := run(t, dir, "kisee", nil, "", "--settings", "kisee.toml"); ok || !strings.Contains(out, "kisee.toml:2: jwt.ttl: must be more than zero") {
			t.Fatalf("ttl = \"0s\": %v\n%s", ok, out)
		}
		if out, ok := run(t, dir, "pasee", []string{"PASEE_JWT_ACCESS_TTL=900"}, "", "groups"); ok || !strings.Contains(out, "PASEE_JWT_ACCESS_TTL") {
			t.Fatalf("PASEE_JWT_ACCESS_TTL=900: %v\n%s", ok, out)
		}
	})
	t.Run("a misspelt variable stops start-up like a misspelt key", func(t *testing.T) {
		out, ok := run(t, t.TempDir(), "kisee", []string{"KISEE_SERVER_PROT=8141"}, "", "migrate")
		if ok || !strings.Contains(out, "KISEE_SERVER_PROT: unknown variable") {
			t.Fatalf("%v\n%s", ok, out)
		}
	})
	t.Run("a settings file of the other service is named as such", func(t *testing.T) {
		dir := t.TempDir()
		if out, ok := run(t, dir, "kisee", nil, "", "quickstart", "--output", "settings.toml", "--database", "sqlite:kisee.db"); !ok {
			t.Fatal(out)
		}
		out, ok := run(t, dir, "pasee", nil, "", "groups")
		if ok || !strings.Contains(out, "settings.toml looks like a Kisee settings file") {
			t.Fatalf("%v\n%s", ok, out)
		}
	})
	t.Run("plain http to another host is refused unless allowed", func(t *testing.T) {
		dir := t.TempDir()
		doc := "[[identity_providers]]\nname = \"kisee\"\nprotocol = \"kisee\"\nendpoint = \"http://kisee.example.com/\"\n"
		write(t, filepath.Join(dir, "pasee.toml"), doc)
		out, ok := run(t, dir, "pasee", nil, "", "--settings-file", "pasee.toml", "groups")
		if ok || !strings.Contains(out, "pasee.toml:4: identity_providers[0].endpoint:") || !strings.Contains(out, "allow_insecure_http") {
			t.Fatalf("%v\n%s", ok, out)
		}
		write(t, filepath.Join(dir, "pasee.toml"), doc+"allow_insecure_http = true\n")
		if out, ok := run(t, dir, "pasee", nil, "", "--settings-file", "pasee.toml", "groups"); !ok {
			t.Fatalf("allowed: %s", out)
		}
	})
	t.Run("administration commands need no email secret and apply the API's checks", func(t *testing.T) {
		dir := t.TempDir()
		write(t, filepath.Join(dir, "kisee.toml"), `[identity_backend]
class = "sql"
[identity_backend.options]
url = "sqlite:kisee.db"
[email]
host = "smtp.example.com"
sender = "kisee@example.com"
username = "kisee"
password_file = "/nonexistent/smtp-password"
[jwt]
private_key_file = "/nonexistent/kisee-key.pem"
`)
		if out, ok := run(t, dir, "kisee", nil, "", "--settings", "kisee.toml", "useradd", "bob", "--email", "notanemail", "--password-stdin"); ok || !strings.Contains(out, "not an email address") {
			t.Fatalf("useradd --email notanemail: %v\n%s", ok, out)
		}
		if out, ok := run(t, dir, "kisee", nil, "short\n", "--settings", "kisee.toml", "useradd", "bob", "--password-stdin"); ok || !strings.Contains(out, "at least 10 characters") {
			t.Fatalf("useradd with password short: %v\n%s", ok, out)
		}
		if out, ok := run(t, dir, "kisee", nil, "a long enough password\n", "--settings", "kisee.toml", "useradd", "bob", "--email", "bob@example.com", "--password-stdin"); !ok {
			t.Fatalf("useradd: %s", out)
		}
		out, _ := run(t, dir, "kisee", nil, "", "--settings", "kisee.toml", "healthcheck")
		if strings.Contains(out, "password_file") || strings.Contains(out, "private_key_file") {
			t.Fatalf("healthcheck reads secrets it does not use:\n%s", out)
		}
	})
}

// The running services as an operator watches them: an unmigrated schema
// makes /health red with a log line naming migrate, until migrate runs;
// Pasee's /health follows its provider; overrides are listed at start; one
// login is followed by its request id through both logs; a lockout is a
// WARN line; HEAD and malformed requests get proper answers.
func TestOperatorRuntimeThroughTheBinaries(t *testing.T) {
	dir := t.TempDir()
	kp, pp := FreePort(t), FreePort(t)
	kiseeURL, paseeURL := fmt.Sprintf("http://127.0.0.1:%d", kp), fmt.Sprintf("http://127.0.0.1:%d", pp)
	kenv := []string{fmt.Sprintf("KISEE_SERVER_PORT=%d", kp), "KISEE_LOG_FORMAT=json", "KISEE_RATE_LIMIT_MAX_FAILURES=3"}
	penv := []string{fmt.Sprintf("PASEE_PORT=%d", pp), fmt.Sprintf("PASEE_IDENTITY_PROVIDERS_0_ENDPOINT=%s/", kiseeURL), "PASEE_JWT_PRIVATE_KEY_FILE=pasee-key.pem"}

	// Pasee on embedded defaults moved by the environment, never migrated,
	// its Kisee not started.
	if out, ok := run(t, dir, "pasee", nil, "", "keygen"); !ok {
		t.Fatal(out)
	} else {
		write(t, filepath.Join(dir, "pasee-key.pem"), out)
	}
	pasee := StartServing(t, "pasee", bins["pasee"], dir, paseeURL, penv, "--no-migrate")
	h := Do(t, "GET", paseeURL+"/health", nil).WantStatus(t, 503)
	if h.JSON["database"] != "KO" || !strings.Contains(string(h.Body), `"providers":{"kisee":"KO"}`) {
		t.Fatalf("unmigrated pasee: %s", h.Body)
	}
	for _, want := range []string{"run `pasee migrate`", fmt.Sprintf("127.0.0.1:%d, provider kisee at %s/", pp, kiseeURL), "PASEE_PORT=" + fmt.Sprint(pp), "PASEE_JWT_PRIVATE_KEY_FILE=pasee-key.pem"} {
		if !strings.Contains(pasee.Logs(), want) {
			t.Errorf("pasee's start-up log lacks %q", want)
		}
	}
	if out, ok := run(t, dir, "pasee", penv, "", "migrate"); !ok {
		t.Fatal(out)
	}
	h = Do(t, "GET", paseeURL+"/health", nil).WantStatus(t, 503)
	if h.JSON["database"] != "OK" {
		t.Fatalf("migrated pasee, kisee down: %s", h.Body)
	}

	// Kisee likewise, then migrated, with a user.
	kisee := StartServing(t, "kisee", bins["kisee"], dir, kiseeURL, kenv, "--no-migrate")
	if h := Do(t, "GET", kiseeURL+"/health", nil).WantStatus(t, 503); h.JSON["database"] != "KO" {
		t.Fatalf("unmigrated kisee: %s", h.Body)
	}
	if !strings.Contains(kisee.Logs(), "run `kisee migrate`") || !strings.Contains(kisee.Logs(), fmt.Sprintf("127.0.0.1:%d)", kp)) {
		t.Errorf("kisee's start-up log:\n%s", kisee.Logs())
	}
	if out, ok := run(t, dir, "kisee", kenv, "", "migrate"); !ok {
		t.Fatal(out)
	}
	if out, ok := run(t, dir, "kisee", kenv, "alice's password\n", "useradd", "alice", "--password-stdin"); !ok {
		t.Fatal(out)
	}
	if h := Do(t, "GET", kiseeURL+"/health", nil).WantStatus(t, 200); h.JSON["backend"] != "OK" {
		t.Fatalf("kisee: %s", h.Body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		h = Do(t, "GET", paseeURL+"/health", nil)
		if h.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pasee stays red with kisee up: %s", h.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(string(h.Body), `"providers":{"kisee":"OK"}`) {
		t.Fatalf("pasee: %s", h.Body)
	}

	// One login, one request id in both logs.
	Do(t, "POST", paseeURL+"/tokens/?idp=kisee", map[string]string{"login": "alice", "password": "alice's password"}, "X-Request-Id", "op-login-7").WantStatus(t, 201)
	waitLog(t, kisee, `"request_id":"op-login-7"`)
	waitLog(t, pasee, "request_id=op-login-7")
	if regexp.MustCompile(`"duration":\d`).MatchString(kisee.Logs()) || !strings.Contains(kisee.Logs(), `"duration":"`) {
		t.Error("JSON logs give durations as numbers")
	}

	// A lockout is one WARN line naming the account and the address.
	locked := false
	for range 10 {
		r := Do(t, "POST", kiseeURL+"/jwt/", map[string]string{"username": "mallory", "password": "wrong password"})
		if r.StatusCode == 429 {
			locked = true
			break
		}
	}
	if !locked {
		t.Fatal("no lockout")
	}
	waitLog(t, kisee, `"level":"WARN","msg":"login locked out","service":"kisee","account":"mallory","client":"127.0.0.1"`)

	// HEAD answers where GET does; a malformed request line gets a problem.
	for _, u := range []string{kiseeURL + "/health", kiseeURL + "/", kiseeURL + "/jwks.json", paseeURL + "/health", paseeURL + "/"} {
		resp, err := http.Head(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("HEAD %s: %d", u, resp.StatusCode)
		}
	}
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", kp))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET /%%zz: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

func waitLog(t *testing.T, p *Process, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.Logs(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s's log lacks %s", p.Name, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
