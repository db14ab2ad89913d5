package kisee

import (
	"bufio"
	"bytes"
	_ "embed" // the list of common passwords
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode/utf8"
)

// Reasons a registration or a new password is refused. A *ValidationError
// wraps one of them, with a detail for the user.
var (
	ErrMissingField    = errors.New("missing required field")
	ErrInvalidUsername = errors.New("invalid username")
	ErrInvalidEmail    = errors.New("invalid email")
	ErrWeakPassword    = errors.New("weak password")
)

// ValidationError is input refused by a rule of the service. Detail
// explains the rule to the user; it never repeats a password.
type ValidationError struct {
	Reason error // ErrMissingField, ErrInvalidUsername, ErrInvalidEmail or ErrWeakPassword
	Detail string
}

func (e *ValidationError) Error() string { return e.Reason.Error() + ": " + e.Detail }

// Unwrap returns the reason.
func (e *ValidationError) Unwrap() error { return e.Reason }

func invalid(reason error, format string, args ...any) *ValidationError {
	return &ValidationError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// MaxNewUsernameLength bounds the usernames ValidateUsername accepts.
const MaxNewUsernameLength = 150

// ValidateUsername checks the name of a new user (registration, `kisee
// useradd`): 1 to 150 characters, ASCII letters, digits and . _ @ + -
// (Django's rule).
func ValidateUsername(name string) error {
	if name == "" || len(name) > MaxNewUsernameLength {
		return invalid(ErrInvalidUsername, "a username has 1 to %d characters", MaxNewUsernameLength)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@+-", r)) {
			return invalid(ErrInvalidUsername, "username %q: only letters, digits and . _ @ + - are allowed", name)
		}
	}
	return nil
}

// MaxEmailLength is the longest address SMTP can carry (RFC 5321 §4.5.3.1.3).
const MaxEmailLength = 254

// ValidateEmail checks an email address given at registration: a plain
// address (alice@example.com), without display name or angle brackets.
func ValidateEmail(addr string) error {
	if len(addr) > MaxEmailLength {
		return invalid(ErrInvalidEmail, "an email address has at most %d characters", MaxEmailLength)
	}
	a, err := mail.ParseAddress(addr)
	if err != nil {
		return invalid(ErrInvalidEmail, "%q is not an email address such as alice@example.com", addr)
	}
	if a.Name != "" || a.Address != addr {
		return invalid(ErrInvalidEmail, "give a plain address such as alice@example.com, without a name or angle brackets")
	}
	return nil
}

// Password length bounds. The minimum counts characters, the maximum bytes
// (it bounds the work of hashing).
const (
	MinPasswordLength = 10
	MaxPasswordBytes  = 1024
)

//go:embed common-passwords.txt
var commonPasswordsFile []byte

// PasswordPolicy decides whether a new password is acceptable: long
// enough, not too long, not among the most common passwords, and not the
// user's own name or address (NIST SP 800-63B §5.1.1.2). It is immutable
// and safe for concurrent use.
type PasswordPolicy struct {
	common map[string]struct{}
}

// NewPasswordPolicy returns the policy, with the embedded list of common
// passwords.
func NewPasswordPolicy() *PasswordPolicy {
	p := &PasswordPolicy{common: make(map[string]struct{}, 11000)}
	sc := bufio.NewScanner(bytes.NewReader(commonPasswordsFile))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "# ") {
			continue
		}
		p.common[strings.ToLower(line)] = struct{}{}
	}
	return p
}

// IsCommon reports whether pw, compared without case, is one of the
// common passwords.
func (p *PasswordPolicy) IsCommon(pw string) bool {
	_, ok := p.common[strings.ToLower(pw)]
	return ok
}

// Check returns a *ValidationError wrapping ErrWeakPassword when pw may not
// be used by the user named username whose address is email.
func (p *PasswordPolicy) Check(pw, username, email string) error {
	switch {
	case utf8.RuneCountInString(pw) < MinPasswordLength:
		return invalid(ErrWeakPassword, "a password has at least %d characters", MinPasswordLength)
	case len(pw) > MaxPasswordBytes:
		return invalid(ErrWeakPassword, "a password has at most %d bytes", MaxPasswordBytes)
	case username != "" && strings.EqualFold(pw, username):
		return invalid(ErrWeakPassword, "the password may not be the username")
	case email != "" && strings.EqualFold(pw, email):
		return invalid(ErrWeakPassword, "the password may not be the email address")
	case p.IsCommon(pw):
		return invalid(ErrWeakPassword, "this password is among the most common passwords; choose another (a few unrelated words make a good one)")
	}
	return nil
}
