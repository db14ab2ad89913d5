// Package smtptest runs a real SMTP server (emersion/go-smtp) on
// 127.0.0.1 for tests: it records the messages it accepts, can require
// STARTTLS, implicit TLS or AUTH PLAIN, and can fail the first attempts
// with a transient 4xx answer.
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options describe the server.
type Options struct {
	// STARTTLS offers STARTTLS; ImplicitTLS speaks TLS from the first byte.
	STARTTLS    bool
	ImplicitTLS bool
	// Username and Password, when set, make AUTH PLAIN mandatory before
	// MAIL. AUTH is offered over TLS only, unless InsecureAuth.
	Username     string
	Password     string
	InsecureAuth bool
	// FailFirst answers the first FailFirst MAIL commands with FailCode
	// (default 451, a transient failure).
	FailFirst int
	FailCode  int
}

// Message is a message the server accepted.
type Message struct {
	From   string   // envelope sender
	To     []string // envelope recipients
	Data   []byte   // the message as received
	TLS    bool     // whether it came over TLS
	Auth   string   // the user who authenticated, if any
	Header mail.Header
	// Body is the decoded text body (quoted-printable or base64 undone).
	Body string
}

// Server is a running SMTP server.
type Server struct {
	Host string
	Port int
	// CAFile is a PEM file holding the server's self-signed certificate,
	// to trust as a root.
	CAFile string

	mu       sync.Mutex
	messages []Message
	mails    int // MAIL commands seen, refused ones included
	arrived  chan struct{}
	opts     Options
}

// Start runs a server until the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.FailCode == 0 {
		o.FailCode = 451
	}
	cert, caPEM := selfSigned(t)
	s := &Server{Host: "127.0.0.1", arrived: make(chan struct{}, 1024), opts: o}
	s.CAFile = filepath.Join(t.TempDir(), "smtp-ca.pem")
	if err := os.WriteFile(s.CAFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &session{srv: s, conn: c, tls: isTLS}, nil
	}))
	srv.Domain = "smtp.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.AllowInsecureAuth = o.InsecureAuth
	srv.ErrorLog = discardLog{}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if o.STARTTLS {
		srv.TLSConfig = tlsConfig
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = ln.Addr().(*net.TCPAddr).Port
	if o.ImplicitTLS {
		ln = tls.NewListener(ln, tlsConfig)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// ClosedPort returns a port of 127.0.0.1 that refuses every SMTP session
// (each connection is reset at once): an SMTP server that is down.
func ClosedPort(t testing.TB) int {
	t.Helper()
	// A listener that keeps the port for the whole test and drops every
	// connection at once: a port merely closed could be taken by another
	// test's server meanwhile, and answer.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset, as a refused connection would be
			}
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Messages returns the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Attempts is the number of MAIL commands received, refused ones included.
func (s *Server) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mails
}

// Wait returns once n messages were accepted, or fails the test after
// timeout.
func (s *Server) Wait(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if m := s.Messages(); len(m) >= n {
			return m
		}
		select {
		case <-s.arrived:
		case <-deadline.C:
			t.Fatalf("smtptest: %d message(s) after %s, want %d", len(s.Messages()), timeout, n)
		}
	}
}

type session struct {
	srv  *Server
	conn *smtp.Conn
	tls  bool
	auth string
	from string
	to   []string
}

func (s *session) AuthMechanisms() []string {
	if s.srv.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != s.srv.opts.Username || password != s.srv.opts.Password {
			return smtp.ErrAuthFailed
		}
		s.auth = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.srv.mu.Lock()
	s.srv.mails++
	n := s.srv.mails
	s.srv.mu.Unlock()
	if s.srv.opts.Username != "" && s.auth == "" {
		return smtp.ErrAuthRequired
	}
	if n <= s.srv.opts.FailFirst {
		return &smtp.SMTPError{Code: s.srv.opts.FailCode, EnhancedCode: smtp.EnhancedCode{s.srv.opts.FailCode / 100, 3, 0}, Message: "try again later"}
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := s.conn.TLSConnectionState()
	m := Message{From: s.from, To: s.to, Data: data, TLS: isTLS || s.tls, Auth: s.auth}
	if parsed, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		m.Header = parsed.Header
		m.Body = decodeBody(parsed)
	}
	s.srv.mu.Lock()
	s.srv.messages = append(s.srv.messages, m)
	s.srv.mu.Unlock()
	select {
	case s.srv.arrived <- struct{}{}:
	default:
	}
	return nil
}

func (s *session) Reset() { s.from, s.to = "", nil }

func (s *session) Logout() error { return nil }

func decodeBody(m *mail.Message) string {
	var r io.Reader = m.Body
	switch strings.ToLower(m.Header.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		raw, _ := io.ReadAll(r)
		dec, err := decodeBase64(raw)
		if err != nil {
			return string(raw)
		}
		return string(dec)
	}
	b, _ := io.ReadAll(r)
	return string(b)
}

// DecodeSubject undoes the RFC 2047 encoding of a header value.
func DecodeSubject(v string) string {
	d, err := new(mime.WordDecoder).DecodeHeader(v)
	if err != nil {
		return v
	}
	return d
}

func selfSigned(t testing.TB) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

type discardLog struct{}

func (discardLog) Printf(string, ...any) {}
func (discardLog) Println(...any)        {}

func decodeBase64(raw []byte) ([]byte, error) {
	clean := strings.NewReplacer("\r", "", "\n", "").Replace(string(raw))
	return base64.StdEncoding.DecodeString(clean)
}
