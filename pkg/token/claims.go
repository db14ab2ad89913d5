package token

import (
	"bytes"
	"encoding/json"

	"fmt"
	"math"
	"time"
)

// Claims is the payload of a token: the registered claims of RFC 7519 as
// fields, every other claim in Extra.
type Claims struct {
	Issuer    string
	Subject   string
	Audience  []string
	IssuedAt  time.Time
	ExpiresAt time.Time
	NotBefore time.Time
	ID        string
	// Extra holds the private claims: "groups", "idp", "sid",
	// "refresh_token", "password_reset_for", whitelisted provider claims...
	Extra map[string]any
}

var registered = map[string]bool{"iss": true, "sub": true, "aud": true, "iat": true, "exp": true, "nbf": true, "jti": true}

// IsRegistered reports whether name is one of the RFC 7519 registered claims
// that Claims holds as fields, and so cannot be set through Extra.
func IsRegistered(name string) bool { return registered[name] }

// MarshalJSON writes the registered claims that are set, then Extra.
func (c Claims) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(c.Extra)+7)
	for k, v := range c.Extra {
		if !registered[k] {
			m[k] = v
		}
	}
	if c.Issuer != "" {
		m["iss"] = c.Issuer
	}
	if c.Subject != "" {
		m["sub"] = c.Subject
	}
	switch len(c.Audience) {
	case 0:
	case 1:
		m["aud"] = c.Audience[0]
	default:
		m["aud"] = c.Audience
	}
	for name, t := range map[string]time.Time{"iat": c.IssuedAt, "exp": c.ExpiresAt, "nbf": c.NotBefore} {
		if !t.IsZero() {
			m[name] = t.Unix()
		}
	}
	if c.ID != "" {
		m["jti"] = c.ID
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads a claims set, refusing registered claims of the wrong
// type (a numeric "sub", a string "exp"...).
func (c *Claims) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("claims must be one JSON object")
	}
	if m == nil {
		return fmt.Errorf("claims must be a JSON object")
	}
	*c = Claims{}
	var err error
	str := func(name string) string {
		v, ok := m[name]
		if !ok {
			return ""
		}
		delete(m, name)
		s, ok := v.(string)
		if !ok && err == nil {
			err = fmt.Errorf("claim %q must be a string", name)
		}
		return s
	}
	date := func(name string) time.Time {
		v, ok := m[name]
		if !ok {
			return time.Time{}
		}
		delete(m, name)
		n, ok := v.(json.Number)
		f, ferr := n.Float64()
		if !ok || ferr != nil || math.IsInf(f, 0) || f < 0 || f > 1e11 {
			if err == nil {
				err = fmt.Errorf("claim %q must be a NumericDate", name)
			}
			return time.Time{}
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9))
	}
	c.Issuer = str("iss")
	c.Subject = str("sub")
	c.ID = str("jti")
	c.IssuedAt = date("iat")
	c.ExpiresAt = date("exp")
	c.NotBefore = date("nbf")
	if v, ok := m["aud"]; ok {
		delete(m, "aud")
		switch aud := v.(type) {
		case string:
			c.Audience = []string{aud}
		case []any:
			for _, a := range aud {
				s, ok := a.(string)
				if !ok {
					return fmt.Errorf("claim \"aud\" must be a string or a list of strings")
				}
				c.Audience = append(c.Audience, s)
			}
		default:
			return fmt.Errorf("claim \"aud\" must be a string or a list of strings")
		}
	}
	if err != nil {
		return err
	}
	if len(m) > 0 {
		c.Extra = m
	}
	return nil
}

// Set stores a private claim in Extra.
func (c *Claims) Set(name string, value any) {
	if c.Extra == nil {
		c.Extra = make(map[string]any)
	}
	c.Extra[name] = value
}

// String returns the private claim name if it is a string.
func (c *Claims) String(name string) (string, bool) {
	s, ok := c.Extra[name].(string)
	return s, ok
}

// Bool returns the private claim name if it is a boolean.
func (c *Claims) Bool(name string) bool {
	b, _ := c.Extra[name].(bool)
	return b
}

// Has reports whether the private claim name is present, whatever its value.
func (c *Claims) Has(name string) bool {
	_, ok := c.Extra[name]
	return ok
}

// Strings returns the private claim name if it is a list of strings.
func (c *Claims) Strings(name string) ([]string, bool) {
	switch v := c.Extra[name].(type) {
	case []string:
		return v, true
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}
