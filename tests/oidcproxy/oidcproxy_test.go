package oidcproxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/pasee/app"
	"github.com/kisee-pasee/suite/internal/pasee/paseetest"
	"github.com/kisee-pasee/suite/pkg/token"
	"github.com/kisee-pasee/suite/tests/oidclogin"
)

// binary finds or builds oauth2-proxy, or skips the test loudly (fails it
// under CI=true).
func binary(t *testing.T) string {
	t.Helper()
	bin, err := Binary(t.Context())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: oauth2-proxy %s is needed: %v", Version, err)
		}
		msg := fmt.Sprintf("the oauth2-proxy test is SKIPPED: %v", err)
		fmt.Fprintln(os.Stderr, "WARNING: "+msg)
		t.Skip(msg)
	}
	return bin
}

// oauth2-proxy, configured with the flags README.md documents, protects an
// upstream for the Pasee group articles.writers only: Alice, put in it
// with `pasee append`, gets through with her name and groups passed on;
// Bob, who is not, gets 403 from the proxy and never reaches the
// upstream; once `pasee append` puts him in the group, his next login
// gets through. Everything on loopback.
func TestOAuth2ProxyAllowsOnlyAPaseeGroup(t *testing.T) {
	bin := binary(t)
	ctx := t.Context()

	// The upstream records who the proxy let through.
	var hits atomic.Int32
	var seen sync.Map // user -> X-Forwarded-Groups
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		seen.Store(r.Header.Get("X-Forwarded-User"), r.Header.Get("X-Forwarded-Groups"))
		fmt.Fprintf(w, "wiki page for %s (%s)\n", r.Header.Get("X-Forwarded-User"), r.Header.Get("X-Forwarded-Email"))
	}))
	t.Cleanup(upstream.Close)

	proxyAddr := freeAddr(t)
	proxyURL := "http://" + proxyAddr
	const clientSecret = "oauth2-proxy test secret, 32 bytes+"

	// Pasee, with Kisee behind it and oauth2-proxy as a confidential
	// client; its store is a SQLite file that `pasee append` also opens.
	kisee := kiseetest.Start(t, "")
	dir := t.TempDir()
	storage := fmt.Sprintf("\n[storage]\nurl = %q\n", "sqlite:"+filepath.Join(dir, "pasee.db"))
	clients := fmt.Sprintf(`
[[clients]]
id = "oauth2-proxy"
secret = %q
name = "Internal wiki"
redirect_uris = [%q]
`, clientSecret, proxyURL+"/oauth2/callback")
	pasee := paseetest.Start(t, paseetest.SQLite, paseetest.KiseeProvider("kisee", kisee.URL)+storage+clients)
	settingsFile := filepath.Join(dir, "pasee.toml")
	key, err := token.GenerateKey(token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	pemKey, _ := key.MarshalPEM()
	cli := fmt.Sprintf("private_key = '''%s'''\n", pemKey) + storage + paseetest.KiseeProvider("kisee", kisee.URL)
	if err := os.WriteFile(settingsFile, []byte(cli), 0o600); err != nil {
		t.Fatal(err)
	}
	paseeAppend := func(user, group string) {
		t.Helper()
		var out bytes.Buffer
		code := app.Main(ctx, []string{"--settings-file", settingsFile, "--no-migrate", "append", "--groups", group, user},
			app.Stdio{In: strings.NewReader(""), Out: &out, Err: &out}, "test")
		if code != 0 {
			t.Fatalf("pasee append --groups %s %s: exit %d: %s", group, user, code, out.String())
		}
	}
	paseeAppend("kisee-alice", "articles.writers")
	paseeAppend("kisee-bob", "articles.readers")

	// oauth2-proxy, as README.md configures it.
	startProxy(t, bin, proxyAddr,
		"--provider=oidc",
		"--provider-display-name=Pasee",
		"--oidc-issuer-url="+pasee.URL,
		"--client-id=oauth2-proxy",
		"--client-secret="+clientSecret,
		"--redirect-url="+proxyURL+"/oauth2/callback",
		"--upstream="+upstream.URL+"/",
		"--scope=openid email profile groups",
		"--allowed-group=articles.writers",
		"--oidc-groups-claim=groups",
		"--insecure-oidc-allow-unverified-email",
		"--email-domain=*",
		"--code-challenge-method=S256",
		"--skip-provider-button",
		"--cookie-secret=0123456789abcdef0123456789abcdef",
		"--cookie-secure=false", // plain http on loopback; keep the default (true) behind TLS
	)

	// Without a session the proxy sends the browser to Pasee's
	// authorization endpoint, with PKCE.
	d, err := oidclogin.Discover(ctx, http.DefaultClient, pasee.URL)
	if err != nil {
		t.Fatal(err)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(proxyURL + "/oauth2/start?rd=%2Fpage")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, d.AuthorizationEndpoint+"?") ||
		!strings.Contains(loc, "code_challenge_method=S256") || !strings.Contains(loc, "client_id=oauth2-proxy") {
		t.Fatalf("the proxy's start of login: %s to %q, want 302 to %s with PKCE", resp.Status, loc, d.AuthorizationEndpoint)
	}

	// Alice is in articles.writers: through, with her name and groups.
	status, body := browse(t, proxyURL+"/page", "alice", "correct horse battery")
	if status != http.StatusOK || !strings.Contains(body, "wiki page for kisee-alice (alice@example.com)") {
		t.Fatalf("Alice, a member of articles.writers: %d %.300q", status, body)
	}
	if g, _ := seen.Load("kisee-alice"); !strings.Contains(fmt.Sprint(g), "articles.writers") {
		t.Errorf("X-Forwarded-Groups of Alice: %q", g)
	}

	// Bob is not: 403 from the proxy, the upstream never reached.
	before := hits.Load()
	status, body = browse(t, proxyURL+"/page", "bob", "Tr0ub4dor&3 ünïcode ✓")
	if status != http.StatusForbidden {
		t.Fatalf("Bob, not a member of articles.writers: %d %.300q, want 403", status, body)
	}
	if hits.Load() != before {
		t.Fatal("the upstream was reached by Bob")
	}

	// `pasee append` puts him in the group: his next login gets through.
	paseeAppend("kisee-bob", "articles.writers")
	status, body = browse(t, proxyURL+"/page", "bob", "Tr0ub4dor&3 ünïcode ✓")
	if status != http.StatusOK || !strings.Contains(body, "wiki page for kisee-bob") {
		t.Fatalf("Bob, once appended to articles.writers: %d %.300q", status, body)
	}
}

