package token

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
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

// MarshalJSON writes the registered claims that are set and Extra, in one
// object whose keys are in byte order (as encoding/json writes a map).
func (c Claims) MarshalJSON() ([]byte, error) { return c.appendJSON(nil) }

// appendJSON appends the JSON object of MarshalJSON to b. Every token
// signed goes through here, so the registered claims and the usual private
// claims (strings, booleans, integers, lists of strings) are written
// directly, without building a map[string]any or reflecting on it; other
// values go through encoding/json. The bytes are those encoding/json writes
// for the same claims as a map (tested).
func (c Claims) appendJSON(b []byte) ([]byte, error) {
	var keysBuf [16]string
	keys := keysBuf[:0]
	for k := range c.Extra {
		if !registered[k] {
			keys = append(keys, k)
		}
	}
	for _, r := range [...]struct {
		name string
		set  bool
	}{
		{"iss", c.Issuer != ""}, {"sub", c.Subject != ""}, {"aud", len(c.Audience) > 0},
		{"iat", !c.IssuedAt.IsZero()}, {"exp", !c.ExpiresAt.IsZero()}, {"nbf", !c.NotBefore.IsZero()},
		{"jti", c.ID != ""},
	} {
		if r.set {
			keys = append(keys, r.name)
		}
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		var err error
		switch k {
		case "iss":
			b = appendJSONString(b, c.Issuer)
		case "sub":
			b = appendJSONString(b, c.Subject)
		case "aud":
			if len(c.Audience) == 1 {
				b = appendJSONString(b, c.Audience[0])
			} else {
				b = appendJSONStrings(b, c.Audience)
			}
		case "iat":
			b = strconv.AppendInt(b, c.IssuedAt.Unix(), 10)
		case "exp":
			b = strconv.AppendInt(b, c.ExpiresAt.Unix(), 10)
		case "nbf":
			b = strconv.AppendInt(b, c.NotBefore.Unix(), 10)
		case "jti":
			b = appendJSONString(b, c.ID)
		default:
			b, err = appendJSONValue(b, c.Extra[k])
		}
		if err != nil {
			return nil, fmt.Errorf("claim %q: %w", k, err)
		}
	}
	return append(b, '}'), nil
}

// appendJSONValue appends v as encoding/json writes it.
func appendJSONValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case []string:
		if v == nil {
			return append(b, "null"...), nil
		}
		return appendJSONStrings(b, v), nil
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, enc...), nil
}

func appendJSONStrings(b []byte, list []string) []byte {
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json does:
// valid UTF-8 (invalid bytes become U+FFFD), HTML-safe (<, >, & and the
// line and paragraph separators escaped).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
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
