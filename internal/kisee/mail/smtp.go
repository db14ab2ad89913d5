// Package mail sends Kisee's email: SMTP delivers one message (composed
// and sent with wneessen/go-mail), and Queue delivers them off the request
// path, with a bounded queue, background workers, retries with exponential
// backoff and jitter, logs and metrics. Neither ever logs a message body,
// which may hold a token, nor the SMTP password.
package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	netmail "net/mail"
	"net/textproto"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/kisee-pasee/suite/internal/kisee"
)

// Security is how the connection to the SMTP server is protected.
type Security string

// Security modes ([email] security).
const (
	// Opportunistic upgrades with STARTTLS when the server offers it, else
	// sends in clear. With credentials it behaves as StartTLS: a password
	// never travels in clear unless the mode is None.
	Opportunistic Security = "opportunistic"
	// StartTLS requires STARTTLS: a server that does not offer it fails.
	StartTLS Security = "starttls"
	// TLS is implicit TLS from the first byte (SMTPS, port 465).
	TLS Security = "tls"
	// None never encrypts; credentials, if any, are sent in clear.
	None Security = "none"
)

// ParseSecurity checks a security mode; "" is Opportunistic.
func ParseSecurity(s string) (Security, error) {
	switch Security(s) {
	case "":
		return Opportunistic, nil
	case Opportunistic, StartTLS, TLS, None:
		return Security(s), nil
	}
	return "", fmt.Errorf("unknown security %q (one of: opportunistic, starttls, tls, none)", s)
}

// Config describes an SMTP server and the sender.
type Config struct {
	Host string
	// Port defaults to 465 with TLS, else 25.
	Port     int
	Security Security
	// From is the sender: "kisee@example.com" or "Kisee <kisee@example.com>".
	From string
	// Username and Password, when set, authenticate (SMTP AUTH: the best
	// mechanism the server offers among SCRAM, CRAM-MD5, PLAIN and LOGIN;
	// PLAIN or LOGIN over an unencrypted connection with Security None).
	Username string
	Password string
	// Timeout bounds the connection and each SMTP command; default 10 s.
	Timeout time.Duration
	// RootCAs verify the server's certificate; nil: the system's roots.
	RootCAs *x509.CertPool
}

// DefaultTimeout bounds an SMTP exchange.
const DefaultTimeout = 10 * time.Second

// SMTP sends messages through one SMTP server, one connection per message.
// It is safe for concurrent use.
type SMTP struct {
	cfg    Config
	from   *netmail.Address
	domain string // of the sender, for Message-IDs
}

// NewSMTP checks cfg and returns a sender.
func NewSMTP(cfg Config) (*SMTP, error) {
	if cfg.Host == "" {
		return nil, errors.New("smtp: no host")
	}
	if cfg.Security == "" {
		cfg.Security = Opportunistic
	}
	if _, err := ParseSecurity(string(cfg.Security)); err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	if cfg.Port == 0 {
		cfg.Port = 25
		if cfg.Security == TLS {
			cfg.Port = 465
		}
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("smtp: port %d out of range", cfg.Port)
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return nil, errors.New("smtp: give both username and password, or neither")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	from, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("smtp: sender %q is not an email address: %w", cfg.From, err)
	}
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	return &SMTP{cfg: cfg, from: from, domain: domain}, nil
}

// Describe is the sender's settings for the start-up log, without secrets.
func (s *SMTP) Describe() string {
	auth := "no auth"
	if s.cfg.Username != "" {
		auth = "auth as " + s.cfg.Username
	}
	return fmt.Sprintf("%s:%d (%s, %s)", s.cfg.Host, s.cfg.Port, s.cfg.Security, auth)
}

func (s *SMTP) client() (*gomail.Client, error) {
	tlsConfig := &tls.Config{ServerName: s.cfg.Host, RootCAs: s.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	opts := []gomail.Option{
		gomail.WithPort(s.cfg.Port),
		gomail.WithTimeout(s.cfg.Timeout),
		gomail.WithTLSConfig(tlsConfig),
	}
	switch s.cfg.Security {
	case TLS:
		opts = append(opts, gomail.WithSSL())
	case StartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case None:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default: // Opportunistic
		if s.cfg.Username != "" {
			opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
		} else {
			opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
		}
	}
	if s.cfg.Username != "" {
		opts = append(opts, gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
		if s.cfg.Security == None {
			opts = append(opts, gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthPlainNoEnc, gomail.SMTPAuthLoginNoEnc))
		} else {
			opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover))
		}
	}
	c, err := gomail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	return c, nil
}

// Compose returns the MIME message for m: From, To, Subject, Date,
// Message-ID, Auto-Submitted, and the body as quoted-printable UTF-8 text.
func (s *SMTP) Compose(m kisee.Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	msg.FromMailAddress(s.from)
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("recipient: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(rand.Text() + "@" + s.domain)
	msg.SetDate()
	msg.SetUserAgent("Kisee")
	msg.SetGenHeader("Auto-Submitted", "auto-generated") // RFC 3834: no auto-replies
	msg.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	msg.SetBodyString(gomail.TypeTextPlain, m.Body)
	return msg, nil
}

// Send implements Sender: it connects, sends m and disconnects.
func (s *SMTP) Send(ctx context.Context, m kisee.Message) error {
	msg, err := s.Compose(m)
	if err != nil {
		return &PermanentError{Err: err}
	}
	c, err := s.client()
	if err != nil {
		return err
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		if isPermanent(err) {
			return &PermanentError{Err: err}
		}
		return fmt.Errorf("smtp %s:%d: %w", s.cfg.Host, s.cfg.Port, err)
	}
	return nil
}

// PermanentError is a failure that retrying will not cure: a 5xx answer
// of the server (unknown recipient, refused credentials) or a message that
// cannot be written.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent failure: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *PermanentError) Unwrap() error { return e.Err }

func isPermanent(err error) bool {
	var se *gomail.SendError
	if errors.As(err, &se) && se.ErrorCode() >= 500 {
		return true
	}
	var te *textproto.Error
	return errors.As(err, &te) && te.Code >= 500
}
