package mail_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/mail"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/kisee"
	kmail "github.com/kisee-pasee/suite/internal/kisee/mail"
	"github.com/kisee-pasee/suite/internal/kisee/mail/smtptest"
)

const secret = "eyJTOKEN.SECRET.VALUE"

func message() kisee.Message {
	return kisee.Message{
		To:      "alice@example.com",
		Subject: "Réinitialisez votre mot de passe",
		Body:    "Hello alice,\n\nopen https://app.example.com/reset?token=" + secret + " within 12 hours.\n" + strings.Repeat("long line ", 30) + "\n",
		Kind:    "password_reset",
		User:    "alice",
	}
}

func roots(t *testing.T, s *smtptest.Server) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		t.Fatal("bad CA file")
	}
	return p
}

func newSMTP(t *testing.T, cfg kmail.Config) *kmail.SMTP {
	t.Helper()
	if cfg.From == "" {
		cfg.From = "Kisee <kisee@example.com>"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	s, err := kmail.NewSMTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The message carries the headers a mail client and a spam filter expect,
// and its body survives the transfer encoding.
func TestSendComposesAProperMessage(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	s := newSMTP(t, kmail.Config{Host: srv.Host, Port: srv.Port, Security: kmail.None})
	before := time.Now().Add(-time.Second)
	if err := s.Send(context.Background(), message()); err != nil {
		t.Fatal(err)
	}
	m := srv.Wait(t, 1, 5*time.Second)[0]
	if m.From != "kisee@example.com" || len(m.To) != 1 || m.To[0] != "alice@example.com" {
		t.Fatalf("envelope %q → %q", m.From, m.To)
	}
	h := m.Header
	if from, err := mail.ParseAddress(h.Get("From")); err != nil || from.Address != "kisee@example.com" || from.Name != "Kisee" {
		t.Errorf("From %q (%v)", h.Get("From"), err)
	}
	if to, err := mail.ParseAddress(h.Get("To")); err != nil || to.Address != "alice@example.com" {
		t.Errorf("To %q (%v)", h.Get("To"), err)
	}
	if got := smtptest.DecodeSubject(h.Get("Subject")); got != "Réinitialisez votre mot de passe" {
		t.Errorf("Subject %q decodes to %q", h.Get("Subject"), got)
	}
	if d, err := h.Date(); err != nil || d.Before(before) || d.After(time.Now().Add(time.Second)) {
		t.Errorf("Date %q (%v)", h.Get("Date"), err)
	}
	if !regexp.MustCompile(`^<[A-Za-z0-9]{20,}@example\.com>$`).MatchString(h.Get("Message-Id")) {
		t.Errorf("Message-ID %q", h.Get("Message-Id"))
	}
	if h.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("Auto-Submitted %q", h.Get("Auto-Submitted"))
	}
	if !strings.HasPrefix(h.Get("Content-Type"), "text/plain") || !strings.Contains(strings.ToLower(h.Get("Content-Type")), "utf-8") {
		t.Errorf("Content-Type %q", h.Get("Content-Type"))
	}
	if h.Get("Mime-Version") != "1.0" {
		t.Errorf("MIME-Version %q", h.Get("Mime-Version"))
	}
	if strings.ReplaceAll(m.Body, "\r\n", "\n") != message().Body {
		t.Errorf("body:\n%q\nwant\n%q", m.Body, message().Body)
	}
	for _, line := range bytes.Split(m.Data, []byte("\r\n")) {
		if len(line) > 998 {
			t.Fatalf("line of %d bytes", len(line))
		}
	}
}

func TestSecurityModes(t *testing.T) {
	cases := []struct {
		name    string
		server  smtptest.Options
		cfg     kmail.Config
		tls     bool   // the message must arrive over TLS
		auth    string // ... authenticated as
		failure bool   // sending must fail
	}{
		{name: "opportunistic upgrades when offered", server: smtptest.Options{STARTTLS: true}, cfg: kmail.Config{Security: kmail.Opportunistic}, tls: true},
		{name: "opportunistic sends in clear when not offered", server: smtptest.Options{}, cfg: kmail.Config{}},
		{name: "starttls", server: smtptest.Options{STARTTLS: true}, cfg: kmail.Config{Security: kmail.StartTLS}, tls: true},
		{name: "starttls refuses a server without it", server: smtptest.Options{}, cfg: kmail.Config{Security: kmail.StartTLS}, failure: true},
		{name: "implicit tls", server: smtptest.Options{ImplicitTLS: true}, cfg: kmail.Config{Security: kmail.TLS}, tls: true},
		{name: "none stays in clear", server: smtptest.Options{STARTTLS: true}, cfg: kmail.Config{Security: kmail.None}},
		{name: "auth over starttls", server: smtptest.Options{STARTTLS: true, Username: "kisee", Password: "smtp-secret"},
			cfg: kmail.Config{Security: kmail.StartTLS, Username: "kisee", Password: "smtp-secret"}, tls: true, auth: "kisee"},
		{name: "auth over implicit tls", server: smtptest.Options{ImplicitTLS: true, Username: "kisee", Password: "smtp-secret"},
			cfg: kmail.Config{Security: kmail.TLS, Username: "kisee", Password: "smtp-secret"}, tls: true, auth: "kisee"},
		{name: "opportunistic with credentials requires tls", server: smtptest.Options{STARTTLS: true, Username: "kisee", Password: "smtp-secret"},
			cfg: kmail.Config{Username: "kisee", Password: "smtp-secret"}, tls: true, auth: "kisee"},
		{name: "credentials never sent in clear unless none", server: smtptest.Options{Username: "kisee", Password: "smtp-secret", InsecureAuth: true},
			cfg: kmail.Config{Username: "kisee", Password: "smtp-secret"}, failure: true},
		{name: "none sends credentials in clear when told", server: smtptest.Options{Username: "kisee", Password: "smtp-secret", InsecureAuth: true},
			cfg: kmail.Config{Security: kmail.None, Username: "kisee", Password: "smtp-secret"}, auth: "kisee"},
		{name: "wrong password", server: smtptest.Options{STARTTLS: true, Username: "kisee", Password: "smtp-secret"},
			cfg: kmail.Config{Security: kmail.StartTLS, Username: "kisee", Password: "wrong-secret"}, failure: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, tc.server)
			cfg := tc.cfg
			cfg.Host, cfg.Port, cfg.RootCAs = srv.Host, srv.Port, roots(t, srv)
			err := newSMTP(t, cfg).Send(context.Background(), message())
			if tc.failure {
				if err == nil {
					t.Fatal("sent")
				}
				if strings.Contains(err.Error(), "smtp-secret") || strings.Contains(err.Error(), "wrong-secret") || strings.Contains(err.Error(), secret) {
					t.Fatalf("error leaks a secret: %v", err)
				}
				if len(srv.Messages()) != 0 {
					t.Fatal("the server accepted a message")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m := srv.Wait(t, 1, 5*time.Second)[0]
			if m.TLS != tc.tls || m.Auth != tc.auth {
				t.Fatalf("message arrived with TLS %v, auth %q; want %v, %q", m.TLS, m.Auth, tc.tls, tc.auth)
			}
		})
	}
}

// A certificate the sender does not trust stops the exchange.
func TestUntrustedCertificate(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{STARTTLS: true})
	err := newSMTP(t, kmail.Config{Host: srv.Host, Port: srv.Port, Security: kmail.StartTLS}).Send(context.Background(), message())
	if err == nil || len(srv.Messages()) != 0 {
		t.Fatalf("sent over an unverified connection (%v)", err)
	}
}

