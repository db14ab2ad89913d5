package kisee_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kisee-pasee/suite/internal/kisee"
)

func TestPasswordPolicy(t *testing.T) {
	p := kisee.NewPasswordPolicy()
	for _, common := range []string{"password", "123456789", "qwertyuiop", "QWERTYUIOP", "correct horse battery staple", "1234567890", "iloveyou"} {
		if !p.IsCommon(common) {
			t.Errorf("%q is not in the list", common)
		}
	}
	if p.IsCommon("# The most common passwords, one a line, lower-cased: Kisee refuses them") {
		t.Error("the file's comment is taken for a password")
	}
	for _, tc := range []struct{ pw, username, email string }{
		{"short", "", ""},
		{"ünïcödé12", "", ""}, // 9 characters, 13 bytes
		{strings.Repeat("x", 1025), "", ""},
		{"qwertyuiop", "", ""},
		{"Alice-Alice", "alice-alice", ""},
		{"ALICE@EXAMPLE.COM", "", "alice@example.com"},
	} {
		err := p.Check(tc.pw, tc.username, tc.email)
		var ve *kisee.ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, kisee.ErrWeakPassword) || strings.Contains(ve.Detail, tc.pw) {
			t.Errorf("%.20q: %v", tc.pw, err)
		}
	}
	for _, ok := range []string{"ünïcödé123", "correct horse battery", strings.Repeat("é", 512)} {
		if err := p.Check(ok, "alice", "alice@example.com"); err != nil {
			t.Errorf("%.20q refused: %v", ok, err)
		}
	}
}

func TestValidateEmail(t *testing.T) {
	for _, ok := range []string{"alice@example.com", "a.b+tag@sub.example.org", "x@localhost"} {
		if err := kisee.ValidateEmail(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "alice", "@example.com", "Alice <alice@example.com>", "<alice@example.com>", "alice@example.com, bob@example.com", "alice@exa mple.com", "alice@example.com\r\nBcc: x@y.z", strings.Repeat("a", 250) + "@example.com"} {
		if err := kisee.ValidateEmail(bad); !errors.Is(err, kisee.ErrInvalidEmail) {
			t.Errorf("%q accepted (%v)", bad, err)
		}
	}
}

func TestValidateUsername(t *testing.T) {
	for _, ok := range []string{"a", "alice", "alice.smith+kisee@example.com", "A_B-9", strings.Repeat("x", 150)} {
		if err := kisee.ValidateUsername(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "with space", "émile", "a/b", "a:b", strings.Repeat("x", 151), "line\nbreak"} {
		if err := kisee.ValidateUsername(bad); !errors.Is(err, kisee.ErrInvalidUsername) {
			t.Errorf("%q accepted (%v)", bad, err)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		12 * time.Hour: "12 hours", time.Hour: "1 hour", 90 * time.Minute: "1 hour 30 minutes",
		45 * time.Minute: "45 minutes", 24 * time.Hour: "1 day", 48 * time.Hour: "2 days", 25 * time.Hour: "25 hours",
		10 * time.Second: "1 minute",
	} {
		if got := kisee.HumanDuration(d); got != want {
			t.Errorf("%s: %q, want %q", d, got, want)
		}
	}
}

func TestResetEmail(t *testing.T) {
	e, err := kisee.ParseResetEmail("Hello\n{{.Username}}", "{{.URL}} {{.ExpiresIn}}", "https://app.example.com/r?t={{.Token}}&u={{.Username | urlquery}}")
	if err != nil {
		t.Fatal(err)
	}
	subject, body, err := e.Render(kisee.ResetEmailData{Username: "a b", Token: "T.K.N", ExpiresIn: "1 hour"})
	if err != nil || subject != "Hello a b" || body != "https://app.example.com/r?t=T.K.N&u=a+b 1 hour" {
		t.Fatalf("%q %q %v", subject, body, err)
	}
	var te *kisee.TemplateError
	if _, err := kisee.ParseResetEmail("{{.Nope}}", "", "https://x/{{.Token}}"); !errors.As(err, &te) || te.Field != "subject" {
		t.Fatalf("unknown field: %v", err)
	}
	if _, err := kisee.ParseResetEmail("", "", "mailto:{{.Token}}"); !errors.As(err, &te) || te.Field != "url" {
		t.Fatalf("non-http url: %v", err)
	}
}
