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
// type (a numeric "sub", a string "exp"...). Private claims go to Extra as
// encoding/json decodes them into an any with UseNumber: strings, bools,
// json.Number, nil, []any and map[string]any; of duplicate names the last
// wins.
//
// Every token verified goes through here, so the object is read directly
// once encoding/json's scanner has found it valid: no reflection, no
// intermediate map, and strings without escapes copied as they are. Nested
// private values other than lists of strings still go through
// encoding/json. The result is what decoding into a map[string]any with
// UseNumber gives (tested against it).
func (c *Claims) UnmarshalJSON(data []byte) error {
	if !json.Valid(data) {
		// encoding/json says what is wrong and where.
		if err := json.Unmarshal(data, new(any)); err != nil {
			return err
		}
		return fmt.Errorf("claims must be one JSON object")
	}
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return fmt.Errorf("claims must be a JSON object")
	}
	*c = Claims{}
	// The registered claims' last values, decoded once the object is read.
	var iss, sub, jti, iat, exp, nbf, aud []byte
	for i = skipSpace(data, i+1); data[i] != '}'; {
		end := stringEnd(data, i)
		name := jsonString(data[i:end])
		i = skipSpace(data, skipSpace(data, end)+1) // past the colon
		end = valueEnd(data, i)
		raw := data[i:end]
		switch name {
		case "iss":
			iss = raw
		case "sub":
			sub = raw
		case "jti":
			jti = raw
		case "iat":
			iat = raw
		case "exp":
			exp = raw
		case "nbf":
			nbf = raw
		case "aud":
			aud = raw
		default:
			v, err := jsonValue(raw)
			if err != nil {
				return err
			}
			c.Set(name, v)
		}
		if i = skipSpace(data, end); data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	var err error
	str := func(name string, raw []byte) string {
		if raw == nil {
			return ""
		}
		if raw[0] != '"' {
			if err == nil {
				err = fmt.Errorf("claim %q must be a string", name)
			}
			return ""
		}
		return jsonString(raw)
	}
	date := func(name string, raw []byte) time.Time {
		if raw == nil {
			return time.Time{}
		}
		number := raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9'
		var f float64
		var ferr error
		if number {
			f, ferr = strconv.ParseFloat(string(raw), 64)
		}
		if !number || ferr != nil || math.IsInf(f, 0) || f < 0 || f > 1e11 {
			if err == nil {
				err = fmt.Errorf("claim %q must be a NumericDate", name)
			}
			return time.Time{}
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9))
	}
	c.Issuer = str("iss", iss)
	c.Subject = str("sub", sub)
	c.ID = str("jti", jti)
	c.IssuedAt = date("iat", iat)
	c.ExpiresAt = date("exp", exp)
	c.NotBefore = date("nbf", nbf)
	if aud != nil {
		v, verr := jsonValue(aud)
		if verr != nil {
			return verr
		}
		switch a := v.(type) {
		case string:
			c.Audience = []string{a}
		case []any:
			for _, e := range a {
				s, ok := e.(string)
				if !ok {
					return fmt.Errorf("claim \"aud\" must be a string or a list of strings")
				}
				c.Audience = append(c.Audience, s)
			}
		default:
			return fmt.Errorf("claim \"aud\" must be a string or a list of strings")
		}
	}
	return err
}

// The helpers below read JSON that json.Valid accepted: they only find where
// things end, never whether they are well formed.

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string starting at data[i].
func stringEnd(data []byte, i int) int {
	for i++; data[i] != '"'; i++ {
		if data[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// valueEnd returns the index just past the value starting at data[i].
func valueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '{', '[':
		depth := 0
		for {
			switch data[i] {
			case '"':
				i = stringEnd(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
	}
	for i < len(data) && data[i] != ',' && data[i] != '}' && data[i] != ']' &&
		data[i] != ' ' && data[i] != '\t' && data[i] != '\n' && data[i] != '\r' {
		i++
	}
	return i
}

// jsonString decodes the string literal raw. One without escapes that is
// valid UTF-8 is its own content; others go through encoding/json, which
// unescapes and replaces invalid bytes with U+FFFD.
func jsonString(raw []byte) string {
	content := raw[1 : len(raw)-1]
	if bytes.IndexByte(content, '\\') < 0 && utf8.Valid(content) {
		return string(content)
	}
	var s string
	_ = json.Unmarshal(raw, &s) // valid JSON: cannot fail
	return s
}

// jsonValue decodes the value raw as encoding/json decodes it into an any
// with UseNumber.
func jsonValue(raw []byte) (any, error) {
	switch raw[0] {
	case '"':
		return jsonString(raw), nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case 'n':
		return nil, nil
	case '{':
	case '[':
		if list, ok := stringList(raw); ok {
			return list, nil
		}
	default:
		return json.Number(raw), nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// stringList decodes raw if it is a list of strings (the "groups" of every
// access token, an "aud" list), reporting false for any other list.
func stringList(raw []byte) ([]any, bool) {
	list := []any{}
	i := skipSpace(raw, 1)
	for raw[i] != ']' {
		if raw[i] != '"' {
			return nil, false
		}
		end := stringEnd(raw, i)
		list = append(list, jsonString(raw[i:end]))
		if i = skipSpace(raw, end); raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	return list, true
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
