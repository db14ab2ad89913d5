package app

import (
	"context"
	"crypto/x509"
	"errors"
	netmail "net/mail"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisee-pasee/suite/internal/kisee"
	"github.com/kisee-pasee/suite/internal/kisee/mail"
	"github.com/kisee-pasee/suite/internal/settings"
)

// Defaults of [email].
const (
	defaultMailAttempts   = 5
	defaultMailRetryDelay = 4 * time.Second
	defaultMailQueueSize  = 256
	// mailDrainTimeout bounds how long Close lets queued email go out.
	mailDrainTimeout = 5 * time.Second
)

// emailDefaults checks [email] and parses the [email.password_reset]
// templates. Email is on when host is set; any other [email] value
// without a host is a mistake.
func (cfg *Config) emailDefaults() error {
	e, src := &cfg.Email, cfg.Source
	pr := &e.PasswordReset
	if pr.TTL < 0 {
		return src.Errorf("email.password_reset.ttl", "must be positive")
	}
	ttl := pr.TTL.Or(kisee.DefaultResetTTL)
	pr.TTL = settings.Duration(ttl)
	subject, body, link := pr.Subject, pr.Body, pr.URL
	if subject == "" {
		subject = kisee.DefaultResetSubject
	}
	if body == "" {
		body = kisee.DefaultResetBody
	}
	if link == "" {
		link = cfg.Server.Hostname + kisee.DefaultResetURLPath
	}
	tmpl, err := kisee.ParseResetEmail(subject, body, link)
	if err != nil {
		var te *kisee.TemplateError
		if errors.As(err, &te) {
			msg := strings.TrimPrefix(te.Err.Error(), "template: ")
			return src.Errorf("email.password_reset."+te.Field, "template error: %s (a Go text/template that may use .Username, .Token, .ExpiresIn and, but in url, .URL)", msg)
		}
		return src.Errorf("email.password_reset", "%v", err)
	}
	cfg.ResetEmail = tmpl

	if e.Host == "" {
		// In a fixed order, so that the same file always names the same key.
		for _, k := range []struct {
			key string
			set bool
		}{
			{"email.sender", e.Sender != ""}, {"email.port", e.Port != 0}, {"email.security", e.Security != ""},
			{"email.username", e.Username != ""}, {"email.password", e.Password != ""}, {"email.ca_file", e.CAFile != ""},
		} {
			if k.set {
				return src.Errorf(k.key, "is set but email.host is not: set host (the SMTP server) to send password-recovery email, or remove [email]")
			}
		}
		return nil
	}
	security, err := mail.ParseSecurity(e.Security)
	if err != nil {
		return src.Errorf("email.security", "%v", err)
	}
	switch {
	case e.Port < 0 || e.Port > 65535:
		return src.Errorf("email.port", "port %d out of range", e.Port)
	case e.Port == 0 && security == mail.TLS:
		e.Port = 465
	case e.Port == 0:
		e.Port = 25
	case e.Port == 465 && e.Security == "":
		security = mail.TLS
	case e.Port == 465 && security != mail.TLS:
		return src.Errorf("email.security", "port 465 is SMTP over implicit TLS: use security = \"tls\" there, or port 587 for %q", security)
	}
	e.Security = string(security)
	if e.Sender == "" {
		return src.Missing("email.sender")
	}
	if _, err := netmail.ParseAddress(e.Sender); err != nil {
		return src.Errorf("email.sender", "%q is not an email address such as kisee@example.com or \"Kisee <kisee@example.com>\"", e.Sender)
	}
	switch {
	case e.Username != "" && e.Password == "":
		return src.Errorf("email.password", "email.username is set: give password (or password_file) too")
	case e.Username == "" && e.Password != "":
		return src.Errorf("email.username", "email.password is set: give the username too")
	}
	if e.Timeout < 0 {
		return src.Errorf("email.timeout", "must be positive")
	}
	if e.Attempts < 0 || e.Attempts > 20 {
		return src.Errorf("email.attempts", "must be between 1 and 20")
	}
	if e.RetryDelay < 0 {
		return src.Errorf("email.retry_delay", "must be positive")
	}
	if e.QueueSize < 0 {
		return src.Errorf("email.queue_size", "must be positive")
	}
	mc := &mail.Config{
		Host: e.Host, Port: e.Port, Security: security, From: e.Sender,
		Username: e.Username, Password: e.Password, Timeout: e.Timeout.Or(mail.DefaultTimeout),
	}
	if e.CAFile != "" {
		pem, err := os.ReadFile(e.CAFile)
		if err != nil {
			return src.Errorf("email.ca_file", "%v", err)
		}
		mc.RootCAs = x509.NewCertPool()
		if !mc.RootCAs.AppendCertsFromPEM(pem) {
			return src.Errorf("email.ca_file", "%s holds no PEM certificate", e.CAFile)
		}
	}
	if _, err := mail.NewSMTP(*mc); err != nil {
		return src.Errorf("email", "%v", err)
	}
	cfg.Mail = mc
	cfg.MailQueue = mail.QueueConfig{
		Size:       orInt(e.QueueSize, defaultMailQueueSize),
		Attempts:   orInt(e.Attempts, defaultMailAttempts),
		RetryDelay: e.RetryDelay.Or(defaultMailRetryDelay),
	}
	return nil
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// recovery builds the outgoing mail queue of [email] and the recovery
// settings of the service; email metrics go to reg. It logs why recovery
// is off when it is.
func (a *App) recovery(backend kisee.Backend, reg *prometheus.Registry) (kisee.RecoveryConfig, error) {
	cfg := a.Config
	emails := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "kisee", Name: "emails_sent_total",
		Help: "Emails by outcome: sent, failed (refused, or every attempt failed) or dropped (queue full or shutting down).",
	}, []string{"result"})
	retries := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "kisee", Name: "email_retries_total", Help: "Email sending attempts after the first.",
	})
	reg.MustRegister(emails, retries)
	rc := kisee.RecoveryConfig{Email: cfg.ResetEmail, TTL: cfg.Email.PasswordReset.TTL.D()}
	if cfg.Mail == nil {
		a.Logger.Info("password recovery by email is off: [email] host is not set")
		return rc, nil
	}
	_, finder := backend.(kisee.UserFinder)
	_, setter := backend.(kisee.PasswordSetter)
	if !finder || !setter {
		a.Logger.Warn("password recovery by email is off: the backend cannot look users up and change their passwords", "backend", cfg.Backend)
		return rc, nil
	}
	sender, err := mail.NewSMTP(*cfg.Mail)
	if err != nil {
		return rc, cfg.Source.Errorf("email", "%v", err)
	}
	qc := cfg.MailQueue
	qc.Logger = a.Logger
	qc.Metrics = mail.Metrics{
		Sent:    emails.WithLabelValues("sent"),
		Failed:  emails.WithLabelValues("failed"),
		Dropped: emails.WithLabelValues("dropped"),
		Retries: retries,
	}
	q := mail.NewQueue(sender, qc)
	a.closers = append(a.closers, closerFunc(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), mailDrainTimeout)
		defer cancel()
		return q.Close(ctx)
	}))
	rc.Outbox = q
	a.Logger.Info("password recovery by email is on", "smtp", sender.Describe(), "reset_token_ttl", rc.TTL.String())
	if cfg.Mail.Security == mail.None && cfg.Mail.Username != "" {
		a.Logger.Warn("[email] security = \"none\": the SMTP password travels in clear")
	}
	return rc, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// registrationCheck logs what [registration] leads to.
func (a *App) registrationCheck(backend kisee.Backend) {
	if !a.Config.Registration.Enabled {
		return
	}
	if _, ok := backend.(kisee.Registerer); !ok {
		a.Logger.Warn("[registration] enabled = true, but the backend cannot create users: POST /users/ answers 403", "backend", a.Config.Backend)
		return
	}
	a.Logger.Info("self-registration is open: POST /users/")
}