func TestNewSMTPChecksConfig(t *testing.T) {
	for _, cfg := range []kmail.Config{
		{From: "kisee@example.com"},
		{Host: "h", From: "not an address"},
		{Host: "h", From: "kisee@example.com", Username: "u"},
		{Host: "h", From: "kisee@example.com", Security: "ssl"},
		{Host: "h", From: "kisee@example.com", Port: 70000},
	} {
		if _, err := kmail.NewSMTP(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	s, err := kmail.NewSMTP(kmail.Config{Host: "h", From: "kisee@example.com", Security: kmail.TLS, Username: "u", Password: "p4ss"})
	if err != nil {
		t.Fatal(err)
	}
	if d := s.Describe(); d != "h:465 (tls, auth as u)" || strings.Contains(d, "p4ss") {
		t.Fatalf("Describe %q", d)
	}
}

type counter struct{ n atomic.Int64 }

func (c *counter) Inc()       { c.n.Add(1) }
func (c *counter) get() int64 { return c.n.Load() }

type metrics struct{ sent, failed, dropped, retries counter }

func (m *metrics) queue() kmail.Metrics {
	return kmail.Metrics{Sent: &m.sent, Failed: &m.failed, Dropped: &m.dropped, Retries: &m.retries}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func compose(m kisee.Message) kisee.Compose {
	return func(context.Context) (kisee.Message, bool, error) { return m, true, nil }
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Transient failures are retried with backoff until the server accepts.
func TestQueueRetriesTransientFailures(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{FailFirst: 2})
	var m metrics
	var logs syncBuffer
	q := kmail.NewQueue(newSMTP(t, kmail.Config{Host: srv.Host, Port: srv.Port}), kmail.QueueConfig{
		Attempts: 5, RetryDelay: 20 * time.Millisecond, Metrics: m.queue(), Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	defer q.Close(context.Background())
	start := time.Now()
	if !q.Enqueue(compose(message())) {
		t.Fatal("dropped")
	}
	srv.Wait(t, 1, 10*time.Second)
	eventually(t, "the sent count", func() bool { return m.sent.get() == 1 })
	// Waits of 10–20 ms, then 20–40 ms.
	if elapsed := time.Since(start); elapsed < 30*time.Millisecond {
		t.Fatalf("delivered after %s: no backoff", elapsed)
	}
	if srv.Attempts() != 3 || m.retries.get() != 2 || m.failed.get() != 0 {
		t.Fatalf("attempts %d, retries %d, failed %d", srv.Attempts(), m.retries.get(), m.failed.get())
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatal("the logs show the message body")
	}
}

// A server that stays down: every attempt is made, then the message is
// counted failed; the logs say so without the body.
func TestQueueGivesUp(t *testing.T) {
	var m metrics
	var logs syncBuffer
	q := kmail.NewQueue(newSMTP(t, kmail.Config{Host: "127.0.0.1", Port: smtptest.ClosedPort(t), Username: "kisee", Password: "smtp-secret"}), kmail.QueueConfig{
		Attempts: 3, RetryDelay: time.Millisecond, Metrics: m.queue(), Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	defer q.Close(context.Background())
	q.Enqueue(compose(message()))
	eventually(t, "the failure", func() bool { return m.failed.get() == 1 })
	if m.retries.get() != 2 || m.sent.get() != 0 {
		t.Fatalf("retries %d, sent %d", m.retries.get(), m.sent.get())
	}
	out := logs.String()
	if !strings.Contains(out, "every attempt failed") || !strings.Contains(out, "user=alice") {
		t.Fatalf("logs:\n%s", out)
	}
	if strings.Contains(out, secret) || strings.Contains(out, "smtp-secret") {
		t.Fatalf("the logs leak a secret:\n%s", out)
	}
}

// A permanent refusal (5xx) is not retried.
func TestQueueDoesNotRetryPermanentFailures(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{FailFirst: 100, FailCode: 550})
	var m metrics
	q := kmail.NewQueue(newSMTP(t, kmail.Config{Host: srv.Host, Port: srv.Port}), kmail.QueueConfig{
		Attempts: 5, RetryDelay: time.Millisecond, Metrics: m.queue(), Logger: slog.New(slog.DiscardHandler),
	})
	defer q.Close(context.Background())
	q.Enqueue(compose(message()))
	eventually(t, "the failure", func() bool { return m.failed.get() == 1 })
	if srv.Attempts() != 1 || m.retries.get() != 0 {
		t.Fatalf("attempts %d, retries %d", srv.Attempts(), m.retries.get())
	}
}

type blockingSender struct{ release chan struct{} }

func (b blockingSender) Send(ctx context.Context, _ kisee.Message) error {
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Beyond its size the queue drops, counts and never blocks the caller.
func TestQueueDropsWhenFull(t *testing.T) {
	var m metrics
	sender := blockingSender{release: make(chan struct{})}
	q := kmail.NewQueue(sender, kmail.QueueConfig{Size: 2, Workers: 1, Metrics: m.queue(), Logger: slog.New(slog.DiscardHandler)})
	started := make(chan struct{})
	q.Enqueue(func(context.Context) (kisee.Message, bool, error) { close(started); return message(), true, nil })
	<-started // the worker holds the first; two more fit
	accepted := 0
	for range 10 {
		if q.Enqueue(compose(message())) {
			accepted++
		}
	}
	if accepted != 2 || m.dropped.get() != 8 {
		t.Fatalf("accepted %d, dropped %d", accepted, m.dropped.get())
	}
	close(sender.release)
	eventually(t, "the queued messages", func() bool { return m.sent.get() == 3 })
	if err := q.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if q.Enqueue(compose(message())) {
		t.Fatal("a closed queue accepted a message")
	}
}

// Nothing to send (unknown user) counts nothing; a compose error counts a
// failure.
func TestQueueCompose(t *testing.T) {
	var m metrics
	srv := smtptest.Start(t, smtptest.Options{})
	q := kmail.NewQueue(newSMTP(t, kmail.Config{Host: srv.Host, Port: srv.Port}), kmail.QueueConfig{Metrics: m.queue(), Logger: slog.New(slog.DiscardHandler)})
	q.Enqueue(func(context.Context) (kisee.Message, bool, error) { return kisee.Message{}, false, nil })
	q.Enqueue(func(context.Context) (kisee.Message, bool, error) {
		return kisee.Message{}, false, errors.New("backend down")
	})
	q.Enqueue(compose(message()))
	srv.Wait(t, 1, 5*time.Second)
	if err := q.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m.sent.get() != 1 || m.failed.get() != 1 || m.dropped.get() != 0 || len(srv.Messages()) != 1 {
		t.Fatalf("sent %d failed %d dropped %d messages %d", m.sent.get(), m.failed.get(), m.dropped.get(), len(srv.Messages()))
	}
}

// Close sends what is queued, once, and gives up at its deadline.
func TestQueueCloseDrainsThenGivesUp(t *testing.T) {
	var m metrics
	srv := smtptest.Start(t, smtptest.Options{})
	q := kmail.NewQueue(newSMTP(t, kmail.Config{Host: srv.Host, Port: srv.Port}), kmail.QueueConfig{Workers: 1, Metrics: m.queue(), Logger: slog.New(slog.DiscardHandler)})
	for range 3 {
		q.Enqueue(compose(message()))
	}
	if err := q.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(srv.Messages()) != 3 || m.sent.get() != 3 {
		t.Fatalf("%d messages delivered at close", len(srv.Messages()))
	}

	var m2 metrics
	stuck := kmail.NewQueue(blockingSender{release: make(chan struct{})}, kmail.QueueConfig{Workers: 1, Metrics: m2.queue(), Logger: slog.New(slog.DiscardHandler)})
	for range 3 {
		stuck.Enqueue(compose(message()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := stuck.Close(ctx); err == nil {
		t.Fatal("Close of a stuck queue returned no error")
	}
	if m2.sent.get() != 0 || m2.failed.get()+m2.dropped.get() != 3 {
		t.Fatalf("sent %d failed %d dropped %d", m2.sent.get(), m2.failed.get(), m2.dropped.get())
	}
}
