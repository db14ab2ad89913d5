package faults_test

import (
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/faults"
	"github.com/kisee-pasee/suite/internal/kisee/kiseetest"
	"github.com/kisee-pasee/suite/internal/kisee/mail/smtptest"
)

// metric returns the value of the Prometheus sample named exactly name
// (with its labels) in text, or -1.
func metric(text, name string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// waitMetric polls url/metrics until name reaches at least want.
func waitMetric(t *testing.T, url, name string, want float64, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		a := send("GET", url+"/metrics", nil, "")
		if metric(string(a.body), name) >= want {
			return string(a.body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached %v within %s", name, want, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var resetLink = regexp.MustCompile(`token=([A-Za-z0-9_.-]+)`)

// TestSMTPDownDuringRecovery: the SMTP server refuses connections when a
// user asks for a password reset, then hangs (accepts and never greets),
// then comes back. The request is answered 201 at once; the mail queue
// retries (each hung attempt bounded by [email] timeout), and the message
// is delivered when the server is back, its link working. Nothing leaks:
// not the token into logs or metrics, not goroutines or connections.
func TestSMTPDownDuringRecovery(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{Username: "kisee", Password: "smtp-secret-pw", InsecureAuth: true})
	proxy := faults.NewProxy(t, srv.Addr())
	if err := proxy.Set(faults.Down); err != nil {
		t.Fatal(err)
	}
	k := kiseetest.StartSQL(t, fmt.Sprintf("[email]\nhost = \"127.0.0.1\"\nport = %d\nsender = \"kisee@example.com\"\nsecurity = \"none\"\n"+
		"username = \"kisee\"\npassword = \"smtp-secret-pw\"\nattempts = 8\nretry_delay = \"100ms\"\ntimeout = \"500ms\"\n", proxy.Port()))
	before := runtime.NumGoroutine()

	start := time.Now()
	if a := send("POST", k.URL+"/password_recoveries/", map[string]string{"username": "alice"}, ""); a.status != 201 || len(a.body) != 0 || time.Since(start) > 2*time.Second {
		t.Fatalf("recovery with SMTP down: %d %q after %s", a.status, a.body, time.Since(start))
	}
	// Refused: retried.
	waitMetric(t, k.URL, "kisee_email_retries_total", 1, 15*time.Second)
	accepted := proxy.Accepted()
	if err := proxy.Set(faults.Hang); err != nil {
		t.Fatal(err)
	}
	// Hung: the attempt gives up after the timeout, and is retried.
	waitMetric(t, k.URL, "kisee_email_retries_total", 2, 15*time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for proxy.Accepted() == accepted {
		if time.Now().After(deadline) {
			t.Fatal("no attempt reached the hung server")
		}
		time.Sleep(20 * time.Millisecond)
	}
	hungAt := time.Now()
	if err := proxy.Set(faults.Up); err != nil {
		t.Fatal(err)
	}
	m := srv.Wait(t, 1, 30*time.Second)[0]
	if m.To[0] != "alice@example.com" || m.Auth != "kisee" {
		t.Fatalf("delivered to %v as %q", m.To, m.Auth)
	}
	if time.Since(hungAt) > 20*time.Second {
		t.Errorf("delivery took %s after the server came back", time.Since(hungAt))
	}
	found := resetLink.FindStringSubmatch(m.Body)
	if found == nil {
		t.Fatalf("no link in %s", m.Body)
	}
	tok := found[1]
	if a := send("PATCH", k.URL+"/users/alice/", []map[string]string{{"op": "replace", "path": "/password", "value": "a brand new passphrase"}}, tok); a.status != 204 {
		t.Fatalf("the delivered link: %d %s", a.status, a.body)
	}

	metrics := waitMetric(t, k.URL, `kisee_emails_sent_total{result="sent"}`, 1, 10*time.Second)
	if metric(metrics, `kisee_emails_sent_total{result="failed"}`) != 0 || metric(metrics, `kisee_emails_sent_total{result="dropped"}`) != 0 {
		t.Errorf("an email counted as failed or dropped:\n%s", metrics)
	}
	if len(srv.Messages()) != 1 {
		t.Errorf("%d messages delivered, want exactly 1", len(srv.Messages()))
	}
	for where, text := range map[string]string{"logs": k.Logs(), "metrics": metrics} {
		for _, secret := range []string{tok, strings.Split(tok, ".")[1], strings.Split(tok, ".")[2], "smtp-secret-pw"} {
			if strings.Contains(text, secret) {
				t.Errorf("the %s show a secret (%.12s...)", where, secret)
			}
		}
	}
	if !strings.Contains(k.Logs(), "will retry") || !strings.Contains(k.Logs(), "email sent") {
		t.Errorf("the retries and the delivery are not logged:\n%s", k.Logs())
	}
	// No goroutine left behind by the refused, hung and retried attempts.
	settle(t, before, 10)
}

// settle waits until the number of goroutines is back within tolerance
// of before, and fails the test if it does not come back within 10 s.
func settle(t *testing.T, before, tolerance int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before+tolerance {
			t.Logf("goroutines: %d before, %d after", before, n)
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 256<<10)
			t.Fatalf("goroutines: %d before, still %d after 10 s; the first stacks:\n%.20000s", before, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}
