package token

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
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

// referenceUnmarshalClaims is how Claims.UnmarshalJSON read claims before
// it read them directly: through a map[string]any decoded with UseNumber.
// What UnmarshalJSON reads must be what this reads.
func referenceUnmarshalClaims(c *Claims, data []byte) error {
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

// sameClaimsAsReference fails t unless UnmarshalJSON reads data as the
// reference does: the same claims, or an error from both. The one
// difference allowed: the reference's decoder stopped at the end of the
// first value, so it let trailing bytes such as "{}}" through; UnmarshalJSON
// refuses anything that is not exactly one JSON value.
func sameClaimsAsReference(t *testing.T, data []byte) {
	t.Helper()
	var got, want Claims
	gerr := got.UnmarshalJSON(data)
	werr := referenceUnmarshalClaims(&want, data)
	switch {
	case gerr != nil && werr != nil:
	case gerr != nil && !json.Valid(data):
	case gerr != nil || werr != nil:
		t.Fatalf("UnmarshalJSON(%q): error %v, the reference's %v", data, gerr, werr)
	case !reflect.DeepEqual(got, want):
		t.Fatalf("UnmarshalJSON(%q):\n got %#v\nwant %#v", data, got, want)
	}
}

func TestClaimsUnmarshalJSONReadsWhatTheReferenceReads(t *testing.T) {
	for _, s := range []string{
		`{}`, ` { } `, "\t{\n\"sub\" :\r\"a\" ,\"x\":[ ] }\n",
		`{"iss":"https://pasee.example","sub":"kisee-ada","aud":"app","iat":1741964966,"exp":1741968566,"jti":"j","idp":"kisee","groups":["a.b","staff"],"sid":"s"}`,
		`{"refresh_token":true,"no":false,"null":null,"n":-12.5e+3,"zero":0,"obj":{"a":[1,{"b":null}],"c":"\u00e9"},"mixed":["a",1,true,null,["x"]],"empty":[]}`,
		`{"aud":["x","y"]}`, `{"aud":[]}`, `{"aud":[1]}`, `{"aud":["x",null]}`, `{"aud":{}}`, `{"aud":null}`, `{"aud":7}`,
		`{"sub":1}`, `{"sub":null}`, `{"sub":["a"]}`, `{"jti":true}`, `{"iss":{}}`,
		`{"exp":"1"}`, `{"exp":null}`, `{"exp":-1}`, `{"exp":-0}`, `{"exp":1e11}`, `{"exp":100000000001}`, `{"exp":1e400}`, `{"exp":1.999999999}`, `{"iat":0.5,"nbf":3}`,
		`{"sub":"a","sub":"b"}`, `{"exp":"bad","exp":1}`, `{"exp":1,"exp":"bad"}`, `{"x":1,"x":"two"}`, `{"sub":"a","aud":[1],"exp":"x"}`,
		`{"sub":"esc\"aped\\ \/ \b\f\n\r\t \u0041 \ud83d\ude00 \ud800"}`, "{\"sub\":\"bad utf-8 \xff\xc3(\"}", "{\"k\xff\":\"v\"}", `{"\u0073ub":"escaped key"}`,
		`{"groups":["a\"b","\u00e9","<&>"]}`, "{\"groups\":[\"\xff\"]}", `{"":""}`, `{"deep":[[[[[]]]]]}`, `{"s":"]}[{,"}`,
		`null`, `[]`, `"sub"`, `1`, `true`, ``, ` `, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,}`, `{"a":1}}`, `{"a":1}]`, `{"a":1} {"b":2}`, `{"a":01}`, `{'a':1}`,
		"{\"a\":\"ctl\x01\"}", `{"a":tru}`, `{"a":nul}`, `{"a":[1,]}`, `{"a":"\x"}`,
	} {
		sameClaimsAsReference(t, []byte(s))
	}
	deep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	sameClaimsAsReference(t, []byte(`{"deep":`+deep+`}`))
	sameClaimsAsReference(t, []byte(fmt.Sprintf(`{"exp":%v,"big":%v}`, math.MaxFloat64, strings.Repeat("9", 400))))
}

// FuzzClaimsUnmarshalJSON reads arbitrary claims (the payload of a token is
// checked only after its signature, but a provider's token is read by
// Pasee): no panic, and the reference's reading.
func FuzzClaimsUnmarshalJSON(f *testing.F) {
	c := benchClaims()
	c.Set("sid", "0123456789abcdef0123456789abcdef")
	p, _ := c.MarshalJSON()
	f.Add(p)
	for _, s := range []string{`{}`, `{"aud":["a",1]}`, `{"x":{"y":[1,"2",null]}}`, `{"sub":"\u00e9\"","sub":"b"}`, `{"exp":1e400}`, `{}}`, `null`, "{\"g\":[\"\xff\"]}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { sameClaimsAsReference(t, data) })
}