// browse opens target in a fresh browser (cookie jar), logs in on Pasee's
// login page when it shows, and returns the final status and page.
func browse(t *testing.T, target, login, password string) (int, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := client.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `type="password"`) {
		return resp.StatusCode, string(page)
	}
	form, err := oidclogin.LoginForm(page, resp.Request.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	if resp, err = form.Submit(t.Context(), client, login, password); err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ = io.ReadAll(resp.Body)
	return resp.StatusCode, string(page)
}

// freeAddr returns a loopback address free at the time of the call: the
// proxy's callback URL must be registered with Pasee before it starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProxy runs oauth2-proxy on addr until the test ends and waits
// until it answers /ping.
func startProxy(t *testing.T, bin, addr string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"--http-address=" + addr}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // no OAUTH2_PROXY_* from the environment
	var mu sync.Mutex
	var logs strings.Builder
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	go func() {
		s := bufio.NewScanner(pr)
		for s.Scan() {
			mu.Lock()
			logs.WriteString(s.Text() + "\n")
			mu.Unlock()
		}
	}()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); pw.Close() }()
	proxyLogs := func() string { mu.Lock(); defer mu.Unlock(); return logs.String() }
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("oauth2-proxy logs:\n%s", proxyLogs())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("oauth2-proxy exited at start: %v\n%s", err, proxyLogs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("oauth2-proxy not answering /ping after 20 s\n%s", proxyLogs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
