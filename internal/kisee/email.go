package kisee

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strings"
	"text/template"
	"time"
)

// Message is an email to one recipient.
type Message struct {
	To      string
	Subject string
	Body    string // text/plain, UTF-8
	// Kind and User describe the message in logs ("password_reset",
	// "alice"); they are not sent. Logs never show Body, which may hold a
	// token.
	Kind string
	User string
}

// Compose builds a message, in the background: ok is false when there is
// nothing to send (an unknown user, a user without an address).
type Compose func(ctx context.Context) (m Message, ok bool, err error)

// Outbox sends email off the request path (internal/kisee/mail implements it
// with a bounded queue, workers, retries and metrics).
type Outbox interface {
	// Enqueue hands compose to a background worker and returns at once. It
	// reports false when the queue is full and the message is dropped.
	Enqueue(compose Compose) bool
}

// Defaults of [email.password_reset].
const (
	DefaultResetSubject = "Reset your password"
	DefaultResetBody    = `Hello {{.Username}},

Someone, hopefully you, asked to reset the password of your account.
To choose a new password, open this link within {{.ExpiresIn}}:

{{.URL}}

If you did not ask for it, ignore this email: your password stays as it is.
`
	// DefaultResetURLPath follows the public base URL ([server] hostname) in
	// the default link: Kisee's own description of the reset, which tells
	// how to PATCH the new password with the token. Front-ends set url to
	// their own page.
	DefaultResetURLPath = "/password_recoveries/?token={{.Token}}"
	// DefaultResetTTL is the lifetime of a password-reset token.
	DefaultResetTTL = 12 * time.Hour
)

// ResetEmailData is what the templates of [email.password_reset] see. The
// url template sees every field but URL.
type ResetEmailData struct {
	Username  string
	Token     string
	URL       string
	ExpiresIn string // "12 hours"
}

// ResetEmail renders the password-reset email from its three templates
// (Go text/template).
type ResetEmail struct {
	subject, body, url *template.Template
}

// TemplateError is a template of [email.password_reset] that does not
// parse or does not render; Field is "subject", "body" or "url".
type TemplateError struct {
	Field string
	Err   error
}

func (e *TemplateError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the template error.
func (e *TemplateError) Unwrap() error { return e.Err }

// ParseResetEmail parses the templates, then renders them once with
// sample data so that a reference to an unknown field stops start-up
// rather than a password recovery. The url must render to an absolute
// http(s) URL.
func ParseResetEmail(subject, body, link string) (*ResetEmail, error) {
	e := &ResetEmail{}
	for _, t := range []struct {
		field string
		text  string
		dst   **template.Template
	}{{"subject", subject, &e.subject}, {"body", body, &e.body}, {"url", link, &e.url}} {
		tmpl, err := template.New(t.field).Option("missingkey=error").Parse(t.text)
		if err != nil {
			return nil, &TemplateError{Field: t.field, Err: err}
		}
		*t.dst = tmpl
	}
	sample := ResetEmailData{Username: "alice", Token: "eyJhbGciOiJFUzI1NiJ9.e30.c2ln", ExpiresIn: "12 hours"}
	if _, _, err := e.Render(sample); err != nil {
		return nil, err
	}
	return e, nil
}

// Render returns the subject and body for d (d.URL is computed from the
// url template). Line breaks in the subject become spaces.
func (e *ResetEmail) Render(d ResetEmailData) (subject, body string, err error) {
	d.URL = ""
	link, err := execute(e.url, "url", d)
	if err != nil {
		return "", "", err
	}
	link = strings.TrimSpace(link)
	if u, perr := url.Parse(link); perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", &TemplateError{Field: "url", Err: fmt.Errorf("renders %q, not an absolute http(s) URL", link)}
	}
	d.URL = link
	if subject, err = execute(e.subject, "subject", d); err != nil {
		return "", "", err
	}
	subject = strings.Join(strings.Fields(subject), " ")
	if body, err = execute(e.body, "body", d); err != nil {
		return "", "", err
	}
	return subject, body, nil
}

func execute(t *template.Template, field string, d ResetEmailData) (string, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return "", &TemplateError{Field: field, Err: err}
	}
	return b.String(), nil
}

// HumanDuration writes d for a person: "12 hours", "1 hour 30 minutes",
// "45 minutes", "1 day".
func HumanDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	if d < time.Minute {
		return "1 minute"
	}
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	days, hours, minutes := int64(d/(24*time.Hour)), int64(d%(24*time.Hour)/time.Hour), int64(d%time.Hour/time.Minute)
	if days > 0 && hours == 0 && minutes == 0 {
		return plural(days, "day")
	}
	hours += 24 * days
	var parts []string
	if hours > 0 {
		parts = append(parts, plural(hours, "hour"))
	}
	if minutes > 0 {
		parts = append(parts, plural(minutes, "minute"))
	}
	return strings.Join(parts, " ")
}
