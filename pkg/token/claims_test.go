package token

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// referenceClaimsJSON is what encoding/json writes for c as a map: the
// bytes MarshalJSON must write.
func referenceClaimsJSON(c Claims) ([]byte, error) {
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

func TestClaimsMarshalJSONWritesWhatEncodingJSONWrites(t *testing.T) {
	odd := "a\"b\\c\x00\x01\x1f\b\f\n\r\t<script>&amp;\u2028\u2029é€😀\xff\xc3(\x7f/"
	now := time.Unix(1741964966, 0)
	for name, c := range map[string]Claims{
		"empty":      {},
		"registered": {Issuer: "https://pasee.example", Subject: "kisee-ada", Audience: []string{"app"}, IssuedAt: now, ExpiresAt: now.Add(time.Hour), NotBefore: now, ID: "jti"},
		"audiences":  {Audience: []string{"a", "b"}},
		"odd strings": {Issuer: odd, Subject: odd, ID: odd, Audience: []string{odd, ""}, Extra: map[string]any{
			odd: odd, "groups": []string{odd, "staff"}, "": "empty key",
		}},
		"private claims of every type": {Subject: "s", Extra: map[string]any{
			"groups": []string{"b", "a"}, "none": []string(nil), "empty": []string{}, "refresh_token": true, "no": false,
			"n": 42, "big": int64(-1 << 62), "f": 1.5, "tiny": 1e-7, "huge": 1e21, "num": json.Number("12.50"),
			"null": nil, "list": []any{"x", 1.0, true, nil}, "obj": map[string]any{"z": 1, "a": "<>"},
		}},
		"registered names in Extra are ignored": {Subject: "real", Extra: map[string]any{"sub": "fake", "exp": 1, "idp": "kisee"}},
		"times before 1970 and far ahead":       {IssuedAt: time.Unix(-5, 0), ExpiresAt: time.Unix(1e11, 0)},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := c.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			want, err := referenceClaimsJSON(c)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("MarshalJSON:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestClaimsMarshalJSONRefusesWhatEncodingJSONRefuses(t *testing.T) {
	c := Claims{Extra: map[string]any{"ch": make(chan int)}}
	if _, err := c.MarshalJSON(); err == nil {
		t.Fatal("a channel was encoded")
	}
	if _, err := NewSigner(mustKey(t, ES256)).Sign(TypeAccess, c); err == nil {
		t.Fatal("a token with a channel claim was signed")
	}
}
